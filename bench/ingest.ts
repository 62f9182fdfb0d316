// Ingest benchmark (DESIGN §10, "insert path" and "end to end, embedded"): the same Envoy rows go
// through every stage of the embedded pipeline, and each stage is printed as events/s and as a
// ratio to the engine's own best ingest of those rows measured in the same run (the "ceiling":
// the rows pre-serialized as JSONEachRow in one file, `INSERT … SELECT FROM file()`, which the
// engine parses in parallel). Numbers on a shared machine move with its load; the ratios, taken
// minutes apart in one run, move much less.
//
// Stages, each into a fresh database of the same embedded engine with the full schema (rollup
// views, identity projection):
//   ceiling      INSERT … SELECT FROM file(JSONEachRow), one file, nothing else running; measured
//                first and last, ratios taken to the mean of the two
//   engine copy  INSERT … SELECT of the same rows already in the engine (parsing excluded)
//   engine, N    the ceiling's load in files of N rows (sink.batchRows, 1 000), one insert each,
//                and the CPU of a one-row insert: what each insert costs whatever its size
//   parse        the ingest parsers alone (JS, one core; no engine)
//   serialize    JSON.stringify of every event (what the collector does before publishing)
//   row objects  the previous insert path: row objects through @clickhouse/client's JSONEachRow
//   insert path  store.insertEvents in sink-sized batches (what the sink calls), then in smaller
//                and larger batches, with the server's transport (INSERT … FORMAT payload), and
//                without the identity projection
//   sink alone   memory bus already holding the events (text and object, as the collector
//                publishes them) → sink with its hash chain → store
//   embedded     HTTP NDJSON (senders in a child process) → collector → memory bus → sink with
//                chain → store, one process
//   backtest     a file of the same lines → parse → memory bus → sink with chain → detectors
//
// Besides events/s, each stage prints the CPU time of this process per event (every thread: JS and
// the engine's), which bounds its rate on this machine's cores whatever the load, and for the
// stages with a bus the main thread's busy time per event.
//
// Bounded: ZTWATCH_BENCH_EVENTS rows (default 100000, at most 1000000); every wait has a deadline.
// Run alone: `node bin/run-ts.js bench/ingest.ts` or `npm run bench -- ingest`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MemoryBus } from '../bus/memory.ts';
import { TOPICS } from '../bus/port.ts';
import { createFileSource, createRecordParser } from '../cli/commands/backtest.ts';
import { startRuntime } from '../cli/runtime.ts';
import { buildConfig, type FrozenConfig } from '../core/config.ts';
import type { NormalizedEvent } from '../core/event.ts';
import { createMetrics } from '../core/metrics.ts';
import { runBacktest } from '../detectors/backtest.ts';
import { createIngestor } from '../ingest/pipeline.ts';
import { createStore, type Store, type StoreOptions } from '../store/client.ts';
import { IDENTITY_PROJECTION } from '../store/migrations/compliance.ts';
import { createSinkWithChain } from '../store/sink-with-chain.ts';
import { loadCeilingRows } from './ceiling.ts';
import { envoyLine } from './envoy-line.ts';

const DEFAULT_EVENTS = 100_000;
const MAX_EVENTS = 1_000_000;
/** Longest any one stage may take before it is reported as unfinished, in seconds. */
const STAGE_SECONDS = 180;
const LINES_PER_REQUEST = 1000;
/** Concurrent senders: with ingest acknowledged once stored, their requests share sink batches (group commit). @default 16 */
const CLIENTS = readClients();

function readClients(): number {
  const text = process.env.ZTWATCH_BENCH_CLIENTS;
  const n = text === undefined ? 16 : Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new Error(`ZTWATCH_BENCH_CLIENTS=${text}: a whole number from 1 to 256`);
  return n;
}

function readEvents(): number {
  const text = process.env.ZTWATCH_BENCH_EVENTS;
  const n = text === undefined ? DEFAULT_EVENTS : Number(text);
  if (!Number.isSafeInteger(n) || n < 1000 || n > MAX_EVENTS) throw new Error(`ZTWATCH_BENCH_EVENTS=${text}: a whole number from 1000 to ${MAX_EVENTS}`);
  return n;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const cores = availableParallelism();

interface StageResult {
  readonly name: string;
  readonly eventsPerSecond: number;
  readonly note: string;
  /** CPU time of this process (every thread: JS, the engine's threads) per event, in µs. */
  readonly cpuUsPerEvent?: number;
  /** Time the main thread's event loop was busy (JS, not waiting) per event, in µs. */
  readonly mainUsPerEvent?: number;
}

/** Microseconds of CPU (user + system, all threads of this process) since `from`. */
function cpuSinceUs(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return used.user + used.system;
}

/** A fresh, migrated database of the shared embedded engine, dropped by `drop()`. */
async function openStore(base: FrozenConfig, suffix: string, options: StoreOptions = {}): Promise<{ store: Store; config: FrozenConfig; drop(): Promise<void> }> {
  const config = buildConfig({ ...structuredClone(base), clickhouse: { ...base.clickhouse, database: `${base.clickhouse.database}_${suffix}` } });
  const store = createStore(config, options);
  await store.migrate();
  return {
    store,
    config,
    async drop() {
      await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
      await store.close();
    },
  };
}

async function countEvents(store: Store): Promise<number> {
  const [row] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.database}.events`);
  return Number(row?.n ?? 0);
}

/** Waits until `done()` or the stage deadline; true when done. */
async function waitUntil(done: () => boolean | Promise<boolean>, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + STAGE_SECONDS * 1000;
  while (Date.now() < deadline) {
    if (await done()) return true;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return false;
}

/**
 * The senders' loop, run by a child `node` process: posts the file's lines in bodies of
 * `linesPerRequest` from `clients` concurrent senders, each body until it is taken (a 429/503
 * is retried after 50 ms), and prints the number of refusals.
 */
const SENDERS_SCRIPT = `
const [url, token, file, clients, perRequest, deadlineMs] = process.argv.slice(1);
const lines = require('node:fs').readFileSync(file, 'utf8').split('\\n');
const bodies = [];
for (let i = 0; i < lines.length; i += Number(perRequest)) bodies.push(lines.slice(i, i + Number(perRequest)).join('\\n'));
let next = 0;
let refusals = 0;
const send = async () => {
  while (next < bodies.length && Date.now() < Number(deadlineMs)) {
    const body = bodies[next++];
    for (;;) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: 'Bearer ' + token }, body });
      await res.arrayBuffer();
      if (res.status === 200 || Date.now() > Number(deadlineMs)) break;
      refusals++;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
};
Promise.all(Array.from({ length: Number(clients) }, send)).then(() => process.stdout.write(String(refusals)));
`;

/** Runs the senders in a child process; resolves to their refusal count once every body is taken. */
function runSenders(options: { url: string; token: string; bodiesFile: string; clients: number; linesPerRequest: number; deadlineMs: number }): Promise<number> {
  const args = [options.url, options.token, options.bodiesFile, String(options.clients), String(options.linesPerRequest), String(options.deadlineMs)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SENDERS_SCRIPT, ...args], { maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`senders failed: ${stderr || err.message}`));
      else resolve(Number(stdout));
    });
  });
}

/** Runs the benchmark and prints each stage as events/s and as a ratio to the ceiling. */
export async function runIngestBench(): Promise<void> {
  const total = readEvents();
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-bench-ingest-'));
  const base = buildConfig({ dataDir: ':memory:', clickhouse: { database: `bench_ingest_${randomBytes(4).toString('hex')}` }, http: { port: 0 }, log: { level: 'silent' } });
  const nowMs = Date.now();
  const lines = Array.from({ length: total }, (_, i) => envoyLine(i, nowMs));
  const stages: StageResult[] = [];
  let insertFixedCost = '';
  const time = async (fn: () => Promise<number | void>): Promise<{ seconds: number; value: number | void; cpuUs: number; mainUs: number }> => {
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const started = performance.now();
    const value = await fn();
    return { seconds: (performance.now() - started) / 1000, value, cpuUs: cpuSinceUs(cpu), mainUs: performance.eventLoopUtilization(loop).active * 1000 };
  };

  try {
    // parse: the same parsing as the collector (ids and receive time included); publishes nothing.
    let events: NormalizedEvent[] = [];
    const parsed = await time(async () => {
      events = createIngestor({ bus: new MemoryBus(), metrics: createMetrics() }).parse('envoy', lines, Date.now()).events;
    });
    if (events.length !== total) throw new Error(`parsed ${events.length} of ${total} lines`);
    let texts: string[] = [];
    const serialized = await time(async () => {
      texts = events.map((e) => JSON.stringify(e));
      writeFileSync(join(dir, 'rows.ndjson'), texts.join('\n'));
    });

    // ceiling: the engine's own parallel parsing of the pre-serialized rows (with the events
    // structure, as the insert path reads its files). Measured first and again last: ratios are
    // taken to the mean, and the drift between the two shows how much the machine's load moved.
    const measureCeiling = async (suffix: string): Promise<{ rate: number; cpuUs: number; db: Awaited<ReturnType<typeof openStore>> }> => {
      const db = await openStore(base, suffix);
      const loaded = await time(() => loadCeilingRows(db.store, join(dir, 'rows.ndjson')));
      const stored = await countEvents(db.store);
      if (stored !== total) throw new Error(`ceiling stored ${stored} of ${total} rows`);
      return { rate: total / loaded.seconds, cpuUs: loaded.cpuUs, db };
    };
    const { rate: firstCeilingRate, cpuUs: firstCeilingCpuUs, db: ceilingDb } = await measureCeiling('ceiling');

    const copyDb = await openStore(base, 'copy');
    const copy = await time(() => copyDb.store.command(`INSERT INTO ${copyDb.store.database}.events SELECT * FROM ${ceilingDb.store.database}.events`));
    stages.push({ name: 'engine copy', eventsPerSecond: total / copy.seconds, cpuUsPerEvent: copy.cpuUs / total, note: 'INSERT … SELECT of rows already in the engine (no parsing)' });
    await copyDb.drop();
    await ceilingDb.drop();

    // The engine alone in batches: the ceiling's load, but the same rows in files of the sink's
    // batch size (and of 1 000 rows, a sink's batch at a low steady rate), one insert per file. Each
    // insert has a cost of its own whatever its size (the table, its projection, the parts of every
    // materialized view it feeds and the merges they cause), measured last as the CPU of one-row
    // inserts: a sink that stores in batches cannot be cheaper than this line, nor than the ceiling.
    for (const rows of [base.sink.batchRows, 1_000].filter((n) => n < total)) {
      const files: string[] = [];
      for (let i = 0; i < total; i += rows) {
        files.push(join(dir, `batch-${rows}-${i}.ndjson`));
        writeFileSync(files[files.length - 1] as string, texts.slice(i, i + rows).join('\n'));
      }
      const db = await openStore(base, `batches_${rows}`);
      const loaded = await time(async () => {
        for (const f of files) await loadCeilingRows(db.store, f);
      });
      const stored = await countEvents(db.store);
      if (stored !== total) throw new Error(`engine in ${rows}-row files stored ${stored} of ${total} rows`);
      stages.push({ name: `engine, ${fmt(rows)}`, eventsPerSecond: total / loaded.seconds, cpuUsPerEvent: loaded.cpuUs / total, note: `the ceiling's load in ${files.length} files of ${fmt(rows)} rows, one insert each (no JS per row)` });
      if (rows === 1_000) {
        // The fixed cost: one-row inserts into the same store, after a few to warm up.
        const oneRow = join(dir, 'one-row.ndjson');
        writeFileSync(oneRow, texts[0] as string);
        for (let i = 0; i < 3; i++) await loadCeilingRows(db.store, oneRow);
        const inserts = 10;
        const single = await time(async () => {
          for (let i = 0; i < inserts; i++) await loadCeilingRows(db.store, oneRow);
        });
        const views = await db.store.query<{ n: string }>(`SELECT toString(count()) AS n FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'`, { db: db.store.database });
        insertFixedCost = `one-row inserts: ${(single.cpuUs / inserts / 1000).toFixed(0)} ms CPU, ${((single.seconds * 1000) / inserts).toFixed(0)} ms wall each (events, its projection and ${views[0]?.n ?? '?'} materialized views)`;
      }
      await db.drop();
    }

    stages.push({ name: 'parse', eventsPerSecond: total / parsed.seconds, cpuUsPerEvent: parsed.cpuUs / total, note: 'ingest parsers alone (JS, one core)' });
    stages.push({ name: 'serialize', eventsPerSecond: total / serialized.seconds, cpuUsPerEvent: serialized.cpuUs / total, note: 'JSON.stringify of every event + one file write (JS, one core)' });

    // insert path: what the sink calls, in the sink's batch size and around it.
    const batchRows = base.sink.batchRows;
    const insertAt = async (name: string, rows: number, note: string, prepare?: (store: Store) => Promise<void>, options: StoreOptions = {}): Promise<void> => {
      const db = await openStore(base, `insert_${stages.length}`, options);
      await prepare?.(db.store);
      const insert = await time(async () => {
        for (let i = 0; i < events.length; i += rows) await db.store.insertEvents(events.slice(i, i + rows), `bench:${i}`);
      });
      stages.push({ name, eventsPerSecond: total / insert.seconds, cpuUsPerEvent: insert.cpuUs / total, note });
      await db.drop();
    };
    // The previous path, for comparison in the same run: row objects through @clickhouse/client.
    const previousDb = await openStore(base, 'previous');
    const previous = await time(async () => {
      for (let i = 0; i < events.length; i += batchRows) {
        await previousDb.store.insertRows('events', events.slice(i, i + batchRows) as unknown as Record<string, unknown>[], { insert_deduplication_token: `bench:${i}`, insert_deduplicate: 1 });
      }
    });
    stages.push({ name: 'row objects', eventsPerSecond: total / previous.seconds, cpuUsPerEvent: previous.cpuUs / total, note: `@clickhouse/client JSONEachRow of the row objects (the previous insert path), ${fmt(batchRows)}-row batches` });
    await previousDb.drop();
    await insertAt('insert path', batchRows, `store.insertEvents (one buffer per batch → file()), ${fmt(batchRows)}-row batches (sink.batchRows) with dedup tokens`);
    for (const rows of [5_000, 50_000].filter((n) => n !== batchRows && n < total)) {
      await insertAt(`  ${fmt(rows)} rows`, rows, `store.insertEvents, ${fmt(rows)}-row batches`);
    }
    await insertAt('  stream', batchRows, `store.insertEvents, ${fmt(batchRows)}-row batches as INSERT … FORMAT JSONEachRow payloads (the server transport)`, undefined, { eventTransport: 'stream' });
    await insertAt('  no proj.', batchRows, `store.insertEvents, ${fmt(batchRows)}-row batches, events without the identity projection`, (store) =>
      store.command(`ALTER TABLE ${store.database}.events DROP PROJECTION ${IDENTITY_PROJECTION}`),
    );

    // sink alone: the bus already holds every event; the sink (with its chain) drains it.
    const sinkDb = await openStore(base, 'sink');
    const bus = new MemoryBus({ maxInFlightMessages: total + 1 });
    await bus.publish(
      TOPICS.events,
      // As the collector publishes them: the text, and the event it was serialized from (in process).
      events.map((e) => ({ key: e.dst_service, value: JSON.stringify(e), payload: e })),
    );
    let sinkStored = 0;
    const drained = await time(async () => {
      const sink = await createSinkWithChain({ bus, store: sinkDb.store, metrics: createMetrics(), config: sinkDb.config, onStored: (n) => (sinkStored += n) });
      await waitUntil(() => sinkStored >= total, 10);
      await sink.close();
    });
    await bus.close();
    stages.push({ name: 'sink alone', eventsPerSecond: sinkStored / drained.seconds, cpuUsPerEvent: drained.cpuUs / Math.max(1, sinkStored), mainUsPerEvent: drained.mainUs / Math.max(1, sinkStored), note: `memory bus → sink (check, insert, hash chain), ${fmt(sinkStored)} stored` });
    await sinkDb.drop();

    // embedded end to end: the collector and sink roles of one process, as `ztwatch run` starts them.
    const token = randomBytes(24).toString('hex');
    const e2eConfig = buildConfig({ ...structuredClone(base), clickhouse: { ...base.clickhouse, database: `${base.clickhouse.database}_e2e` } });
    const runtime = await startRuntime({ config: e2eConfig, roles: new Set(['collector', 'sink']), extraTokens: [{ name: 'bench', role: 'ingest', token }], log: () => undefined });
    let e2eStored = 0;
    let refusals = 0;
    try {
      // The senders run in a child process, so this process's CPU and main-thread figures are the
      // collector's and the sink's alone (the child still shares the machine's cores).
      const bodiesFile = join(dir, 'bodies.ndjson');
      writeFileSync(bodiesFile, lines.join('\n'));
      const e2e = await time(async () => {
        refusals = await runSenders({ url: `${runtime.url}/v1/ingest/envoy`, token, bodiesFile, clients: CLIENTS, linesPerRequest: LINES_PER_REQUEST, deadlineMs: Date.now() + STAGE_SECONDS * 1000 });
        await waitUntil(async () => (e2eStored = await countEvents(runtime.store as Store)) >= total, 200);
      });
      stages.push({ name: 'embedded', eventsPerSecond: e2eStored / e2e.seconds, cpuUsPerEvent: e2e.cpuUs / Math.max(1, e2eStored), mainUsPerEvent: e2e.mainUs / Math.max(1, e2eStored), note: `HTTP (${CLIENTS} clients in a child process × ${LINES_PER_REQUEST}-line NDJSON) → memory bus → sink with chain → store; ${fmt(e2eStored)} stored, ${refusals} refusals` });
      await (runtime.store as Store).command(`DROP DATABASE IF EXISTS ${e2eConfig.clickhouse.database}`);
    } finally {
      await runtime.close();
    }

    // backtest: the same lines as a recorded file, through the live path plus the detectors.
    const file = join(dir, 'envoy.log');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const backtestCpu = process.cpuUsage();
    const backtestLoop = performance.eventLoopUtilization();
    const result = await runBacktest({
      openSources: (c) => [createFileSource(file, { format: 'envoy', maxLineBytes: c.ingest.maxLineBytes })],
      parse: createRecordParser(base),
      config: base,
      storage: ':memory:',
    });
    stages.push({ name: 'backtest', eventsPerSecond: result.eventsPerSecond, cpuUsPerEvent: cpuSinceUs(backtestCpu) / Math.max(1, result.events), mainUsPerEvent: (performance.eventLoopUtilization(backtestLoop).active * 1000) / Math.max(1, result.events), note: `file → parse → memory bus → sink with chain → detectors; ${fmt(result.events)} events, ${result.anomalies.length} anomalies` });

    const last = await measureCeiling('ceiling_last');
    await last.db.drop();
    const ceilingRate = (firstCeilingRate + last.rate) / 2;
    stages.unshift({ name: 'ceiling', eventsPerSecond: ceilingRate, cpuUsPerEvent: (firstCeilingCpuUs + last.cpuUs) / 2 / total, note: `INSERT … SELECT FROM file(…, 'JSONEachRow'), one file of the pre-serialized rows: mean of ${fmt(firstCeilingRate)} (first) and ${fmt(last.rate)} (last)` });
    console.log(`${fmt(total)} Envoy events (${(lines.reduce((n, l) => n + l.length + 1, 0) / 1e6).toFixed(0)} MB of log lines), embedded ClickHouse (chDB), full schema; load average ${loadavg()[0]?.toFixed(1)} at the end`);
    for (const s of stages) {
      const cpu = s.cpuUsPerEvent === undefined ? '' : `${s.cpuUsPerEvent.toFixed(1)} µs CPU (≤ ${fmt((cores * 1e6) / s.cpuUsPerEvent)}/s)`;
      const main = s.mainUsPerEvent === undefined ? '' : `, main thread ${s.mainUsPerEvent.toFixed(1)} µs`;
      console.log(`  ${s.name.padEnd(13)} ${fmt(s.eventsPerSecond).padStart(9)} events/s  ${(s.eventsPerSecond / ceilingRate).toFixed(2).padStart(5)} × ceiling ${`${cpu}${main}`.padStart(28)}  ${s.note}`);
    }
    if (insertFixedCost) console.log(`  per insert, whatever its size: ${insertFixedCost}`);
    console.log(
      `  µs CPU: user + system time of this process per event (JS and the engine's threads; not the embedded stage's senders, a child process); (≤ N/s): the rate at which that work fills all ${cores} cores; main thread: wall time its event loop was busy per event (performance.eventLoopUtilization; on a loaded machine this includes waiting for a core)`,
    );
    console.log('  targets: insert path and sink alone ≥ 0.7 × ceiling; embedded ≥ 50,000 events/s; backtest ≥ 50,000 events/s (DESIGN §10)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runIngestBench();
