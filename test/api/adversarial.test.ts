// Hostile senders against the ingest limits: a body of millions of tiny records is refused while
// it is split (records per request, records in flight), the splitting yields so /healthz and honest
// senders keep being answered meanwhile, and events older than retention are dead-lettered, never
// acknowledged and dropped. (Restarts and crashes: test/cli/restart-durability.test.ts; verify at
// scale: test/store/chain.test.ts; cursors: test/api/cursor.test.ts.)
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from './helpers.ts';

/** 16 MB of `{}` lines: 5.59 million records of three bytes. */
const HOSTILE_BODY = '{}\n'.repeat(Math.floor((16 * 1024 * 1024) / 3) - 10);

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

describe('hostile ingest bodies', () => {
  it('refuses a body of millions of {} lines with 413 ZTW_INGEST_TOO_MANY_RECORDS, publishing nothing', async () => {
    api = await createTestApi({ withStore: false });
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/ingest/envoy',
      headers: { ...api.auth('ingest'), 'content-type': 'application/x-ndjson' },
      payload: HOSTILE_BODY,
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: { code: 'ZTW_INGEST_TOO_MANY_RECORDS' } });
    // Nothing reached the bus: no subscriber drains it, so whatever was published would still be in flight.
    expect(api.bus.isSaturated()).toBe(false);
    await expect(Promise.race([api.bus.whenIdle().then(() => 'idle'), new Promise((r) => setImmediate(() => r('busy')))])).resolves.toBe('idle');
  });

  it('counts records in flight while splitting (503 + Retry-After), and keeps answering /healthz and honest senders meanwhile', async () => {
    // Limits wide enough that the request is split for a long while before the in-flight cap stops it.
    api = await createTestApi({ withStore: false, overrides: { ingest: { maxRecordsPerRequest: 10_000_000 }, bus: { maxInFlightMessages: 1_000_000 } } });
    // Real sockets: health checks arrive as I/O, as they do in production.
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const ingestHeaders = { ...api.auth('ingest'), 'content-type': 'application/x-ndjson' };
    let healthz = 0;
    let honest: number | undefined;
    let done = false;
    let uploaded = false;
    // node:http, to know when the whole body has left: only what is answered after that counts.
    const hostile = new Promise<{ status: number; retryAfter: string | undefined; body: unknown; healthzBefore: number; honestBefore: number | undefined }>((resolve, reject) => {
      const req = request(`${url}/v1/ingest/envoy`, { method: 'POST', headers: { ...ingestHeaders, 'content-length': Buffer.byteLength(HOSTILE_BODY) } }, (res) => {
        done = true;
        const snapshot = { healthzBefore: healthz, honestBefore: honest };
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) as unknown, ...snapshot }));
      });
      req.on('error', reject);
      req.end(HOSTILE_BODY, () => (uploaded = true));
    });
    // One after another: had splitting held the event loop, at most one could slip in before it.
    while (!done) {
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      if (!done && uploaded) healthz++;
      if (honest === undefined && healthz >= 2 && !done) {
        const ok = await fetch(`${url}/v1/ingest/envoy`, {
          method: 'POST',
          headers: ingestHeaders,
          body: JSON.stringify({ start_time: new Date().toISOString(), method: 'GET', path: '/ok', response_code: 200, authority: 'orders.shop.svc.cluster.local:8080' }),
        });
        await ok.arrayBuffer();
        if (!done) honest = ok.status;
      }
    }
    const result = await hostile;
    expect(result.status).toBe(503);
    expect(result.retryAfter).toBe('1');
    expect(result.body).toMatchObject({ error: { code: 'ZTW_INGEST_OVERLOADED' } });
    expect(result.healthzBefore).toBeGreaterThanOrEqual(3);
    expect(result.honestBefore).toBe(200);
  });

  it('dead-letters events older than retention as outside_retention and counts them', async () => {
    api = await createTestApi({ overrides: { clickhouse: { retentionDays: 30 } } });
    const line = (daysAgo: number) =>
      JSON.stringify({ start_time: new Date(Date.now() - daysAgo * 86_400_000).toISOString(), method: 'GET', path: `/d${daysAgo}`, response_code: 200, authority: 'orders.shop.svc.cluster.local:8080' });
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/ingest/envoy',
      headers: { ...api.auth('ingest'), 'content-type': 'application/x-ndjson' },
      payload: [line(1), line(45), line(400)].join('\n'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 1, rejected: 2, errors: [{ reason: 'outside_retention' }, { reason: 'outside_retention' }] });
    await api.settle();
    const store = api.store as NonNullable<TestApi['store']>;
    const letters = await store.query<{ reason: string; n: string }>(`SELECT reason, toString(count()) AS n FROM ${store.database}.deadletters GROUP BY reason`);
    expect(letters).toEqual([{ reason: 'outside_retention', n: '2' }]);
    const metrics = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/ztwatch_deadletter_events_total\{source="envoy",reason="outside_retention"\} 2/);
  });
});
