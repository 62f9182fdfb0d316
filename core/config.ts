// Configuration: loaded once per process from a YAML file and the environment, validated against
// one schema, frozen, and passed down as plain values (STYLE §6). Every key is documented in the
// README's configuration reference; a test checks each key appears there.
import { readFileSync, existsSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { createError } from './errors.ts';
import { literalUnion } from './literal-union.ts';

const ROLES = ['ingest', 'analyst', 'auditor', 'admin'] as const;

/** Longest retention accepted, in days (TTL arithmetic on DateTime ends in 2106). */
export const MAX_RETENTION_DAYS = 25_000;

export const ConfigSchema = Type.Object(
  {
    /** Directory for the embedded ClickHouse (chDB) data and collector state. @default './data' */
    dataDir: Type.String({ default: './data' }),
    clickhouse: Type.Object(
      {
        /** ClickHouse server URL; empty selects the embedded chDB engine under `dataDir`. @default '' */
        url: Type.String({ default: '' }),
        /** @default 'default' */
        username: Type.String({ default: 'default' }),
        /** @default '' */
        password: Type.String({ default: '' }),
        /** Database holding every ztwatch table. @default 'ztwatch' */
        database: Type.String({ default: 'ztwatch', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
        /** Cluster name for `ON CLUSTER` DDL with Replicated/Distributed tables; empty = single node. @default '' */
        cluster: Type.String({ default: '', pattern: '^([A-Za-z_][A-Za-z0-9_]*)?$' }),
        /**
         * Compliance retention of `events`, in days. At most 25000: the TTL is computed on
         * DateTime, which ends in 2106, so longer values would wrap around and drop rows. @default 400
         */
        retentionDays: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS, default: 400 }),
        /** Retention of `anomalies`, in days. @default 730 */
        anomalyRetentionDays: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS, default: 730 }),
        /** Retention of `deadletters`, in days. @default 30 */
        deadLetterRetentionDays: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS, default: 30 }),
        /** Retention of `audit_log`, in days. @default 2555 */
        auditRetentionDays: Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS, default: 2555 }),
      },
      { default: {} },
    ),
    kafka: Type.Object(
      {
        /** Broker list; empty selects the in-memory bus (embedded mode). @default [] */
        brokers: Type.Array(Type.String(), { default: [] }),
        /** @default 'ztwatch' */
        clientId: Type.String({ default: 'ztwatch' }),
        /** Partitions of topics ztwatch creates when missing. @default 6 */
        partitions: Type.Integer({ minimum: 1, default: 6 }),
        /** Replication factor of topics ztwatch creates. @default 1 */
        replicationFactor: Type.Integer({ minimum: 1, default: 1 }),
        /** Retention of topics ztwatch creates, in hours. @default 168 */
        retentionHours: Type.Integer({ minimum: 1, default: 168 }),
        /** Consumer group of the sink role. @default 'ztwatch-sink' */
        sinkGroup: Type.String({ default: 'ztwatch-sink' }),
        /**
         * Prefix put before every topic name (`<prefix>ztwatch.events.v1`), so several ztwatch
         * installations or test runs can share one cluster. @default ''
         */
        topicPrefix: Type.String({ default: '', pattern: '^[A-Za-z0-9._-]*$' }),
        /** Compression of produced record batches. @default 'lz4' */
        compression: Type.Union([Type.Literal('lz4'), Type.Literal('gzip'), Type.Literal('none')], { default: 'lz4' }),
        /** Consumer-group session timeout: a member silent this long loses its partitions, in milliseconds. @default 10000 */
        sessionTimeoutMs: Type.Integer({ minimum: 6000, maximum: 300_000, default: 10_000 }),
      },
      { default: {} },
    ),
    bus: Type.Object(
      {
        /** Most messages held in flight (not yet acknowledged downstream) before producers wait. @default 200000 */
        maxInFlightMessages: Type.Integer({ minimum: 1, default: 200_000 }),
      },
      { default: {} },
    ),
    http: Type.Object(
      {
        /** @default '127.0.0.1' */
        host: Type.String({ default: '127.0.0.1' }),
        /** @default 8080 */
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        /** Largest request body accepted (after gzip inflation), in bytes. @default 16777216 */
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 16 * 1024 * 1024 }),
        /** Largest compressed request body accepted, in bytes. @default 4194304 */
        compressedBodyLimitBytes: Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024 }),
        /** Time allowed to receive a whole request, in milliseconds. @default 30000 */
        requestTimeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
        /** Deepest JSON nesting accepted in one ingested record; deeper records are dead-lettered. @default 64 */
        maxJsonDepth: Type.Integer({ minimum: 2, maximum: 1000, default: 64 }),
        /**
         * Secret that signs page cursors (HMAC-SHA256); several API processes behind one address
         * need the same. Empty: a key generated once and kept in `<dataDir>/cursor.key`. @default ''
         */
        cursorSecret: Type.String({ default: '' }),
        tls: Type.Object(
          {
            /** PEM server certificate; with `keyFile`, the API serves HTTPS. @default '' */
            certFile: Type.String({ default: '' }),
            /** PEM private key of `certFile`. @default '' */
            keyFile: Type.String({ default: '' }),
            /** PEM CA bundle that client certificates must chain to; set it to accept mTLS clients. @default '' */
            caFile: Type.String({ default: '' }),
          },
          { default: {} },
        ),
      },
      { default: {} },
    ),
    ingest: Type.Object(
      {
        /** Longest single record accepted, in bytes; longer ones are dead-lettered. @default 1048576 */
        maxLineBytes: Type.Integer({ minimum: 256, default: 1024 * 1024 }),
        /** Extra JSON access-log key mappings: `{ "my_key": "dst_service" }`. @default {} */
        fieldMap: Type.Record(Type.String(), Type.String(), { default: {} }),
        /**
         * Furthest an event's time may lie ahead of its arrival, in seconds; later ones are
         * dead-lettered (`time_in_future`), so one skewed clock or forged line cannot move the
         * detectors' event-time watermark ahead of real traffic. @default 600
         */
        maxFutureSeconds: Type.Integer({ minimum: 0, default: 600 }),
        /**
         * Most records (lines, array elements) in one ingest request; a body holding more is refused
         * with 413 ZTW_INGEST_TOO_MANY_RECORDS while it is split, before anything is published. @default 100000
         */
        maxRecordsPerRequest: Type.Integer({ minimum: 1, default: 100_000 }),
      },
      { default: {} },
    ),
    sink: Type.Object(
      {
        /** Rows per ClickHouse insert at most. @default 20000 */
        batchRows: Type.Integer({ minimum: 1, default: 20_000 }),
        /** Longest wait before a partial batch is inserted, in milliseconds. @default 500 */
        batchWaitMs: Type.Integer({ minimum: 1, default: 500 }),
      },
      { default: {} },
    ),
    detectors: Type.Object(
      {
        /** Wall-clock interval between live detector cycles, in seconds. @default 10 */
        intervalSeconds: Type.Number({ exclusiveMinimum: 0, default: 10 }),
        /**
         * Event-time step between detector evaluations, in seconds (rounded up to a multiple of 10).
         * Each detector looks back over its own window (`detectors.options.<name>.windowSeconds`),
         * so windows slide by this step. @default 20
         */
        stepSeconds: Type.Integer({ minimum: 1, default: 20 }),
        /** Event time allowed for late events before a window is evaluated, in seconds. @default 15 */
        allowedLatenessSeconds: Type.Integer({ minimum: 0, default: 15 }),
        /** Quiet event time after which a firing anomaly resolves, in seconds. @default 300 */
        resolveAfterSeconds: Type.Integer({ minimum: 1, default: 300 }),
        /** Detectors to run; empty runs all. @default [] */
        enabled: Type.Array(Type.String(), { default: [] }),
        /** Namespaces whose involvement raises anomaly severity. @default ['payments', 'vault', 'kube-system', 'security'] */
        sensitiveNamespaces: Type.Array(Type.String(), { default: ['payments', 'vault', 'kube-system', 'security'] }),
        /**
         * Live start: event time replayed without raising anomalies, so baselines are rebuilt from
         * stored history before the first live window, in seconds. @default 3600
         */
        warmupSeconds: Type.Integer({ minimum: 0, default: 3600 }),
        /** Per-detector options, keyed by detector name (see README, "Detectors"). @default {} */
        options: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), { default: {} }),
      },
      { default: {} },
    ),
    incidents: Type.Object(
      {
        /**
         * An anomaly whose first evidence comes at most this long after an incident's last evidence
         * may still join it (reopening it when it had resolved), in seconds. @default 300
         */
        linkGapSeconds: Type.Integer({ minimum: 0, default: 300 }),
        /**
         * An anomaly with the same actor and target as an incident that resolved at most this long
         * before its first evidence reopens that incident instead of opening and paging a new one,
         * in seconds. @default 900
         */
        reopenSeconds: Type.Integer({ minimum: 0, default: 900 }),
        /**
         * Event time an incident that names no actor waits before it pages, so the scan that explains
         * it can claim it first, in seconds. @default 30
         */
        holdSeconds: Type.Integer({ minimum: 0, default: 30 }),
      },
      { default: {} },
    ),
    auth: Type.Object(
      {
        /** API tokens: name, role and the SHA-256 hex of the token. @default [] */
        tokens: Type.Array(
          Type.Object({
            name: Type.String({ minLength: 1 }),
            role: literalUnion(ROLES),
            sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
          }),
          { default: [] },
        ),
        /**
         * SPIFFE IDs whose client certificate (URI SAN, verified against `http.tls.caFile`) may use the
         * ingest routes without a token; an entry ending in `*` matches by prefix. @default []
         */
        ingestSpiffeAllowlist: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Ingest routes demand an allowlisted client certificate, even with an ingest token. @default false */
        ingestRequireMtls: Type.Boolean({ default: false }),
        /** `/metrics` answers without a token (for Prometheus on an internal port); false requires any valid token. @default true */
        metricsOpen: Type.Boolean({ default: true }),
      },
      { default: {} },
    ),
    log: Type.Object(
      {
        /** @default 'info' */
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { default: {} },
    ),
    scrape: Type.Object(
      {
        /** Metrics endpoints (Istio/Envoy, ztunnel, Linkerd proxies) whose counters become events. @default [] */
        targets: Type.Array(
          Type.Object({
            /** Metrics URL, e.g. `http://10.0.0.5:15090/stats/prometheus`. */
            url: Type.String({ pattern: '^https?://' }),
            /** Time between two scrapes of this target, in seconds. @default 15 */
            intervalSeconds: Type.Number({ minimum: 1, default: 15 }),
          }),
          { default: [] },
        ),
      },
      { default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ApiRole = (typeof ROLES)[number];
export { ROLES as API_ROLES };

/** Environment variables that override config keys; each key is a dotted path into Config. */
export const ENV_KEYS = {
  ZTWATCH_DATA_DIR: 'dataDir',
  CLICKHOUSE_URL: 'clickhouse.url',
  CLICKHOUSE_USER: 'clickhouse.username',
  CLICKHOUSE_PASSWORD: 'clickhouse.password',
  CLICKHOUSE_DATABASE: 'clickhouse.database',
  CLICKHOUSE_CLUSTER: 'clickhouse.cluster',
  ZTWATCH_RETENTION_DAYS: 'clickhouse.retentionDays',
  KAFKA_BROKERS: 'kafka.brokers',
  ZTWATCH_HTTP_HOST: 'http.host',
  ZTWATCH_HTTP_PORT: 'http.port',
  ZTWATCH_CURSOR_SECRET: 'http.cursorSecret',
  ZTWATCH_LOG_LEVEL: 'log.level',
} as const;

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
export type FrozenConfig = DeepReadonly<Config>;

export interface LoadConfigOptions {
  /** YAML file; when absent, `./ztwatch.yaml` is read if it exists. */
  file?: string | undefined;
  /** Environment to read overrides from. @default process.env */
  env?: Record<string, string | undefined>;
  /** Values applied last (tests, CLI flags). */
  overrides?: Record<string, unknown>;
}

/** Loads, validates and freezes the configuration. Throws ZTW_CONFIG_* with every problem listed. */
export function loadConfig(options: LoadConfigOptions = {}): FrozenConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env.ZTWATCH_CONFIG ?? (existsSync('ztwatch.yaml') ? 'ztwatch.yaml' : undefined);
  let fromFile: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (cause) {
      throw createError('CONFIG_UNREADABLE', file, { cause });
    }
    try {
      fromFile = parseYaml(text) ?? {};
    } catch (cause) {
      throw createError('CONFIG_INVALID', `${file} is not valid YAML`, { cause });
    }
  }
  const merged = deepMerge(structuredClone(fromFile), envOverrides(env));
  if (options.overrides) deepMerge(merged, structuredClone(options.overrides));
  return buildConfig(merged);
}

/** Validates a plain object as Config (defaults applied) and freezes it. */
export function buildConfig(input: unknown): FrozenConfig {
  const withDefaults = Value.Default(ConfigSchema, structuredClone(input ?? {}));
  const converted = Value.Convert(ConfigSchema, withDefaults);
  const errors = [...Value.Errors(ConfigSchema, converted)];
  if (errors.length > 0) {
    const list = errors.slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
    throw createError('CONFIG_INVALID', list.join('; '), { details: { errors: list } });
  }
  return deepFreeze(converted as Config);
}

function envOverrides(env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const parsed: unknown = path === 'kafka.brokers' ? value.split(',').map((b) => b.trim()).filter(Boolean) : value;
    setPath(out, path, parsed);
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(target: unknown, source: unknown): Record<string, unknown> {
  const base = isPlainObject(target) ? target : {};
  if (!isPlainObject(source)) return base;
  for (const [key, value] of Object.entries(source)) {
    base[key] = isPlainObject(value) && isPlainObject(base[key]) ? deepMerge(base[key], value) : value;
  }
  return base;
}

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
