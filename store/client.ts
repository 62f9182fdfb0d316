// The only place that builds a ClickHouse client (STYLE §3): a ClickHouse server when
// `clickhouse.url` is set, otherwise the embedded engine (chDB) under `dataDir`. The same SQL runs
// on both. Every value reaches SQL as a bound parameter ({name:Type}).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';
import type { NormalizedEvent, DeadLetter } from '../core/event.ts';
import { EVENT_COLUMNS, MIGRATIONS, type SchemaContext } from './schema.ts';
import { isEncodedEventRows, type EncodedEventRows } from './insert-rows.ts';

type EmbeddedConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

export type QueryParams = Record<string, unknown>;

/** The event store: migrations, writes and typed reads over one ClickHouse database. */
export interface Store {
  readonly database: string;
  /** 'embedded' (chDB in-process) or 'server'. */
  readonly mode: 'embedded' | 'server';
  /** Applies pending migrations in order; safe to call on every start. */
  migrate(): Promise<void>;
  /**
   * Inserts events as one block. With `dedupToken`, a retry of the same batch is dropped by
   * ClickHouse instead of duplicating rows. `json[i]`, when given, is `events[i]` already
   * serialized (the bus message it arrived in), so it is not serialized again; it must hold the
   * same values as the object. `json` may also be the whole batch already encoded (the sink's
   * encodeEventRows, whose bytes the hash chain covers): its body is handed over as it is.
   */
  insertEvents(events: readonly NormalizedEvent[], dedupToken?: string, json?: ReadonlyArray<string | undefined> | EncodedEventRows): Promise<void>;
  insertDeadLetters(letters: readonly DeadLetter[], dedupToken?: string): Promise<void>;
  /** Inserts plain rows into `table` (a ztwatch table name, not user input). */
  insertRows(table: string, rows: readonly Record<string, unknown>[], settings?: ClickHouseSettings): Promise<void>;
  /** Runs a read query with bound parameters and returns its rows. */
  query<T>(sql: string, params?: QueryParams): Promise<T[]>;
  /** Runs DDL or a statement without result rows. */
  command(sql: string, params?: QueryParams): Promise<void>;
  /** True when the engine answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Where the embedded engine keeps its files; `:memory:` as dataDir keeps nothing on disk. */
export function resolveEmbeddedPath(dataDir: string): string {
  if (dataDir === ':memory:') return ':memory:';
  const dir = resolve(dataDir, 'clickhouse');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The `events` columns as a table-function structure (types without codecs). */
const EVENT_STRUCTURE = EVENT_COLUMNS.map(([name, type]) => `${name} ${type.replace(/\s+CODEC\(.*\)$/, '')}`).join(', ');

/**
 * One JSONEachRow body for a batch: each row serialized once (or taken as given) and joined into a
 * single buffer, the only copy handed to the engine.
 */
export function serializeEventRows(events: readonly NormalizedEvent[], json?: ReadonlyArray<string | undefined>): Buffer {
  const lines = new Array<string>(events.length);
  for (let i = 0; i < events.length; i++) lines[i] = json?.[i] ?? JSON.stringify(events[i]);
  return Buffer.from(lines.join('\n'), 'utf8');
}

export interface StoreOptions {
  /**
   * How event batches reach the engine. 'file': a short-lived file the engine parses in parallel
   * (INSERT … SELECT FROM file()); embedded only. 'stream': the body as the payload of
   * `INSERT … FORMAT JSONEachRow`, as a ClickHouse server receives it (and parses in parallel).
   * @default 'file' when embedded, 'stream' for a server
   */
  readonly eventTransport?: 'file' | 'stream';
}

/** Builds the store from config. Nothing is created until `migrate()`. */
export function createStore(config: FrozenConfig, options: StoreOptions = {}): Store {
  const ch = config.clickhouse;
  const embedded = ch.url === '';
  if (!embedded && options.eventTransport === 'file') throw createError('CONFIG_INVALID', "eventTransport 'file' needs the embedded engine (a server reads its own files)");
  const eventTransport = options.eventTransport ?? (embedded ? 'file' : 'stream');
  // With 'file', event batches reach the engine as a file it parses in parallel (file() table
  // function); each file lives only for its insert.
  let spoolDir: string | undefined;
  let spoolSeq = 0;
  const client = embedded
    ? createClient({
        // chdb/connection implements @clickhouse/client-common's Connection; the client bundles its
        // own copy of those types, identical in shape, hence the cast.
        connection: createChdbConnection({ path: resolveEmbeddedPath(config.dataDir) }) as unknown as EmbeddedConnection,
      })
    : createClient({
        url: ch.url,
        username: ch.username,
        password: ch.password,
        request_timeout: 60_000,
        compression: { request: true, response: true },
        clickhouse_settings: { async_insert: 0 },
      });
  const database = ch.database;
  const schema: SchemaContext = {
    database,
    cluster: ch.cluster,
    retentionDays: ch.retentionDays,
    anomalyRetentionDays: ch.anomalyRetentionDays,
    deadLetterRetentionDays: ch.deadLetterRetentionDays,
    auditRetentionDays: ch.auditRetentionDays,
  };

  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      // Connection-level failures may pass; a rejected statement will not.
      const transient = /ECONNREFUSED|ECONNRESET|socket|timeout|TIMEOUT|Timeout/.test(message);
      throw createError(transient ? 'STORE_UNAVAILABLE' : 'STORE_QUERY_FAILED', `${what}: ${message.slice(0, 500)}`, { cause });
    }
  };

  const insertRows = (table: string, rows: readonly Record<string, unknown>[], settings: ClickHouseSettings = {}) =>
    wrap(`insert into ${table}`, async () => {
      if (rows.length === 0) return;
      await client.insert({
        table: `${database}.${table}`,
        values: rows as Record<string, unknown>[],
        format: 'JSONEachRow',
        // The embedded engine applies per-query settings to its session, where they persist: an
        // insert without a token must clear the previous one, or ClickHouse would drop it as a
        // duplicate of the last tokened insert.
        clickhouse_settings: { insert_deduplication_token: '', ...settings },
      });
    });

  const dedupSettings = (token: string | undefined): ClickHouseSettings =>
    token ? { insert_deduplication_token: token, insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1 } : {};

  const query = <T>(sql: string, params: QueryParams = {}) =>
    wrap('query', async () => {
      const result = await client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
      return (await result.json()) as T[];
    });

  const command = (sql: string, params: QueryParams = {}) =>
    wrap('command', async () => {
      await client.command({ query: sql, query_params: params });
    });

  return {
    database,
    mode: embedded ? 'embedded' : 'server',
    async migrate() {
      await command(`CREATE DATABASE IF NOT EXISTS ${database}${ch.cluster ? ` ON CLUSTER ${ch.cluster}` : ''}`);
      await command(
        `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations (id UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY id`,
      );
      const applied = new Set((await query<{ id: number }>(`SELECT id FROM ${database}.schema_migrations FINAL`)).map((r) => Number(r.id)));
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.id)) continue;
        try {
          for (const statement of migration.statements(schema)) await client.command({ query: statement });
        } catch (cause) {
          throw createError('STORE_MIGRATION_FAILED', `migration ${migration.id} (${migration.name})`, { cause });
        }
        await insertRows('schema_migrations', [{ id: migration.id, name: migration.name, applied_at: Date.now() }]);
      }
    },
    insertEvents: (events, dedupToken, json) =>
      wrap('insert into events', async () => {
        if (events.length === 0) return;
        const body = isEncodedEventRows(json) ? json.body : serializeEventRows(events, json);
        const settings: ClickHouseSettings = { insert_deduplication_token: '', ...dedupSettings(dedupToken) };
        if (eventTransport === 'stream') {
          // The serialized body as the request payload (client.insert would want row objects for
          // JSONEachRow and serialize them itself).
          const result = await client.exec({
            query: `INSERT INTO ${database}.events FORMAT JSONEachRow`,
            values: Readable.from([body], { objectMode: false }),
            clickhouse_settings: settings,
          });
          await new Promise<void>((resolve, reject) => result.stream.once('end', resolve).once('error', reject).resume());
          return;
        }
        spoolDir ??= mkdtempSync(join(tmpdir(), 'ztwatch-spool-'));
        const path = join(spoolDir, `events-${process.pid}-${++spoolSeq}.ndjson`);
        await writeFile(path, body);
        try {
          await client.command({
            query: `INSERT INTO ${database}.events SELECT * FROM file({path:String}, 'JSONEachRow', {structure:String})`,
            query_params: { path, structure: EVENT_STRUCTURE },
            clickhouse_settings: settings,
          });
        } finally {
          await unlink(path).catch(() => undefined);
        }
      }),
    insertDeadLetters: (letters, dedupToken) => insertRows('deadletters', letters as unknown as Record<string, unknown>[], dedupSettings(dedupToken)),
    insertRows,
    query,
    command,
    async ping() {
      try {
        return (await client.ping()).success;
      } catch {
        return false;
      }
    },
    async close() {
      if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
      await client.close();
    },
  };
}

