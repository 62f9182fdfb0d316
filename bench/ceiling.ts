// The engine's best ingest of a set of rows (the "ceiling" of DESIGN §10): the rows pre-serialized
// as JSONEachRow in one file, loaded with `INSERT … SELECT FROM file()`, which the engine parses in
// parallel, into a fresh database of the embedded engine with the full schema. bench/ingest.ts and
// bench/kafka.ts both load it from here, so their ratios have the same denominator.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig, type FrozenConfig } from '../core/config.ts';
import type { NormalizedEvent } from '../core/event.ts';
import { createStore, type Store } from '../store/client.ts';
import { EVENT_COLUMNS } from '../store/schema.ts';

/** The events' columns as a `file()` structure (types without their codecs). */
const STRUCTURE = EVENT_COLUMNS.map(([name, type]) => `${name} ${type.replace(/\s+CODEC\(.*\)$/, '')}`).join(', ');

/** The ceiling's load itself: `INSERT … SELECT FROM file(rowsPath, JSONEachRow)` into `store`'s events. */
export function loadCeilingRows(store: Store, rowsPath: string): Promise<void> {
  return store.command(`INSERT INTO ${store.database}.events SELECT * FROM file({path:String}, 'JSONEachRow', {structure:String})`, { path: rowsPath, structure: STRUCTURE });
}

/** Writes `events` as JSONEachRow to `dir/rows.ndjson` (as the collector serializes them); returns the path. */
export function writeCeilingRows(dir: string, events: readonly NormalizedEvent[]): string {
  const path = join(dir, 'rows.ndjson');
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n'));
  return path;
}

/**
 * Rows/s of `INSERT … SELECT FROM file(rowsPath, JSONEachRow)` into a fresh, migrated database
 * `<base database>_<suffix>` (dropped afterwards); throws unless exactly `rows` rows were stored.
 */
export async function measureCeiling(base: FrozenConfig, rowsPath: string, rows: number, suffix = 'ceiling'): Promise<number> {
  const config = buildConfig({ ...structuredClone(base), clickhouse: { ...base.clickhouse, database: `${base.clickhouse.database}_${suffix}` } });
  const store = createStore(config);
  try {
    await store.migrate();
    const started = performance.now();
    await loadCeilingRows(store, rowsPath);
    const seconds = (performance.now() - started) / 1000;
    const [row] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.database}.events`);
    const stored = Number(row?.n ?? 0);
    if (stored !== rows) throw new Error(`ceiling stored ${stored} of ${rows} rows`);
    return rows / seconds;
  } finally {
    await store.command(`DROP DATABASE IF EXISTS ${store.database}`).catch(() => undefined);
    await store.close();
  }
}
