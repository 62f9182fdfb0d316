// The embedded runtime (memory bus + chDB on disk) restarted again and again on one data
// directory: every run's batches must be stored, chained and dead-lettered, none taken for a retry
// of an earlier run's batch (dedup tokens are unique per bus run, not only per offset range).
// Then `ztwatch run` in a process of its own, stopped by SIGTERM and by SIGKILL while clients post:
// every event it acknowledged is stored, once. Results are read by a short child process after
// the server exits (one chDB user per directory).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../cli/runtime.ts';
import { buildConfig, type FrozenConfig } from '../../core/config.ts';
import { verifyChain } from '../../store/chain.ts';
import { envoyLines } from '../helpers/envoy-lines.ts';
import { collectLines } from '../helpers/process-lines.ts';

const TOKEN = randomBytes(24).toString('hex');
const RUNS = 4;
const REQUESTS_PER_RUN = 3;
const LINES_PER_REQUEST = 10;
const BAD_LINES_PER_REQUEST = 2;

const dataDir = mkdtempSync(join(tmpdir(), 'ztwatch-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function embeddedConfig(): FrozenConfig {
  // Small batches, so each run stores several of them (one per request at least).
  return buildConfig({ dataDir, http: { port: 0 }, log: { level: 'silent' }, sink: { batchWaitMs: 5 } });
}

async function start(): Promise<Runtime> {
  return startRuntime({
    config: embeddedConfig(),
    roles: new Set(['collector', 'sink', 'api'] as const),
    extraTokens: [{ name: 'test', role: 'ingest', token: TOKEN }],
    log: () => undefined,
  });
}

async function post(runtime: Runtime, lines: string[]): Promise<{ status: number; accepted: number; rejected: number }> {
  const res = await fetch(`${runtime.url}/v1/ingest/envoy`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
    body: lines.join('\n'),
  });
  const body = (await res.json()) as { accepted: number; rejected: number };
  return { status: res.status, accepted: body.accepted, rejected: body.rejected };
}

async function count(runtime: Runtime, sql: string): Promise<number> {
  const [row] = await (runtime.store as NonNullable<Runtime['store']>).query<{ n: string }>(sql.replaceAll('{db}', (runtime.store as NonNullable<Runtime['store']>).database));
  return Number(row?.n ?? -1);
}

describe('embedded runtime restarted on one data directory', () => {
  it('stores every run: events, dead letters and chain batches, none dropped as a duplicate', async () => {
    for (let run = 0; run < RUNS; run++) {
      const runtime = await start();
      try {
        for (let r = 0; r < REQUESTS_PER_RUN; r++) {
          const lines = [...envoyLines(`run${run}-req${r}`, LINES_PER_REQUEST), ...Array.from({ length: BAD_LINES_PER_REQUEST }, (_, i) => `not an access log ${run}-${r}-${i}`)];
          // The answer means stored: no wait for the sink before counting.
          expect(await post(runtime, lines)).toEqual({ status: 200, accepted: LINES_PER_REQUEST, rejected: BAD_LINES_PER_REQUEST });
        }
        const runEvents = await count(runtime, `SELECT toString(count()) AS n FROM {db}.events WHERE startsWith(request_id, 'run${run}-')`);
        expect(runEvents).toBe(REQUESTS_PER_RUN * LINES_PER_REQUEST);
      } finally {
        await runtime.close();
      }
    }

    const runtime = await start();
    try {
      const total = RUNS * REQUESTS_PER_RUN;
      expect(await count(runtime, 'SELECT toString(count()) AS n FROM {db}.events')).toBe(total * LINES_PER_REQUEST);
      expect(await count(runtime, 'SELECT toString(uniqExact(request_id)) AS n FROM {db}.events')).toBe(total * LINES_PER_REQUEST);
      expect(await count(runtime, 'SELECT toString(count()) AS n FROM {db}.deadletters')).toBe(total * BAD_LINES_PER_REQUEST);
      // Every chained row once, and the chain's batches carry distinct tokens and consecutive seqs.
      expect(await count(runtime, 'SELECT toString(sum(row_count)) AS n FROM {db}.batches')).toBe(total * LINES_PER_REQUEST);
      const batches = await count(runtime, 'SELECT toString(count()) AS n FROM {db}.batches');
      expect(batches).toBeGreaterThanOrEqual(RUNS);
      expect(await count(runtime, 'SELECT toString(uniqExact(dedup_token)) AS n FROM {db}.batches')).toBe(batches);
      expect(await count(runtime, 'SELECT toString(max(seq)) AS n FROM {db}.batches')).toBe(batches);
      const report = await verifyChain(runtime.store as NonNullable<Runtime['store']>);
      expect(report.problems).toEqual([]);
      expect(report.rowsChecked).toBe(total * LINES_PER_REQUEST);
    } finally {
      await runtime.close();
    }
  });
});

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUN_TS = join(ROOT, 'bin/run-ts.js');
const ZTWATCH = join(ROOT, 'bin/ztwatch.js');
const QUERY_PROCESS = join(ROOT, 'test/e2e/fixtures/query-process.ts');

/** `ztwatch run --config FILE` in a child process, with its output lines. */
class RunProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(configFile: string) {
    this.child = spawn(process.execPath, [ZTWATCH, 'run', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    collectLines(this.child, this.lines);
    this.exited = new Promise((resolveExit) => this.child.once('exit', (code, signal) => resolveExit({ code, signal })));
  }

  /** Resolves to the address of the `ready on http://…` line. */
  async ready(): Promise<string> {
    const deadline = Date.now() + 90_000;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      for (const line of this.lines) {
        const m = / ready on (http:\/\/\S+)$/.exec(line);
        if (m) return m[1] as string;
      }
      if (exited || Date.now() > deadline) throw new Error(`ztwatch run did not start:\n${this.lines.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function writeRunConfig(dir: string): string {
  const file = join(dir, 'ztwatch.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: dir,
      http: { port: 0 },
      log: { level: 'warn' },
      auth: { tokens: [{ name: 'test', role: 'ingest', sha256: createHash('sha256').update(TOKEN).digest('hex') }] },
    }),
  );
  return file;
}

async function queryStore<T>(configFile: string, sql: string): Promise<T[]> {
  const child = spawn(process.execPath, [RUN_TS, QUERY_PROCESS, configFile, sql], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`query failed (${code}): ${err}`);
  return JSON.parse(out) as T[];
}

interface StreamResult {
  /** Request ids of every line in a request answered 200. */
  readonly acknowledged: Set<string>;
  /** Request ids of every line sent, answered or not. */
  readonly sent: Set<string>;
}

/**
 * Clients post 100-line requests until the server stops answering; `interrupt` runs once
 * `interruptAfter` requests were acknowledged. Every line has a request id of its own.
 */
async function streamUntilStopped(url: string, prefix: string, interruptAfter: number, interrupt: () => void): Promise<StreamResult> {
  const acknowledged = new Set<string>();
  const sent = new Set<string>();
  let next = 0;
  let answered = 0;
  let interrupted = false;
  let stopped = false;
  const client = async () => {
    while (!stopped) {
      const lines = envoyLines(`${prefix}-${next++}`, 100);
      const ids = Array.from({ length: 100 }, (_, i) => `${prefix}-${next - 1}-${i}`);
      for (const id of ids) sent.add(id);
      try {
        const res = await fetch(`${url}/v1/ingest/envoy`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
          body: lines.join('\n'),
        });
        const body = (await res.json()) as { accepted?: number };
        if (res.status === 200) {
          expect(body.accepted).toBe(100);
          for (const id of ids) acknowledged.add(id);
          answered++;
          if (answered >= interruptAfter && !interrupted) {
            interrupted = true;
            interrupt();
          }
        } else if (interrupted) {
          stopped = true;
        }
      } catch {
        // Refused or reset: the server is going away; nothing of this request was acknowledged.
        if (interrupted) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, client));
  return { acknowledged, sent };
}

async function checkStored(configFile: string, result: StreamResult): Promise<void> {
  const rows = await queryStore<{ request_id: string; n: string }>(configFile, 'SELECT request_id, toString(count()) AS n FROM {db}.events GROUP BY request_id');
  const stored = new Map(rows.map((r) => [r.request_id, Number(r.n)]));
  const lost = [...result.acknowledged].filter((id) => !stored.has(id));
  const duplicated = rows.filter((r) => Number(r.n) > 1).map((r) => r.request_id);
  const unknown = rows.filter((r) => !result.sent.has(r.request_id)).map((r) => r.request_id);
  expect(result.acknowledged.size).toBeGreaterThan(0);
  expect({ lost: lost.length, duplicated: duplicated.length, unknown: unknown.length }).toEqual({ lost: 0, duplicated: 0, unknown: 0 });
}

describe('ztwatch run stopped while clients post', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`stores every acknowledged event exactly once after ${signal}, and again after a restart`, { timeout: 300_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), `ztwatch-${signal.toLowerCase()}-`));
      dirs.push(dir);
      const configFile = writeRunConfig(dir);
      const first = new RunProcess(configFile);
      const url = await first.ready();
      const result = await streamUntilStopped(url, `a-${signal}`, 20, () => first.child.kill(signal));
      const exit = await first.exited;
      if (signal === 'SIGTERM') expect(exit.code, first.lines.slice(-20).join('\n')).toBe(0);
      else expect(exit.signal).toBe('SIGKILL');

      // The restarted server stores its own batches next to the first run's (tokens differ per run).
      const second = new RunProcess(configFile);
      const url2 = await second.ready();
      const more = await streamUntilStopped(url2, `b-${signal}`, 5, () => second.child.kill('SIGTERM'));
      expect((await second.exited).code).toBe(0);
      await checkStored(configFile, {
        acknowledged: new Set([...result.acknowledged, ...more.acknowledged]),
        sent: new Set([...result.sent, ...more.sent]),
      });
    });
  }
});
