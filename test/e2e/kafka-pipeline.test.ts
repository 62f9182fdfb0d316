// End to end through a real Apache Kafka 4.1.1 broker: `ztwatch collector` (HTTP) → Kafka →
// `ztwatch sink` → ClickHouse (embedded, on disk), each role its own process. Each scenario counts
// what the collector acknowledged and what the store holds afterwards:
//   1. round trip, field for field;
//   2. the broker SIGKILLed and restarted while events flow;
//   3. the sink SIGKILLed mid-batch (right after an insert landed, and at a random moment) and
//      restarted with other batch sizes;
//   4. poison messages produced raw onto the events topic.
// Results are read by a short child process once the sink has exited (one chDB user per directory).
// The crash right after an insert landed uses test/e2e/fixtures/sink-process.ts: the same sink,
// with a hook that kills its own process at that point.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaBus } from '../../bus/kafka.ts';
import { TOPICS } from '../../bus/port.ts';
import type { FrozenConfig } from '../../core/config.ts';
import { EVENT_FIELDS, NormalizedEventSchema } from '../../core/event.ts';
import { createMetrics } from '../../core/metrics.ts';
import { PARSERS } from '../../ingest/parsers/index.ts';
import { envoyLine as sharedEnvoyLine } from '../helpers/envoy-lines.ts';
import { createKafkaTestConfig, ensureKafka, startPrivateKafka, type KafkaBroker } from '../helpers/kafka.ts';
import { collectLines } from '../helpers/process-lines.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUN_TS = join(ROOT, 'bin/run-ts.js');
const ZTWATCH = join(ROOT, 'bin/ztwatch.js');
const FIXTURES = join(ROOT, 'test/e2e/fixtures');
const TOKEN = randomBytes(24).toString('hex');

/** One Envoy access-log line of the shared test shape; most lines carry the upstream failure flags `UF,URX`. */
function envoyLine(i: number, requestId: string, nowMs: number): string {
  return sharedEnvoyLine(i, requestId, nowMs, { response_flags: i % 10 === 0 ? '-' : 'UF,URX', user_agent: 'e2e/1.0' });
}

/** A ztwatch process (a role command, or a test fixture), with its output lines. */
class ZtwatchProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    collectLines(this.child, this.lines);
    this.exited = new Promise((resolveExit) =>
      this.child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolveExit(this.#exit);
      }),
    );
  }

  /** `ztwatch <role> --config <file>`. */
  static role(role: 'collector' | 'sink', configFile: string): ZtwatchProcess {
    return new ZtwatchProcess([ZTWATCH, role, '--config', configFile]);
  }

  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  tail(): string {
    return this.lines.slice(-30).join('\n');
  }

  /** Waits for the `ready on http://…` line; resolves to that address. */
  async ready(timeoutMs = 60_000): Promise<string> {
    let url = '';
    await waitFor(
      () => {
        for (const line of this.lines) {
          const m = /ready(?: on (http:\/\/\S+))?$/.exec(line);
          if (m) {
            url = m[1] ?? '';
            return true;
          }
        }
        return this.hasExited;
      },
      { timeoutMs: timeoutMs, intervalMs: 100, what: () => `the process to start:\n${this.tail()}` },
    );
    if (this.hasExited) throw new Error(`process exited during start:\n${this.tail()}`);
    return url;
  }

  /** Graceful stop (SIGTERM: the sink drains and commits); fails the test on a non-zero exit. */
  async stop(): Promise<void> {
    if (this.hasExited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const exit = await this.exited;
    clearTimeout(timer);
    expect(exit.code, this.tail()).toBe(0);
  }

  async kill(): Promise<void> {
    if (!this.hasExited) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Reads a sink's /metrics: rows stored, and the consumer lag summed over its partitions. */
async function readSinkMetrics(url: string): Promise<{ stored: number; lag: number; partitions: number }> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  let lag = 0;
  let partitions = 0;
  let stored = 0;
  for (const line of text.split('\n')) {
    const lagMatch = /^ztwatch_consumer_lag_messages\{[^}]*\} (\S+)$/.exec(line);
    if (lagMatch) {
      lag += Number(lagMatch[1]);
      partitions++;
    }
    const sentMatch = /^ztwatch_stage_sent_events_total\{stage="sink"\} (\S+)$/.exec(line);
    if (sentMatch) stored = Number(sentMatch[1]);
  }
  return { stored, lag, partitions };
}

/** Waits until every partition of both topics is assigned to `sink` and shows no lag. */
async function waitDrained(sink: ZtwatchProcess, url: string, partitions: number, timeoutMs = 90_000): Promise<void> {
  let last = { stored: 0, lag: -1, partitions: 0 };
  await waitFor(
    async () => {
      if (sink.hasExited) return true;
      last = await readSinkMetrics(url).catch(() => last);
      return last.partitions >= partitions && last.lag === 0;
    },
    { timeoutMs: timeoutMs, intervalMs: 100, what: () => `the sink to catch up (last ${JSON.stringify(last)})` },
  );
  if (sink.hasExited) throw new Error(`sink exited:\n${sink.tail()}`);
}

/** Runs one query in a separate process against the on-disk store of `configFile`. */
async function query<T>(configFile: string, sql: string): Promise<T[]> {
  const child = spawn(process.execPath, [RUN_TS, join(FIXTURES, 'query-process.ts'), configFile, sql], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const code = await new Promise<number | null>((resolveExit) => child.once('exit', (c) => resolveExit(c)));
  if (code !== 0) throw new Error(`query failed (${code}): ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '[]') as T[];
}

/** Posts `lines` as NDJSON to the collector; resolves to the HTTP status (0 when the request failed). */
async function post(collectorUrl: string, lines: readonly string[]): Promise<number> {
  try {
    const res = await fetch(`${collectorUrl}/v1/ingest/envoy`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}` },
      body: lines.join('\n'),
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

const INTEGER_FIELDS = new Set(EVENT_FIELDS.filter((f) => (NormalizedEventSchema.properties[f] as { type?: string }).type === 'integer'));

/** A stored row in NormalizedEvent shape (ClickHouse returns 64-bit integers as strings). */
function normalizeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of EVENT_FIELDS) out[field] = INTEGER_FIELDS.has(field) ? Number(row[field]) : row[field];
  return out;
}

describe('Kafka pipeline end to end', { timeout: 240_000 }, () => {
  let shared: KafkaBroker;
  let root: string;
  beforeAll(async () => {
    shared = await ensureKafka();
    root = mkdtempSync(join(tmpdir(), 'ztwatch-e2e-'));
  });
  afterAll(async () => {
    await shared?.release();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Config of one scenario (own store directory, topics and group), written where the processes read it. */
  function scenario(name: string, brokers: readonly string[], sink: { batchRows: number; batchWaitMs: number }): { config: FrozenConfig; file: string } {
    const config = createKafkaTestConfig(brokers, {
      dataDir: join(root, name),
      sink,
      http: { port: 0 },
      log: { level: 'warn' },
      auth: { tokens: [{ name: 'e2e', role: 'ingest', sha256: createHash('sha256').update(TOKEN).digest('hex') }] },
    });
    return { config, file: variant(config, name, sink) };
  }

  /** The same scenario with other sink batch settings, as a config file. */
  function variant(config: FrozenConfig, name: string, sink: { batchRows: number; batchWaitMs: number }): string {
    const file = join(root, `${name}.json`);
    writeFileSync(file, JSON.stringify({ ...config, sink: { ...config.sink, ...sink } }));
    return file;
  }

  it('1. round trip: every acknowledged event is stored once, field for field', async () => {
    const { config, file } = scenario('roundtrip', shared.brokers, { batchRows: 500, batchWaitMs: 200 });
    const collector = ZtwatchProcess.role('collector', file);
    const sink = ZtwatchProcess.role('sink', file);
    const sent = new Map<string, string>();
    const started = Date.now();
    try {
      const [collectorUrl, sinkUrl] = await Promise.all([collector.ready(), sink.ready()]);
      const now = Date.now();
      for (let start = 0; start < 3000; start += 250) {
        const lines = Array.from({ length: 250 }, (_, k) => {
          const id = randomUUID();
          const line = envoyLine(start + k, id, now);
          sent.set(id, line);
          return line;
        });
        expect(await post(collectorUrl, lines)).toBe(200);
      }
      await waitDrained(sink, sinkUrl, config.kafka.partitions * 2);
      await sink.stop();
      await collector.stop();
    } finally {
      await Promise.all([sink.kill(), collector.kill()]);
    }
    const rows = await query<Record<string, unknown>>(
      file,
      `SELECT * EXCEPT (time, observed_time), toUnixTimestamp64Milli(time) AS time, toUnixTimestamp64Milli(observed_time) AS observed_time FROM {db}.events`,
    );
    expect(rows).toHaveLength(sent.size);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(sent.size);
    const parse = PARSERS.envoy?.parse;
    for (const row of rows) {
      const stored = normalizeRow(row);
      const line = sent.get(String(stored.request_id));
      expect(line).toBeDefined();
      const parsed = parse?.(line as string, Number(stored.observed_time));
      expect(parsed?.ok).toBe(true);
      // Every field as the parser makes it; the collector adds only the id and the receive time.
      expect(stored).toEqual({ ...(parsed?.ok ? parsed.event : {}), event_id: stored.event_id });
      expect(Number(stored.observed_time)).toBeGreaterThanOrEqual(started);
    }
  });

  it('2. broker SIGKILLed and restarted while events flow: every acknowledged event stored exactly once', async () => {
    const broker = await startPrivateKafka();
    const { config, file } = scenario('broker-restart', broker.brokers, { batchRows: 1000, batchWaitMs: 200 });
    const collector = ZtwatchProcess.role('collector', file);
    const sink = ZtwatchProcess.role('sink', file);
    const acked = new Set<string>();
    const refused = new Set<string>();
    try {
      const [collectorUrl, sinkUrl] = await Promise.all([collector.ready(), sink.ready()]);
      const now = Date.now();
      const requests = 60;
      let sent = 0;
      const client = async () => {
        while (sent < requests) {
          const n = sent++;
          const ids = Array.from({ length: 100 }, () => randomUUID());
          const status = await post(
            collectorUrl,
            ids.map((id, k) => envoyLine(n * 100 + k, id, now)),
          );
          for (const id of ids) (status === 200 ? acked : refused).add(id);
          await new Promise((r) => setTimeout(r, 40));
        }
      };
      const clients = [client(), client()];
      await waitFor(() => sent >= 20, { timeoutMs: 60_000, intervalMs: 100, what: () => 'the first requests' });
      await broker.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      await broker.start();
      await Promise.all(clients);
      expect(acked.size).toBeGreaterThan(0);
      await waitDrained(sink, sinkUrl, config.kafka.partitions * 2, 120_000);
      await sink.stop();
      await collector.stop();
    } finally {
      await Promise.all([sink.kill(), collector.kill()]);
      await broker.release();
    }
    const rows = await query<{ request_id: string; n: string }>(file, `SELECT request_id, count() AS n FROM {db}.events GROUP BY request_id`);
    const stored = new Set(rows.map((r) => r.request_id));
    expect(rows.filter((r) => Number(r.n) > 1)).toEqual([]);
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
    // Acknowledged events: stored exactly once. A refused request may still have reached the log
    // before the broker died (only its answer was lost); such rows are stored at most once too.
    const fromRefused = [...refused].filter((id) => stored.has(id)).length;
    expect(rows.length).toBe(acked.size + fromRefused);
    const [totals] = await query<{ rows: string; ids: string }>(file, `SELECT count() AS rows, uniqExact(event_id) AS ids FROM {db}.events`);
    expect(Number(totals?.rows)).toBe(Number(totals?.ids));
    console.log(`broker restart: ${acked.size} acknowledged and stored, ${refused.size} refused (${fromRefused} of them stored)`);
  });

  it('3. sink SIGKILLed mid-batch and restarted with other batch sizes: every event stored exactly once', async () => {
    const total = 12_000;
    const { config, file } = scenario('sink-crash', shared.brokers, { batchRows: 1000, batchWaitMs: 200 });
    const collector = ZtwatchProcess.role('collector', file);
    try {
      const collectorUrl = await collector.ready();
      const now = Date.now();
      for (let start = 0; start < total; start += 1000) {
        expect(await post(collectorUrl, Array.from({ length: 1000 }, (_, k) => envoyLine(start + k, randomUUID(), now)))).toBe(200);
      }
      await collector.stop();
    } finally {
      await collector.kill();
    }
    // Run 1 dies right after its 3rd insert landed, before the batch is recorded as stored.
    const crashing = new ZtwatchProcess([RUN_TS, join(FIXTURES, 'sink-process.ts'), file], { ZTW_E2E_CRASH_AFTER_BATCHES: '3' });
    const exit = await Promise.race([crashing.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 90_000))]);
    await crashing.kill();
    expect(exit?.signal, crashing.tail()).toBe('SIGKILL');
    // Run 2, with other batch boundaries, is killed from outside while it inserts.
    const killed = ZtwatchProcess.role('sink', variant(config, 'sink-crash-2', { batchRows: 1500, batchWaitMs: 100 }));
    try {
      const url = await killed.ready();
      await waitFor(async () => killed.hasExited || (await readSinkMetrics(url).catch(() => ({ stored: 0 }))).stored >= 3000, { timeoutMs: 90_000, intervalMs: 100, what: () => `run 2 to store some batches:\n${killed.tail()}` });
    } finally {
      await killed.kill();
    }
    // Run 3 finishes with yet another batch size.
    const finishing = ZtwatchProcess.role('sink', variant(config, 'sink-crash-3', { batchRows: 2000, batchWaitMs: 100 }));
    try {
      const url = await finishing.ready();
      await waitDrained(finishing, url, config.kafka.partitions * 2, 120_000);
      await finishing.stop();
    } finally {
      await finishing.kill();
    }
    const [totals] = await query<{ rows: string; ids: string }>(file, `SELECT count() AS rows, uniqExact(event_id) AS ids FROM {db}.events`);
    expect({ rows: Number(totals?.rows), ids: Number(totals?.ids) }).toEqual({ rows: total, ids: total });
    // The rollup fed by a materialized view saw each event once too.
    const [rollup] = await query<{ requests: string }>(file, `SELECT sum(requests) AS requests FROM {db}.edge_minute`);
    expect(Number(rollup?.requests)).toBe(total);
  });

  it('4. poison messages on the events topic are dead-lettered with a reason; the rest is stored and the sink keeps going', async () => {
    const { config, file } = scenario('poison', shared.brokers, { batchRows: 200, batchWaitMs: 100 });
    const collector = ZtwatchProcess.role('collector', file);
    const sink = ZtwatchProcess.role('sink', file);
    const raw = await createKafkaBus(config, createMetrics());
    const poison = [
      { key: 'payments', value: '{"event_id": "truncated' },
      { key: 'payments', value: 'not json at all' },
      { key: 'ledger', value: JSON.stringify({ event_id: 'x', time: 'yesterday' }) },
      { key: 'ledger', value: '' },
    ];
    try {
      const [collectorUrl, sinkUrl] = await Promise.all([collector.ready(), sink.ready()]);
      const now = Date.now();
      expect(await post(collectorUrl, Array.from({ length: 300 }, (_, k) => envoyLine(k, randomUUID(), now)))).toBe(200);
      // Raw, past the collector: straight onto the topics, between valid events.
      await raw.publish(TOPICS.events, poison);
      await raw.publish(TOPICS.deadLetters, [{ key: 'envoy', value: '{"half": ' }]);
      expect(await post(collectorUrl, Array.from({ length: 300 }, (_, k) => envoyLine(300 + k, randomUUID(), now)))).toBe(200);
      await waitDrained(sink, sinkUrl, config.kafka.partitions * 2);
      await sink.stop();
      await collector.stop();
    } finally {
      await Promise.all([sink.kill(), collector.kill(), raw.close()]);
    }
    const [events] = await query<{ n: string }>(file, `SELECT count() AS n FROM {db}.events`);
    expect(Number(events?.n)).toBe(600);
    const dead = await query<{ reason: string; raw: string }>(file, `SELECT reason, raw FROM {db}.deadletters`);
    expect(dead.map((d) => [d.reason, d.raw]).sort()).toEqual(
      [
        ['sink_bad_json', '{"event_id": "truncated'],
        ['sink_bad_json', 'not json at all'],
        ['sink_bad_json', ''],
        ['sink_bad_event', JSON.stringify({ event_id: 'x', time: 'yesterday' })],
        ['sink_bad_deadletter', '{"half": '],
      ].sort(),
    );
  });
});
