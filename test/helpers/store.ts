// Test helper: a migrated store on the in-memory embedded engine, in a database of its own.
import { randomBytes } from 'node:crypto';
import { buildConfig, type FrozenConfig } from '../../core/config.ts';
import { createStore, type Store } from '../../store/client.ts';

/** Config for tests: embedded in-memory ClickHouse, a fresh database name, overrides applied. */
export function createTestConfig(overrides: Record<string, unknown> = {}): FrozenConfig {
  const base = { dataDir: ':memory:', clickhouse: { database: `t_${randomBytes(6).toString('hex')}` } };
  return buildConfig(mergeDeep(base, overrides));
}

/** A migrated store; drop it with `dropTestStore`. */
export async function createTestStore(config: FrozenConfig = createTestConfig()): Promise<Store> {
  const store = createStore(config);
  await store.migrate();
  return store;
}

/** Drops the test database and closes the client. */
export async function dropTestStore(store: Store): Promise<void> {
  await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
  await store.close();
}

/** Deep-merges plain objects (arrays and scalars of `b` replace those of `a`). */
export function mergeDeep(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof prev === 'object' && prev !== null && !Array.isArray(prev)
        ? mergeDeep(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
