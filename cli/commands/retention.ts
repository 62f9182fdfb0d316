// `ztwatch retention`: what the store holds per table and for how long — rows, bytes on disk,
// oldest and newest time, and the retention (TTL) in days, from config and as the table says.
import type { FrozenConfig } from '../../core/config.ts';
import type { Store } from '../../store/client.ts';
import { parseCommandArgs } from '../args.ts';
import { runWithLocalStore, type CommandIo } from '../local-store.ts';

const USAGE = `usage: ztwatch retention [--json]

For every table of the ztwatch database: rows, bytes on disk, oldest and newest row time, and
the retention in days (config key, and the TTL the table actually has; they differ when the
config changed after the table was created).
  --json    print the report as JSON`;

/** One table's line of the report. */
export interface RetentionRow {
  table: string;
  rows: number;
  bytesOnDisk: number;
  /** The time column the TTL is computed from, if any. */
  timeColumn: string | null;
  oldest: string | null;
  newest: string | null;
  /** Retention from config, for tables ztwatch sizes from config. */
  configDays: number | null;
  /** TTL in days as the table is defined. */
  tableDays: number | null;
}

/** Config retention (days) of each table ztwatch creates with a TTL from config. */
export function configRetentionDays(config: FrozenConfig): Record<string, number> {
  const ch = config.clickhouse;
  return {
    events: ch.retentionDays,
    edge_minute: ch.retentionDays,
    edge_hour: ch.retentionDays,
    anomalies: ch.anomalyRetentionDays,
    deadletters: ch.deadLetterRetentionDays,
    audit_log: ch.auditRetentionDays,
    batches: ch.auditRetentionDays,
  };
}

const TTL = /\bTTL\s+(?:toDateTime\()?([A-Za-z_][A-Za-z0-9_]*)\)?\s*\+\s*toIntervalDay\((\d+)\)/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Collects the report from the store's system tables. */
export async function readRetention(store: Store, config: FrozenConfig): Promise<RetentionRow[]> {
  const db = store.database;
  const tables = await store.query<{ name: string; engine: string; engine_full: string }>(
    "SELECT name, engine, engine_full FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree%' ORDER BY name",
    { db },
  );
  const parts = await store.query<{ table: string; rows: string; bytes: string }>(
    'SELECT table, toString(sum(rows)) AS rows, toString(sum(bytes_on_disk)) AS bytes FROM system.parts WHERE database = {db:String} AND active GROUP BY table',
    { db },
  );
  const sizes = new Map(parts.map((p) => [p.table, p]));
  const fromConfig = configRetentionDays(config);
  const report: RetentionRow[] = [];
  for (const t of tables) {
    if (t.name === 'schema_migrations') continue;
    const ttl = TTL.exec(t.engine_full);
    const column = ttl?.[1] && IDENTIFIER.test(ttl[1]) ? ttl[1] : null;
    let oldest: string | null = null;
    let newest: string | null = null;
    if (column) {
      const [range] = await store.query<{ oldest: string; newest: string; n: string }>(
        `SELECT toString(min(${column})) AS oldest, toString(max(${column})) AS newest, toString(count()) AS n FROM ${db}.${t.name}`,
      );
      if (range && Number(range.n) > 0) {
        oldest = range.oldest;
        newest = range.newest;
      }
    }
    const size = sizes.get(t.name);
    const plain = t.name.endsWith('_local') ? t.name.slice(0, -'_local'.length) : t.name;
    report.push({
      table: t.name,
      rows: Number(size?.rows ?? 0),
      bytesOnDisk: Number(size?.bytes ?? 0),
      timeColumn: column,
      oldest,
      newest,
      configDays: fromConfig[plain] ?? null,
      tableDays: ttl?.[2] ? Number(ttl[2]) : null,
    });
  }
  return report;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Runs `ztwatch retention` against `store`; returns the exit code. */
export async function runRetention(args: string[], io: CommandIo, store: Store, config: FrozenConfig): Promise<number> {
  const { values } = parseCommandArgs(args, { json: { type: 'boolean' } }, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const report = await readRetention(store, config);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const header = ['TABLE', 'ROWS', 'ON DISK', 'OLDEST', 'NEWEST', 'RETENTION'];
  const lines = report.map((r) => [
    r.table,
    String(r.rows),
    formatBytes(r.bytesOnDisk),
    r.oldest ?? '-',
    r.newest ?? '-',
    r.tableDays === null
      ? 'kept'
      : `${r.tableDays} d${r.configDays !== null && r.configDays !== r.tableDays ? ` (config: ${r.configDays} d, applies to new tables)` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const render = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  io.stdout.write(`${[render(header), ...lines.map(render)].join('\n')}\n`);
  return 0;
}

/** `ztwatch retention …` */
export function run(args: string[]): Promise<number> {
  return runWithLocalStore(args, USAGE, (io, store, config) => runRetention(args, io, store, config));
}
