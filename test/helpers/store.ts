// Test helper: a migrated store on the in-memory embedded engine, in a database of its own.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
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

/** The store of a describe block, readable inside its tests. */
export interface TestStoreHandle {
  readonly store: Store;
}

/**
 * Gives the enclosing describe block a migrated store: created (then `seed`ed) before its first
 * test, dropped after its last.
 */
export function useTestStore(config: FrozenConfig = createTestConfig(), seed?: (store: Store) => Promise<void>): TestStoreHandle {
  let store: Store | undefined;
  beforeAll(async () => {
    store = await createTestStore(config);
    await seed?.(store);
  });
  afterAll(async () => {
    if (store) await dropTestStore(store);
  });
  return {
    get store(): Store {
      if (!store) throw new Error('the test store exists only while the tests of its describe block run');
      return store;
    },
  };
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
