// Wires the stages of one process by role (DESIGN §1–2): bus, store, sink, detectors, HTTP app,
// file followers and metric scrapers. Every role command and `run`/`demo` start through here, so
// one process can host every role (embedded default) or exactly one (distributed).
import type { FastifyInstance } from 'fastify';
import type { ApiRole, FrozenConfig } from '../core/config.ts';
import type { Anomaly } from '../core/anomaly.ts';
import { createMetrics, type Metrics } from '../core/metrics.ts';
import type { Bus } from '../bus/port.ts';
import { createBus } from '../bus/index.ts';
import { createStore, type Store } from '../store/client.ts';
import type { Sink } from '../store/sink.ts';
import { createSinkWithChain } from '../store/sink-with-chain.ts';
import { createIngestor, type Ingestor } from '../ingest/pipeline.ts';
import { createFileFollower } from '../ingest/collectors/file-follow.ts';
import { createMetricsScraper } from '../ingest/metrics/scraper.ts';
import { createDetectorEngine, type DetectorEngine } from '../detectors/index.ts';
import { createIncidentStage, type IncidentStage } from '../incidents/stage.ts';
import type { IncidentChange } from '../incidents/correlator.ts';
import { buildApp } from '../api/app.ts';

export const ROLES = ['collector', 'sink', 'detector', 'api'] as const;
export type Role = (typeof ROLES)[number];

export interface RuntimeOptions {
  readonly config: FrozenConfig;
  readonly roles: ReadonlySet<Role>;
  /** Files to follow (collector role), each with its format (`auto` detects per line). */
  readonly follow?: ReadonlyArray<{ path: string; format: string }>;
  /** Plaintext tokens valid for this process only (the demo prints one). */
  readonly extraTokens?: Array<{ name: string; role: ApiRole; token: string }>;
  /** Called for every anomaly change the detector role makes. */
  readonly onAnomaly?: (anomaly: Anomaly, change: 'opened' | 'updated' | 'resolved') => void;
  /** Called for every incident change the detector role makes, after its row is written. */
  readonly onIncident?: (change: IncidentChange) => void;
  /** Where progress lines go. @default process.stderr */
  readonly log?: (line: string) => void;
}

export interface Runtime {
  readonly config: FrozenConfig;
  readonly metrics: Metrics;
  readonly bus: Bus;
  readonly store: Store | undefined;
  readonly ingestor: Ingestor | undefined;
  readonly engine: DetectorEngine | undefined;
  /** The incidents stage (detector role): correlation of the engine's anomalies into incidents. */
  readonly incidents: IncidentStage | undefined;
  readonly app: FastifyInstance;
  /** The listening address, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Stops in reverse order of start: HTTP, collectors, detectors, sink (drains), bus, store. */
  close(): Promise<void>;
}

/** Parses `--roles collector,sink` into a set; throws on unknown names. */
export function parseRoles(text: string): Set<Role> {
  const roles = new Set<Role>();
  for (const name of text.split(',').map((r) => r.trim()).filter(Boolean)) {
    if (!(ROLES as readonly string[]).includes(name)) throw new Error(`unknown role '${name}' (roles: ${ROLES.join(', ')})`);
    roles.add(name as Role);
  }
  return roles;
}

/** Starts the given roles in this process and listens on the configured HTTP address. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, roles } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`ztwatch: error while stopping: ${(err as Error).message}`);
      }
    }
  };

  try {
    const metrics = createMetrics();
    const needsStore = roles.has('sink') || roles.has('detector') || roles.has('api');
    let store: Store | undefined;
    if (needsStore) {
      store = createStore(config);
      const opened = store;
      closers.push(() => opened.close());
      await store.migrate();
      log(`ztwatch: store ready (${store.mode === 'embedded' ? `embedded ClickHouse under ${config.dataDir}` : config.clickhouse.url}, database ${store.database})`);
    }

    // Embedded: with the sink in this process, an ingest answer waits until the batch is stored.
    const bus = await createBus(config, metrics, { acknowledgeWhenHandled: roles.has('sink') });
    closers.push(() => bus.close());

    let sink: Sink | undefined;
    if (roles.has('sink') && store) {
      sink = await createSinkWithChain({ bus, store, metrics, config });
      const started = sink;
      closers.push(() => started.close());
    }

    let engine: DetectorEngine | undefined;
    let incidents: IncidentStage | undefined;
    if (roles.has('detector') && store) {
      const stage = createIncidentStage({ store, metrics, correlation: config.incidents, ...(options.onIncident ? { onIncident: options.onIncident } : {}) });
      incidents = stage;
      await stage.restore();
      engine = createDetectorEngine({
        store,
        metrics,
        config,
        onAnomaly: (anomaly, change) => {
          options.onAnomaly?.(anomaly, change);
          stage.observe(anomaly, change);
        },
        onWatermark: (watermarkMs) => stage.advanceTo(watermarkMs),
      });
      const live = engine.startLive();
      closers.push(() => stage.flush());
      closers.push(() => live.close());
    }

    const ingestor = roles.has('collector')
      ? createIngestor({
          bus,
          metrics,
          parseOptions: { fieldMap: config.ingest.fieldMap },
          maxFutureMs: config.ingest.maxFutureSeconds * 1000,
          // Older events would be dropped by the store's TTL at insert: dead-letter them instead.
          retentionMs: config.clickhouse.retentionDays * 86_400_000,
        })
      : undefined;
    if (ingestor) {
      for (const { path, format } of options.follow ?? []) {
        const follower = createFileFollower({
          path,
          statePath: `${config.dataDir === ':memory:' ? '.' : config.dataDir}/follow-${Buffer.from(path).toString('base64url')}.json`,
          onRecords: async (records, rejected) => {
            await ingestor.ingest(format, records, rejected);
          },
          maxLineBytes: config.ingest.maxLineBytes,
          onError: (err) => log(`ztwatch: following ${path}: ${err.message}`),
        });
        await follower.start();
        closers.push(() => follower.close());
        log(`ztwatch: following ${path} (${format})`);
      }
      if (config.scrape.targets.length > 0) {
        const scraper = createMetricsScraper({
          targets: config.scrape.targets.map((t) => ({ url: t.url, intervalSeconds: t.intervalSeconds })),
          emit: async (events) => {
            await ingestor.ingestEvents(events);
          },
          onError: (url, err) => log(`ztwatch: scrape of ${url} failed: ${err.message}`),
        });
        await scraper.start();
        closers.push(() => scraper.close());
      }
    }

    const app = await buildApp({
      config,
      metrics,
      bus,
      ...(roles.has('api') && store ? { store } : {}),
      ...(ingestor ? { ingestor } : {}),
      ...(options.extraTokens ? { extraTokens: options.extraTokens } : {}),
      isReady: async () => (store ? store.ping() : true),
    });
    closers.push(() => app.close());
    const url = await app.listen({ host: config.http.host, port: config.http.port });
    return { config, metrics, bus, store, ingestor, engine, incidents, app, url, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs until SIGINT/SIGTERM, then closes the runtime gracefully; resolves to the exit code. */
export function waitForShutdown(runtime: Runtime, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log(`ztwatch: ${signal} again, exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`ztwatch: ${signal} received, draining and stopping…`);
      runtime.close().then(
        () => resolve(0),
        (err: unknown) => {
          log(`ztwatch: shutdown failed: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
