// The embedded runtime (memory bus + chDB on disk) restarted again and again on one data
// directory: every run's batches must be stored, chained and dead-lettered, none taken for a retry
// of an earlier run's batch (dedup tokens are unique per bus run, not only per offset range).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../cli/runtime.ts';
import { buildConfig, type FrozenConfig } from '../../core/config.ts';
import { envoyLines } from '../helpers/envoy-lines.ts';

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
    } finally {
      await runtime.close();
    }
  });
});
