// Schema-driven fuzzing: schemathesis reads /openapi.json and throws generated requests (valid
// and invalid) at every operation of a running API over a seeded store; any 5xx fails the run.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent } from '../../core/event.ts';
import { createTestApi, type TestApi } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMATHESIS = `${ROOT}.cache/venv/bin/schemathesis`;
const MAX_EXAMPLES = Number(process.env.ZTWATCH_FUZZ_EXAMPLES ?? 20);
const SEED = Number(process.env.ZTWATCH_FUZZ_SEED ?? 20_251_122);

/** Runs schemathesis without blocking this process (the API under test lives in it). */
function runSchemathesis(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SCHEMATHESIS, args, { cwd: `${ROOT}.cache`, env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_HOOKS: '' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('schemathesis against /openapi.json', () => {
  let api: TestApi;
  let baseUrl: string;

  beforeAll(async () => {
    try {
      await promisify(execFile)('bash', [`${ROOT}scripts/deps/schemathesis.sh`], { timeout: 600_000 });
    } catch (err) {
      throw new Error(`scripts/deps/schemathesis.sh failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
    api = await createTestApi();
    const now = Date.now();
    await api.store!.insertEvents(
      Array.from({ length: 200 }, (_, i) => ({
        ...createEmptyEvent('envoy', now),
        event_id: randomUUID(),
        time: now - i * 60_000,
        src_identity: `spiffe://cluster.local/ns/ns${i % 3}/sa/sa${i % 7}`,
        dst_service: `svc${i % 5}`,
        decision: i % 9 === 0 ? ('deny' as const) : ('allow' as const),
        path: `/p/${i}`,
        raw: `line ${i}`,
      })),
      'fuzz-seed',
    );
    await api.store!.insertRows(
      'anomalies',
      [{ id: 'fuzz-1', detector: 'deny_spike', severity: 'high', status: 'firing', first_seen: now - 60_000, last_seen: now, src: 'a', dst: 'b', subject: 's', score: 1, summary: 'x', evidence: '{}', version: 1 }],
      { insert_deduplication_token: 'fuzz-anomaly' },
    );
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  }, 900_000);

  afterAll(async () => {
    await api?.close();
  });

  it('finds no server error on any operation', async () => {
    const run = await runSchemathesis([
      'run',
      `${baseUrl}/openapi.json`,
      '--checks',
      'not_a_server_error',
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      String(SEED),
      '--workers',
      '1',
      '--request-timeout',
      '30',
      '--header',
      `Authorization: Bearer ${api.tokens.admin}`,
    ]);
    expect(run.code, run.output.slice(-8000)).toBe(0);
    expect(run.output).toMatch(/Operations:\s+\d+ selected/);
    // The run reached the handlers: the compliance queries it made are in the audit log.
    const [audited] = await api.store!.query<{ n: string }>(`SELECT count() AS n FROM ${api.store!.database}.audit_log WHERE actor = 'admin-user'`);
    expect(Number(audited?.n)).toBeGreaterThan(0);
  }, 900_000);
});
