// Test helper: the real API over a real embedded store, the in-memory bus and a real sink, with one
// token per role. `close()` tears it all down; `settle()` waits until the sink stored everything.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { API_ROLES, type ApiRole, type FrozenConfig } from '../../core/config.ts';
import { createMetrics, type Metrics } from '../../core/metrics.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { createIngestor } from '../../ingest/pipeline.ts';
import type { Sink } from '../../store/sink.ts';
import type { Store } from '../../store/client.ts';
import { createSinkWithChain } from '../../store/sink-with-chain.ts';
import { buildApp, type AppOptions } from '../../api/app.ts';
import { hashToken } from '../../api/auth.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

/** Fixture folder of the shared samples. */
export const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url);

export interface TestApi {
  readonly app: FastifyInstance;
  readonly config: FrozenConfig;
  readonly metrics: Metrics;
  readonly store: Store | undefined;
  readonly bus: MemoryBus;
  /** A valid bearer token per role. */
  readonly tokens: Readonly<Record<ApiRole, string>>;
  /** `{ authorization: 'Bearer …' }` for a role. */
  auth(role: ApiRole): { authorization: string };
  /** Resolves once every published event is stored. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /** Config overrides (deep-merged over the test defaults). */
  readonly overrides?: Record<string, unknown>;
  /** Serve queries (a store). @default true */
  readonly withStore?: boolean;
  /** Accept events (an ingestor on the bus). @default true */
  readonly withIngest?: boolean;
  /** Store what is ingested (a sink with the hash chain). @default true when both are on */
  readonly withSink?: boolean;
  /** The bus, when a test needs a particular one (e.g. a tiny in-flight limit). */
  readonly bus?: MemoryBus;
  readonly appOptions?: Partial<AppOptions>;
}

/** Builds the API as a role process would, with real parts. */
export async function createTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const tokens = Object.fromEntries(API_ROLES.map((role) => [role, `ztw_${role}_${randomBytes(16).toString('hex')}`])) as Record<ApiRole, string>;
  const defaults = {
    log: { level: 'silent' },
    clickhouse: { retentionDays: 3650 },
    sink: { batchRows: 500, batchWaitMs: 10 },
    auth: { tokens: API_ROLES.map((role) => ({ name: `${role}-user`, role, sha256: hashToken(tokens[role]) })) },
  };
  const config = createTestConfig(mergeDeep(defaults, options.overrides ?? {}));
  const withStore = options.withStore ?? true;
  const withIngest = options.withIngest ?? true;
  const metrics = createMetrics();
  const bus = options.bus ?? new MemoryBus();
  const store = withStore ? await createTestStore(config) : undefined;
  let sink: Sink | undefined;
  if (store && withIngest && (options.withSink ?? true)) {
    sink = await createSinkWithChain({ bus, store, metrics, config });
  }
  const ingestor = withIngest ? createIngestor({ bus, metrics, retentionMs: config.clickhouse.retentionDays * 86_400_000 }) : undefined;
  const app = await buildApp({
    config,
    metrics,
    bus,
    ...(store ? { store } : {}),
    ...(ingestor ? { ingestor } : {}),
    ...options.appOptions,
  });
  await app.ready();
  return {
    app,
    config,
    metrics,
    store,
    bus,
    tokens,
    auth: (role) => ({ authorization: `Bearer ${tokens[role]}` }),
    settle: () => bus.whenIdle(),
    async close() {
      await app.close();
      await sink?.close();
      await bus.close();
      if (store) await dropTestStore(store);
    },
  };
}

function mergeDeep(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = isObject(v) && isObject(prev) ? mergeDeep(prev, v) : v;
  }
  return out;
}
