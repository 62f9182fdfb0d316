// Kafka benchmark (DESIGN §10, "HTTP → Kafka → sink → ClickHouse ≥ 30 000 events/s with the broker
// on the same cores" and "freshness p99 ≤ 2 s"): Envoy JSON lines posted as NDJSON over loopback to
// a `ztwatch collector` process → Kafka 4.1.1 (scripts/kafka.sh, on this machine, as the tests start
// it) → a sink process wired as `ztwatch sink` wires it (bench/kafka-sink.ts: tamper-evidence chain
// included) → embedded ClickHouse on disk. Printed as events/s and as a ratio to the engine's own
// best ingest of the same rows (bench/ceiling.ts, measured first and last in the same run), with
// the CPU time each process spent per event stored (what limits the path), then the freshness
// (collector received → row queryable) of events posted at a steady half of the measured rate.
//
// Bounded: ZTWATCH_BENCH_KAFKA_EVENTS events (default 100000, at most 1000000), at most
// MAX_POST_SECONDS of posting; every wait has a deadline. ZTWATCH_BENCH_CLIENTS senders (default
// 16); ZTWATCH_BENCH_KAFKA_PARTITIONS partitions and ZTWATCH_BENCH_KAFKA_COMPRESSION (lz4, gzip or
// none) (defaults: config's kafka.partitions and kafka.compression);
// ZTWATCH_BENCH_CPU_PROF=DIR starts the collector and sink with `--cpu-prof` writing into DIR;
// ZTWATCH_BENCH_KAFKA_QUICK=1 measures only the full-speed phase (no ceiling, no freshness phase),
// for quick A/B runs of the path's CPU per event; ZTWATCH_BENCH_KAFKA_QUICK=bus measures the Kafka
// bus alone, in this process: the collector's events published by 16 publishers of 1000, then
// consumed by a handler that only holds each batch ZTWATCH_BENCH_KAFKA_HOLD_MS (default 0), with the
// CPU per event of each phase here and in the broker (no HTTP, parsing or ClickHouse to blur it).
// Run alone: `npm run bench -- kafka` or `node bin/run-ts.js bench/kafka.ts`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createKafkaBus } from '../bus/kafka.ts';
import { MemoryBus } from '../bus/memory.ts';
import { TOPICS, type BusMessage } from '../bus/port.ts';
import { buildConfig, type FrozenConfig } from '../core/config.ts';
import { createMetrics } from '../core/metrics.ts';
import { createIngestor } from '../ingest/pipeline.ts';
import { createKafkaTestConfig, ensureKafka } from '../test/helpers/kafka.ts';
import { measureCeiling, writeCeilingRows } from './ceiling.ts';
import { envoyLine } from './envoy-line.ts';
import type { FreshnessSummary, InsertSummary, SinkCommand, SinkReport } from './kafka-sink.ts';

const DEFAULT_EVENTS = 100_000;
const MAX_EVENTS = 1_000_000;
const MAX_POST_SECONDS = 120;
/** Longest wait for the sink to store what was accepted, after posting ended, in seconds. */
const DRAIN_SECONDS = 90;
const LINES_PER_REQUEST = 1000;
/** Length of the steady half-rate phase that measures freshness, in seconds. */
const FRESHNESS_SECONDS = 20;
const STEADY_LINES_PER_REQUEST = 200;
/** Most requests of a steady-rate phase in flight; a request due beyond it is counted as missed. */
const STEADY_MAX_IN_FLIGHT = 64;

const BIN = fileURLToPath(new URL('../bin/ztwatch.js', import.meta.url));
const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const SINK_SCRIPT = fileURLToPath(new URL('./kafka-sink.ts', import.meta.url));

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
/** The 1-, 5- and 15-minute load averages, as `uptime` prints them. */
export const load = () => loadavg().map((n) => n.toFixed(2)).join(' ');

/** A whole number from the environment, or `fallback`; throws when outside [min, max]. */
export function readIntEnv(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${name}=${text}: a whole number from ${min} to ${max}`);
  return n;
}

/** Node flags of the pipeline's processes: `--cpu-prof` into ZTWATCH_BENCH_CPU_PROF when set. */
function nodeFlags(): string[] {
  const dir = process.env.ZTWATCH_BENCH_CPU_PROF;
  if (!dir) return [];
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function readRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system) a process has used, in seconds (Linux /proc, 100 ticks per second). */
export function readCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** A started `ztwatch` role process. */
export interface RoleProcess {
  readonly pid: number;
  readonly url: string;
  stop(): Promise<void>;
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Stops a child with SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 30_000): Promise<void> {
  const exited = exitOf(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Writes `config` with an ingest token for `token` to `dir/<name>.json`. */
export function writeRoleConfig(config: FrozenConfig, dir: string, name: string, token: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ ...config, auth: { ...config.auth, tokens: [{ name: 'bench', role: 'ingest', sha256: createHash('sha256').update(token).digest('hex') }] } }));
  return file;
}

/** Starts `ztwatch <args>` and waits until it prints its address. */
export async function startRole(args: readonly string[]): Promise<RoleProcess> {
  const child = spawn(process.execPath, [...nodeFlags(), BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`ztwatch ${args[0]} did not start: ${out}`)), 90_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-4000);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-4000);
      const m = /ready on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ztwatch ${args[0]} exited (${code}): ${out}`));
    });
  });
  return { pid: child.pid as number, url, stop: () => stopChild(child) };
}

/** The sink process of bench/kafka-sink.ts, driven over IPC. */
export interface SinkProcess {
  readonly pid: number;
  status(): Promise<{ stored: number; rssBytes: number; freshness: FreshnessSummary; inserts: InsertSummary }>;
  /** Clears the freshness histogram and insert counts (start of a phase). */
  resetFreshness(): void;
  /** Closes the sink and returns count() of its events table. */
  stop(): Promise<number>;
}

/** Starts the sink process on `configFile` and waits until it has joined its group. */
export async function startSinkProcess(configFile: string): Promise<SinkProcess> {
  const child = spawn(process.execPath, [...nodeFlags(), RUN_TS, SINK_SCRIPT, configFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = exitOf(child);
  // Replies come in the order of the commands; a waiter that timed out leaves the queue.
  interface Waiter {
    resolve(report: SinkReport): void;
    reject(err: Error): void;
  }
  const waiters: Waiter[] = [];
  child.on('message', (report: SinkReport) => waiters.shift()?.resolve(report));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`sink process exited (${child.exitCode ?? child.signalCode})`));
  });
  const next = (timeoutMs: number) =>
    new Promise<SinkReport>((resolve, reject) => {
      const waiter: Waiter = {
        resolve(r) {
          clearTimeout(timer);
          resolve(r);
        },
        reject(err) {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error('sink process did not answer'));
      }, timeoutMs);
      if (child.exitCode !== null || child.signalCode !== null) waiter.reject(new Error(`sink process exited (${child.exitCode ?? child.signalCode})`));
      else waiters.push(waiter);
    });
  const command = (c: SinkCommand) => child.send(c);
  await next(90_000);
  return {
    pid: child.pid as number,
    async status() {
      const reply = next(30_000);
      command({ type: 'status' });
      const r = await reply;
      if (r.type !== 'status') throw new Error(`sink process answered ${r.type}`);
      return r;
    },
    resetFreshness: () => command({ type: 'reset' }),
    async stop() {
      const reply = next(60_000);
      command({ type: 'stop' });
      try {
        const r = await reply;
        await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
        return r.type === 'stopped' ? r.count : NaN;
      } finally {
        await stopChild(child, 10_000);
      }
    },
  };
}

/** Posts NDJSON bodies to an ingest URL; answers 429/503 are retried after 50 ms. */
export function createPoster(url: string, token: string): { post(body: string): Promise<number>; readonly refusals: number } {
  let refusals = 0;
  return {
    get refusals() {
      return refusals;
    },
    async post(body) {
      for (let attempt = 0; attempt < 1200; attempt++) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${token}` }, body });
        const answer = (await res.json()) as { accepted?: number };
        if (res.status === 200) return answer.accepted ?? 0;
        if (res.status !== 429 && res.status !== 503) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(answer).slice(0, 300)}`);
        refusals++;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('ingest refused one body for a minute');
    },
  };
}

/** Waits until `done()` or `seconds` passed; true when done. */
export async function waitUntil(done: () => Promise<boolean>, seconds: number, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await done()) return true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return false;
}

/**
 * Posts `bodies` from `clients` concurrent senders as fast as they are answered, then waits until
 * `stored()` reaches what was accepted. Returns the events/s from the first post to the last row
 * stored, and the CPU seconds each of `pids` spent meanwhile.
 */
export async function measureMaxRate(options: {
  readonly bodies: readonly string[];
  readonly clients: number;
  readonly poster: ReturnType<typeof createPoster>;
  readonly stored: () => Promise<number>;
  readonly pids: Readonly<Record<string, number>>;
}): Promise<{ rate: number; accepted: number; stored: number; postSeconds: number; seconds: number; cpuSeconds: Record<string, number> }> {
  const { bodies, poster } = options;
  const storedBefore = await options.stored();
  const cpuBefore = Object.fromEntries(Object.entries(options.pids).map(([name, pid]) => [name, readCpuSeconds(pid)]));
  const ownBefore = process.cpuUsage();
  let accepted = 0;
  let next = 0;
  const started = performance.now();
  const deadline = Date.now() + MAX_POST_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: options.clients }, async () => {
      while (next < bodies.length && Date.now() < deadline) {
        const n = await poster.post(bodies[next++] as string);
        accepted += n;
      }
    }),
  );
  const postSeconds = (performance.now() - started) / 1000;
  let stored = 0;
  await waitUntil(async () => (stored = (await options.stored()) - storedBefore) >= accepted, DRAIN_SECONDS, 50);
  const seconds = (performance.now() - started) / 1000;
  const own = process.cpuUsage(ownBefore);
  const cpuSeconds: Record<string, number> = { 'load generator': (own.user + own.system) / 1e6 };
  for (const [name, pid] of Object.entries(options.pids)) cpuSeconds[name] = readCpuSeconds(pid) - (cpuBefore[name] as number);
  return { rate: stored / seconds, accepted, stored, postSeconds, seconds, cpuSeconds };
}

/**
 * Posts freshly generated lines at `rate` events/s for `seconds` (open loop: one request of
 * `linesPerRequest` lines every 1000·linesPerRequest/rate ms, at most STEADY_MAX_IN_FLIGHT in
 * flight; a request due while that many are pending is counted as missed). `onTick` runs about
 * every second. Returns the events accepted and the requests missed.
 */
export async function postSteadily(options: {
  readonly rate: number;
  readonly seconds: number;
  readonly poster: ReturnType<typeof createPoster>;
  readonly firstLine: number;
  readonly linesPerRequest?: number;
  readonly onTick?: (elapsedSeconds: number) => void | Promise<void>;
}): Promise<{ accepted: number; missed: number; lines: number }> {
  const perRequest = options.linesPerRequest ?? STEADY_LINES_PER_REQUEST;
  const intervalMs = (1000 * perRequest) / options.rate;
  const requests = Math.floor((options.seconds * options.rate) / perRequest);
  const pending = new Set<Promise<void>>();
  let accepted = 0;
  let missed = 0;
  let lineNo = options.firstLine;
  let lastTick = 0;
  let failure: unknown;
  const started = performance.now();
  for (let i = 0; i < requests && failure === undefined; i++) {
    const wait = started + i * intervalMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const elapsed = (performance.now() - started) / 1000;
    if (options.onTick && elapsed - lastTick >= 1) {
      lastTick = Math.floor(elapsed);
      await options.onTick(elapsed);
    }
    if (pending.size >= STEADY_MAX_IN_FLIGHT) {
      missed++;
      continue;
    }
    const now = Date.now();
    const lines: string[] = [];
    for (let k = 0; k < perRequest; k++) lines.push(envoyLine(lineNo++, now));
    const p: Promise<void> = options.poster.post(lines.join('\n')).then(
      (n) => {
        accepted += n;
      },
      (err: unknown) => {
        failure = err;
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure;
  return { accepted, missed, lines: lineNo - options.firstLine };
}

/** Reads the broker's pid (a broker the project's script runs), or undefined. */
function brokerPid(dir: string | undefined): number | undefined {
  if (!dir) return undefined;
  try {
    const pid = Number(readFileSync(join(dir, 'kafka.pid'), 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Config of a Kafka pipeline under `dir`: fresh topics, group and database on the given brokers. */
export function createPipelineConfig(brokers: readonly string[], dir: string): FrozenConfig {
  const id = randomBytes(4).toString('hex');
  const partitions = process.env.ZTWATCH_BENCH_KAFKA_PARTITIONS === undefined ? {} : { partitions: readIntEnv('ZTWATCH_BENCH_KAFKA_PARTITIONS', 6, 1, 64) };
  const compression = process.env.ZTWATCH_BENCH_KAFKA_COMPRESSION;
  if (compression !== undefined && !['lz4', 'gzip', 'none'].includes(compression)) throw new Error(`ZTWATCH_BENCH_KAFKA_COMPRESSION=${compression}: lz4, gzip or none`);
  return buildConfig({
    dataDir: join(dir, 'data'),
    clickhouse: { database: `bench_kafka_${id}` },
    kafka: { brokers: [...brokers], topicPrefix: `bench${id}.`, sinkGroup: `bench${id}-sink`, ...partitions, ...(compression ? { compression } : {}) },
    http: { port: 0 },
    log: { level: 'warn' },
  });
}

/** A running HTTP → Kafka → sink pipeline: collector and sink processes on one broker. */
export interface KafkaPipeline {
  readonly config: FrozenConfig;
  readonly collector: RoleProcess;
  readonly sink: SinkProcess;
  readonly poster: ReturnType<typeof createPoster>;
  /** Process ids by role, the broker's included when this machine runs it. */
  readonly pids: Readonly<Record<string, number>>;
  /** Stops collector and sink; returns count() of the sink's events table. */
  stop(): Promise<number>;
}

/** Starts the sink (joins its group first) and then the collector of a fresh pipeline on `broker`. */
export async function startKafkaPipeline(broker: { brokers: string[]; dir: string | undefined }, dir: string): Promise<KafkaPipeline> {
  const config = createPipelineConfig(broker.brokers, dir);
  const token = randomBytes(24).toString('hex');
  const sink = await startSinkProcess(writeRoleConfig(config, dir, 'sink', token));
  let collector: RoleProcess;
  try {
    collector = await startRole(['collector', '--config', writeRoleConfig(config, dir, 'collector', token)]);
  } catch (err) {
    await sink.stop();
    throw err;
  }
  const bPid = brokerPid(broker.dir);
  return {
    config,
    collector,
    sink,
    poster: createPoster(`${collector.url}/v1/ingest/envoy`, token),
    pids: { collector: collector.pid, sink: sink.pid, ...(bPid ? { broker: bPid } : {}) },
    async stop() {
      await collector.stop();
      return sink.stop();
    },
  };
}

/** The full-speed phase alone: events/s, CPU per event of each process, rows stored (ZTWATCH_BENCH_KAFKA_QUICK=1). */
async function runQuickKafkaBench(total: number, clients: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-bench-kafka-'));
  const nowMs = Date.now();
  const bodies: string[] = [];
  for (let i = 0; i < total; i += LINES_PER_REQUEST) {
    bodies.push(Array.from({ length: Math.min(LINES_PER_REQUEST, total - i) }, (_, k) => envoyLine(i + k, nowMs)).join('\n'));
  }
  const broker = await ensureKafka();
  try {
    const pipeline = await startKafkaPipeline(broker, dir);
    let count = NaN;
    let max: Awaited<ReturnType<typeof measureMaxRate>>;
    let inserts: InsertSummary;
    let loadMax: string;
    try {
      const stored = async () => (await pipeline.sink.status()).stored;
      max = await measureMaxRate({ bodies, clients, poster: pipeline.poster, stored, pids: pipeline.pids });
      loadMax = load();
      inserts = (await pipeline.sink.status()).inserts;
    } finally {
      count = await pipeline.stop();
    }
    const usPerEvent = (name: string) => (1e6 * (max.cpuSeconds[name] ?? NaN)) / max.stored;
    const pipelineUs = Object.keys(pipeline.pids).reduce((n, name) => n + usPerEvent(name), 0);
    const c = pipeline.config;
    console.log(`quick: ${fmt(total)} Envoy events, ${clients} clients, ${c.kafka.partitions} partitions, ${c.kafka.compression}`);
    console.log(`  kafka path   ${fmt(max.rate).padStart(9)} events/s  all stored by ${max.seconds.toFixed(1)} s; ${pipeline.poster.refusals} 429/503 answers (load ${loadMax})`);
    console.log(`  CPU / event  ${Object.keys(max.cpuSeconds).map((name) => `${name} ${usPerEvent(name).toFixed(0)} µs`).join(', ')}; collector + sink + broker ${pipelineUs.toFixed(0)} µs`);
    console.log(`  sink batches ${fmt(inserts.count)} event inserts of ${fmt(inserts.rows / inserts.count)} rows on average, ${(inserts.milliseconds / inserts.count).toFixed(0)} ms each`);
    console.log(`  rows         count() = ${fmt(count)} for ${fmt(max.accepted)} accepted (${count === max.accepted ? 'none lost or duplicated' : 'MISMATCH'})`);
  } finally {
    await broker.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Kafka bus alone (ZTWATCH_BENCH_KAFKA_QUICK=bus): CPU per event to publish, and to consume, here and in the broker. */
async function runBusKafkaBench(total: number, clients: number): Promise<void> {
  const holdMs = readIntEnv('ZTWATCH_BENCH_KAFKA_HOLD_MS', 0, 0, 10_000);
  const nowMs = Date.now();
  const lines = Array.from({ length: 2000 }, (_, i) => envoyLine(i, nowMs));
  const { events } = createIngestor({ bus: new MemoryBus(), metrics: createMetrics() }).parse('envoy', lines, nowMs);
  const messages: BusMessage[] = events.map((e) => ({ key: e.dst_service, value: JSON.stringify(e) }));
  const bodies: BusMessage[][] = [];
  for (let i = 0; i < total; i += LINES_PER_REQUEST) bodies.push(Array.from({ length: Math.min(LINES_PER_REQUEST, total - i) }, (_, k) => messages[(i + k) % messages.length] as BusMessage));
  const broker = await ensureKafka();
  const brokerCpu = () => {
    const pid = brokerPid(broker.dir);
    return pid === undefined ? NaN : readCpuSeconds(pid);
  };
  // As the pipeline's config has them (the test config's own default is 3 partitions).
  const { partitions, compression } = createPipelineConfig(broker.brokers, tmpdir()).kafka;
  const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions, compression } });
  const bus = await createKafkaBus(config, createMetrics());
  try {
    const measure = async (run: () => Promise<void>) => {
      const brokerBefore = brokerCpu();
      const before = process.cpuUsage();
      const started = performance.now();
      await run();
      const own = process.cpuUsage(before);
      return { us: (own.user + own.system) / total, brokerUs: (1e6 * (brokerCpu() - brokerBefore)) / total, rate: total / ((performance.now() - started) / 1000) };
    };
    let next = 0;
    const publish = await measure(async () => {
      await Promise.all(Array.from({ length: clients }, async () => {
        while (next < bodies.length) await bus.publish(TOPICS.events, bodies[next++] as BusMessage[]);
      }));
    });
    let received = 0;
    const consume = await measure(async () => {
      const sub = await bus.subscribe(TOPICS.events, { group: config.kafka.sinkGroup, maxBatchMessages: config.sink.batchRows, maxBatchWaitMs: config.sink.batchWaitMs }, async (batch) => {
        if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
        received += batch.messages.length;
      });
      if (!(await waitUntil(async () => received >= total, DRAIN_SECONDS, 20))) throw new Error(`consumed ${received} of ${total}`);
      await sub.close();
    });
    const line = (m: typeof publish) => `${m.us.toFixed(1)} µs/event here, broker ${m.brokerUs.toFixed(1)} µs/event, ${fmt(m.rate)} events/s`;
    console.log(`bus alone: ${fmt(total)} events of ${fmt(messages.reduce((n, m) => n + m.value.length, 0) / messages.length)} B, ${config.kafka.partitions} partitions, ${config.kafka.compression}, ${clients} publishers`);
    console.log(`  publish  ${line(publish)} (load ${load()})`);
    console.log(`  consume  ${line(consume)}, handler holds each batch ${holdMs} ms`);
  } finally {
    await bus.close();
    await broker.release();
  }
}

/** Runs the Kafka benchmark and prints events/s, the ratio to the ceiling and freshness at half rate. */
export async function runKafkaBench(): Promise<void> {
  const total = readIntEnv('ZTWATCH_BENCH_KAFKA_EVENTS', DEFAULT_EVENTS, LINES_PER_REQUEST, MAX_EVENTS);
  const clients = readIntEnv('ZTWATCH_BENCH_CLIENTS', 16, 1, 256);
  if (process.env.ZTWATCH_BENCH_KAFKA_QUICK === '1') return runQuickKafkaBench(total, clients);
  if (process.env.ZTWATCH_BENCH_KAFKA_QUICK === 'bus') return runBusKafkaBench(total, clients);
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-bench-kafka-'));
  const nowMs = Date.now();
  const lines = Array.from({ length: total }, (_, i) => envoyLine(i, nowMs));
  const bytes = lines.reduce((n, l) => n + l.length + 1, 0);
  const base = buildConfig({ dataDir: ':memory:', clickhouse: { database: `bench_ceiling_${randomBytes(4).toString('hex')}` }, log: { level: 'silent' } });
  const broker = await ensureKafka();
  try {
    // The ceiling, as bench/ingest.ts measures it, on the rows the collector makes of these lines.
    const { events } = createIngestor({ bus: new MemoryBus(), metrics: createMetrics() }).parse('envoy', lines, Date.now());
    const rowsPath = writeCeilingRows(dir, events);
    const loadFirst = load();
    const firstCeiling = await measureCeiling(base, rowsPath, events.length, 'first');

    const pipeline = await startKafkaPipeline(broker, dir);
    let count = NaN;
    let max: Awaited<ReturnType<typeof measureMaxRate>>;
    let steady: Awaited<ReturnType<typeof postSteadily>>;
    let freshness: FreshnessSummary;
    let maxInserts: InsertSummary;
    let steadyInserts: InsertSummary;
    let steadyRate: number;
    let rss: { collector: number; sink: number };
    let loadMax: string;
    let loadSteady: string;
    try {
      const bodies: string[] = [];
      for (let i = 0; i < total; i += LINES_PER_REQUEST) bodies.push(lines.slice(i, i + LINES_PER_REQUEST).join('\n'));
      const stored = async () => (await pipeline.sink.status()).stored;
      pipeline.sink.resetFreshness();
      max = await measureMaxRate({ bodies, clients, poster: pipeline.poster, stored, pids: pipeline.pids });
      loadMax = load();
      maxInserts = (await pipeline.sink.status()).inserts;

      // Freshness at a steady half of that rate: a saturated pipeline only measures its backlog.
      steadyRate = Math.max(1000, Math.floor(max.rate / 2));
      const storedBefore = await stored();
      pipeline.sink.resetFreshness();
      steady = await postSteadily({ rate: steadyRate, seconds: FRESHNESS_SECONDS, poster: pipeline.poster, firstLine: total });
      await waitUntil(async () => (await stored()) - storedBefore >= steady.accepted, DRAIN_SECONDS);
      loadSteady = load();
      const status = await pipeline.sink.status();
      freshness = status.freshness;
      steadyInserts = status.inserts;
      rss = { collector: readRssBytes(pipeline.collector.pid), sink: status.rssBytes };
    } finally {
      count = await pipeline.stop();
    }
    const lastCeiling = await measureCeiling(base, rowsPath, events.length, 'last');
    const ceiling = (firstCeiling + lastCeiling) / 2;
    const usPerEvent = (name: string) => (1e6 * (max.cpuSeconds[name] ?? NaN)) / max.stored;
    const pipelineUs = Object.keys(pipeline.pids).reduce((n, name) => n + usPerEvent(name), 0);
    const cores = cpus().length;
    const c = pipeline.config;
    console.log(
      `HTTP NDJSON (${clients} clients × ${LINES_PER_REQUEST} lines, loopback) → ztwatch collector process → Kafka 4.1.1 on this machine (${c.kafka.partitions} partitions, ${c.kafka.compression}, acks=all, idempotent) → sink process (batches ≤ ${fmt(c.sink.batchRows)} rows / ${c.sink.batchWaitMs} ms, tamper-evidence chain) → embedded ClickHouse on disk; ${fmt(total)} Envoy events (${(bytes / 1e6).toFixed(0)} MB)`,
    );
    console.log(`  ceiling      ${fmt(ceiling).padStart(9)} events/s  INSERT … SELECT FROM file(JSONEachRow) of the same rows: mean of ${fmt(firstCeiling)} (first, load ${loadFirst}) and ${fmt(lastCeiling)} (last, load ${load()})`);
    console.log(
      `  kafka path   ${fmt(max.rate).padStart(9)} events/s  ${(max.rate / ceiling).toFixed(2)} × ceiling; ${fmt(max.stored)} stored of ${fmt(max.accepted)} accepted, posting took ${max.postSeconds.toFixed(1)} s, all stored by ${max.seconds.toFixed(1)} s; ${pipeline.poster.refusals} 429/503 answers (load ${loadMax}; target ≥ 30,000)`,
    );
    console.log(
      `  CPU / event  ${Object.keys(max.cpuSeconds).map((name) => `${name} ${usPerEvent(name).toFixed(0)} µs`).join(', ')}; collector + sink + broker ${pipelineUs.toFixed(0)} µs (≤ ${fmt((cores * 1e6) / pipelineUs)}/s on ${cores} cores with nothing else running)`,
    );
    console.log(
      `  freshness    received → queryable p50 ${(freshness.p50Ms / 1000).toFixed(2)} s, p99 ${(freshness.p99Ms / 1000).toFixed(2)} s, max ${(freshness.maxMs / 1000).toFixed(2)} s over ${fmt(freshness.count)} events posted at a steady ${fmt(steadyRate)} events/s for ${FRESHNESS_SECONDS} s (${steady.missed} requests missed; load ${loadSteady}; target p99 ≤ 2 s)`,
    );
    const describeInserts = (i: InsertSummary) =>
      `${fmt(i.count)} event inserts of ${fmt(i.rows / i.count)} rows on average, ${(i.milliseconds / i.count).toFixed(0)} ms each, ${fmt(i.stateReads)} sink_state reads${i.stateReads > 0 ? ` of ${(i.stateReadMilliseconds / i.stateReads).toFixed(1)} ms` : ''}`;
    console.log(`  sink batches at full speed ${describeInserts(maxInserts)}; at half rate ${describeInserts(steadyInserts)}`);
    console.log(`  RSS          collector ${(rss.collector / 2 ** 20).toFixed(0)} MB, sink ${(rss.sink / 2 ** 20).toFixed(0)} MB after the steady phase`);
    console.log(`  rows         count() = ${fmt(count)} for ${fmt(max.accepted + steady.accepted)} accepted (${count === max.accepted + steady.accepted ? 'none lost or duplicated' : 'MISMATCH'})`);
  } finally {
    await broker.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runKafkaBench();
