// End-to-end benchmark (DESIGN §10): Envoy JSON lines posted as NDJSON to a `ztwatch collector`
// process → Kafka 4.1.1 (scripts/kafka.sh, on this machine) → the sink in this process (wired as
// `ztwatch sink` wires it, tamper-evidence chain included) → embedded ClickHouse on disk.
// Printed next to the raw insert rate of the same rows into the same ClickHouse, measured in the
// same run, the rate of the sink alone draining the same topics, and the freshness of each event:
// received by the collector → queryable.
// Bounded: at most MAX_EVENTS events or MAX_SECONDS of posting.
// Run alone: `node bin/run-ts.js bench/e2e.ts [events] [partitions]` (default: config's kafka.partitions).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { quantile } from 'simple-statistics';
import { createBus } from '../bus/index.ts';
import { MemoryBus } from '../bus/memory.ts';
import { buildConfig, type FrozenConfig } from '../core/config.ts';
import { createMetrics } from '../core/metrics.ts';
import { createIngestor } from '../ingest/pipeline.ts';
import { createStore, type Store } from '../store/client.ts';
import { createSinkWithChain } from '../store/sink-with-chain.ts';
import { ensureKafka } from '../test/helpers/kafka.ts';
import { envoyLine } from './envoy-line.ts';

const MAX_EVENTS = 500_000;
const DEFAULT_EVENTS = 150_000;
const MAX_SECONDS = 60;
/** Longest the sink-alone phase may take, in seconds. */
const DRAIN_SECONDS = 30;
const LINES_PER_REQUEST = 1000;
const CLIENTS = 4;
const RAW_BATCH_ROWS = 20_000;
/** Length of the steady-rate phase that measures freshness, in seconds. */
const FRESHNESS_SECONDS = 10;
const FRESHNESS_LINES_PER_REQUEST = 200;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Inserts the parsed rows straight into another database of the same engine: the ceiling. */
async function measureRawInsert(config: FrozenConfig, lines: readonly string[]): Promise<number> {
  const raw = buildConfig({ ...structuredClone(config), clickhouse: { ...config.clickhouse, database: `${config.clickhouse.database}_raw` } });
  const store = createStore(raw);
  await store.migrate();
  // Parsed exactly as the collector parses them (ids and receive time included); parse() publishes nothing.
  const { events } = createIngestor({ bus: new MemoryBus(), metrics: createMetrics() }).parse('envoy', lines, Date.now());
  const started = performance.now();
  for (let i = 0; i < events.length; i += RAW_BATCH_ROWS) await store.insertEvents(events.slice(i, i + RAW_BATCH_ROWS));
  const seconds = (performance.now() - started) / 1000;
  await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
  await store.close();
  return events.length / seconds;
}

/** Starts `ztwatch collector` with `config` (plus an ingest token) and waits until it listens. */
async function startCollector(config: FrozenConfig, dir: string, token: string): Promise<{ url: string; stop(): Promise<void> }> {
  const file = join(dir, 'collector.json');
  writeFileSync(file, JSON.stringify({ ...config, auth: { ...config.auth, tokens: [{ name: 'bench', role: 'ingest', sha256: createHash('sha256').update(token).digest('hex') }] } }));
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/ztwatch.js', import.meta.url)), 'collector', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${out}`)), 60_000);
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /ready on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.once('exit', (code) => reject(new Error(`collector exited (${code}): ${out}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Rows/s of a sink of a fresh group draining `expected` events already on the topics. */
async function measureDrain(config: FrozenConfig, expected: number): Promise<number> {
  const drain = buildConfig({
    ...structuredClone(config),
    clickhouse: { ...config.clickhouse, database: `${config.clickhouse.database}_drain` },
    kafka: { ...config.kafka, sinkGroup: `${config.kafka.sinkGroup}-drain` },
  });
  const metrics = createMetrics();
  const store = createStore(drain);
  await store.migrate();
  const bus = await createBus(drain, metrics);
  let stored = 0;
  const started = performance.now();
  const sink = await createSinkWithChain({
    bus,
    store,
    metrics,
    config: drain,
    onStored: (count) => {
      stored += count;
    },
  });
  const deadline = Date.now() + DRAIN_SECONDS * 1000;
  while (stored < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const rate = stored / ((performance.now() - started) / 1000);
  await sink.close();
  await bus.close();
  await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
  await store.close();
  return rate;
}

/** The store, with the time each event became queryable (insert returned) minus its receive time. */
function recordFreshness(store: Store, freshnessMs: number[]): Store {
  return {
    ...store,
    async insertEvents(events, dedupToken, json) {
      await store.insertEvents(events, dedupToken, json);
      const now = Date.now();
      for (const e of events) freshnessMs.push(now - e.observed_time);
    },
  };
}

/** Runs the end-to-end benchmark and prints events/s, the ratio to raw insert and freshness. */
export async function runE2eBench(eventsWanted = DEFAULT_EVENTS, partitions?: number): Promise<void> {
  const total = Math.min(MAX_EVENTS, Math.max(LINES_PER_REQUEST, eventsWanted));
  const broker = await ensureKafka();
  const dataDir = mkdtempSync(join(tmpdir(), 'ztwatch-bench-e2e-'));
  const token = randomBytes(24).toString('hex');
  const config = buildConfig({
    dataDir,
    clickhouse: { database: `bench_${randomBytes(4).toString('hex')}` },
    kafka: { brokers: broker.brokers, topicPrefix: `bench${randomBytes(4).toString('hex')}.`, ...(partitions ? { partitions } : {}) },
    http: { port: 0 },
    log: { level: 'warn' },
  });
  const nowMs = Date.now();
  const lines = Array.from({ length: total }, (_, i) => envoyLine(i, nowMs));
  const bytes = lines.reduce((n, l) => n + l.length + 1, 0);

  try {
    const metrics = createMetrics();
    const baseStore = createStore(config);
    await baseStore.migrate();
    const rawRate = await measureRawInsert(config, lines);

    const freshnessMs: number[] = [];
    const store = recordFreshness(baseStore, freshnessMs);
    const bus = await createBus(config, metrics);
    let stored = 0;
    const sink = await createSinkWithChain({
      bus,
      store,
      metrics,
      config,
      onStored: (count) => {
        stored += count;
      },
    });
    // The collector role in a process of its own, as deployed; this process is the sink.
    const collector = await startCollector(config, dataDir, token);
    const url = `${collector.url}/v1/ingest/envoy`;

    const bodies: string[] = [];
    for (let i = 0; i < total; i += LINES_PER_REQUEST) bodies.push(lines.slice(i, i + LINES_PER_REQUEST).join('\n'));
    let accepted = 0;
    let refusals = 0;
    /** Posts one body until the collector takes it (429/503 carry Retry-After: back off briefly). */
    const send = async (body: string) => {
      for (;;) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${token}` }, body });
        const answer = (await res.json()) as { accepted?: number };
        if (res.status === 200) {
          accepted += answer.accepted ?? 0;
          return;
        }
        refusals++;
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    // Throughput: every client posts as fast as the collector answers.
    let next = 0;
    const started = performance.now();
    const deadline = Date.now() + MAX_SECONDS * 1000;
    const client = async () => {
      while (next < bodies.length && Date.now() < deadline) await send(bodies[next++] as string);
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const postedSeconds = (performance.now() - started) / 1000;
    while (stored < accepted && Date.now() < deadline + 30_000) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - started) / 1000;
    const rate = stored / seconds;

    // Freshness at a steady half of that rate: a saturated pipeline only measures its backlog.
    freshnessMs.length = 0;
    const steadyRate = Math.max(1000, Math.floor(rate / 2));
    const steadyLines = Math.min(lines.length, steadyRate * FRESHNESS_SECONDS);
    const steadyBodies: string[] = [];
    for (let i = 0; i < steadyLines; i += FRESHNESS_LINES_PER_REQUEST) {
      const fresh = Date.now();
      steadyBodies.push(
        Array.from({ length: Math.min(FRESHNESS_LINES_PER_REQUEST, steadyLines - i) }, (_, k) => envoyLine(total + i + k, fresh)).join('\n'),
      );
    }
    const intervalMs = (1000 * FRESHNESS_LINES_PER_REQUEST) / steadyRate;
    const steadyStart = performance.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < steadyBodies.length; i++) {
      const due = steadyStart + i * intervalMs - performance.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      pending.push(send(steadyBodies[i] as string));
    }
    await Promise.all(pending);
    const steadyDeadline = Date.now() + 30_000;
    while (stored < accepted && Date.now() < steadyDeadline) await new Promise((r) => setTimeout(r, 20));

    await collector.stop();
    await sink.close();
    await bus.close();
    const [check] = await baseStore.query<{ n: string }>(`SELECT count() AS n FROM ${baseStore.database}.events`);
    await baseStore.close();

    // The sink alone: a second group drains the same topics into another database of the engine.
    const drainRate = await measureDrain(config, accepted);

    freshnessMs.sort((a, b) => a - b);
    const p50 = freshnessMs.length ? quantile(freshnessMs, 0.5) / 1000 : NaN;
    const p99 = freshnessMs.length ? quantile(freshnessMs, 0.99) / 1000 : NaN;
    console.log(
      `HTTP (ztwatch collector process, ${CLIENTS} clients × ${LINES_PER_REQUEST}-line NDJSON) → Kafka 4.1.1 (${config.kafka.compression}, ${config.kafka.partitions} partitions, acks=all, idempotent) → sink (batches ≤ ${config.sink.batchRows} rows / ${config.sink.batchWaitMs} ms, sink_state protocol, tamper-evidence chain) → embedded ClickHouse on disk (sink and store in this process); 2 cores shared by collector, sink and broker (load average ${loadavg()[0]?.toFixed(1)} at the end)`,
    );
    console.log(`  events          ${fmt(stored)} stored of ${fmt(accepted)} accepted (${fmt(total)} at full speed, ${(bytes / 1e6).toFixed(0)} MB, then ${fmt(steadyLines)} at a steady rate; ${refusals} 429/503 answers); count() = ${fmt(Number(check?.n))}`);
    console.log(`  end to end      ${fmt(rate)} events/s sustained (${fmt(total)} events: posting took ${postedSeconds.toFixed(1)} s, all stored by ${seconds.toFixed(1)} s; target ≥ 50,000)`);
    console.log(`  raw insert      ${fmt(rawRate)} rows/s: the same rows into the same ClickHouse, ${RAW_BATCH_ROWS}-row inserts, nothing else running`);
    console.log(`  ratio           ${(rate / rawRate).toFixed(2)} × raw insert (target ≥ 0.5)`);
    console.log(`  sink alone      ${fmt(drainRate)} events/s draining the same topics (Kafka → ClickHouse, no collector running): ${(drainRate / rawRate).toFixed(2)} × raw insert`);
    console.log(`  freshness       received → queryable p50 ${p50.toFixed(2)} s, p99 ${p99.toFixed(2)} s over ${fmt(freshnessMs.length)} events posted at a steady ${fmt(steadyRate)} events/s (target p99 ≤ 2 s)`);
  } finally {
    await broker.release();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runE2eBench(Number(process.argv[2] ?? DEFAULT_EVENTS), process.argv[3] ? Number(process.argv[3]) : undefined);
}
