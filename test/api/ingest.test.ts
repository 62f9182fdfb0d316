import { readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../bus/memory.ts';
import { TOPICS } from '../../bus/port.ts';
import { splitK8sAuditBody } from '../../api/ingest.ts';
import { createTestApi, FIXTURES, type TestApi } from './helpers.ts';

const fixture = (path: string) => readFileSync(new URL(path, FIXTURES), 'utf8');

/** Envoy JSON lines with recent timestamps, one distinct request id each. */
function envoyLines(count: number, tag: string): string[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      start_time: new Date(now - 60_000 + i).toISOString(),
      method: 'GET',
      path: `/items/${i}`,
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      bytes_received: 0,
      bytes_sent: 10,
      duration: 3,
      authority: 'payments',
      request_id: `${tag}-${i}`,
      upstream_cluster: 'inbound|8080||payments.shop.svc.cluster.local',
      downstream_remote_address: '10.0.0.1:5000',
      downstream_peer_uri_san: 'spiffe://cluster.local/ns/shop/sa/frontend',
    }),
  );
}

async function countEvents(api: TestApi, requestIdPrefix: string): Promise<number> {
  await api.settle();
  const [row] = await api.store!.query<{ n: string }>(`SELECT count() AS n FROM ${api.store!.database}.events WHERE startsWith(request_id, {p:String})`, { p: requestIdPrefix });
  return Number(row?.n);
}

async function deadLetterReasons(api: TestApi): Promise<string[]> {
  await api.settle();
  const rows = await api.store!.query<{ reason: string }>(`SELECT reason FROM ${api.store!.database}.deadletters ORDER BY reason`);
  return rows.map((r) => r.reason);
}

describe('POST /v1/ingest/:source', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ overrides: { http: { bodyLimitBytes: 256 * 1024, compressedBodyLimitBytes: 16 * 1024, requestTimeoutMs: 400, maxJsonDepth: 20 } } });
  });
  afterAll(async () => {
    await api.close();
  });

  const post = (source: string, payload: string | Buffer | Readable, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url: `/v1/ingest/${source}`, headers: { ...api.auth('ingest'), 'content-type': 'application/x-ndjson', ...headers }, payload });

  it('stores NDJSON records and answers with the counts', async () => {
    const res = await post('envoy', envoyLines(20, 'nd').join('\n') + '\n');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ accepted: 20, rejected: 0, errors: [] });
    expect(await countEvents(api, 'nd-')).toBe(20);
  });

  it('reads a JSON array, text lines, gzip and deflate bodies', async () => {
    const array = await post('envoy', `[${envoyLines(5, 'arr').join(',\n')}]`, { 'content-type': 'application/json' });
    expect(array.json()).toMatchObject({ accepted: 5, rejected: 0 });
    const text = await post('envoy', fixture('envoy/istio-default-format.log'), { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(200);
    expect(text.json().accepted).toBeGreaterThanOrEqual(5);
    const gz = await post('envoy', gzipSync(envoyLines(7, 'gz').join('\n')), { 'content-encoding': 'gzip' });
    expect(gz.json()).toMatchObject({ accepted: 7, rejected: 0 });
    const df = await post('auto', deflateSync(envoyLines(3, 'df').join('\n')), { 'content-encoding': 'deflate' });
    expect(df.json()).toMatchObject({ accepted: 3, rejected: 0 });
    expect(await countEvents(api, 'arr-')).toBe(5);
    expect(await countEvents(api, 'gz-')).toBe(7);
    expect(await countEvents(api, 'df-')).toBe(3);
  });

  it('keeps the valid rest of a batch and dead-letters the bad records with their reason', async () => {
    const lines = envoyLines(4, 'mix');
    const body = [lines[0], 'this is not an access log line', lines[1], lines[2], '{"start_time": "garbage"', lines[3]].join('\n');
    const res = await post('envoy', body);
    expect(res.statusCode).toBe(200);
    const result = res.json();
    expect(result.accepted).toBe(4);
    expect(result.rejected).toBe(2);
    expect(result.errors).toHaveLength(2);
    for (const e of result.errors) expect(typeof e.reason).toBe('string');
    expect(await countEvents(api, 'mix-')).toBe(4);
  });

  it('dead-letters invalid UTF-8 lines one by one and stores the valid ones', async () => {
    const lines = envoyLines(3, 'utf');
    const body = Buffer.concat([Buffer.from(`${lines[0]}\n`), Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d, 0x0a]), Buffer.from(`${lines[1]}\n${lines[2]}\n`)]);
    const res = await post('envoy', body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 3, rejected: 1, errors: [{ index: -1, reason: 'invalid_utf8' }] });
    expect(await countEvents(api, 'utf-')).toBe(3);
    expect(await deadLetterReasons(api)).toContain('invalid_utf8');
  });

  it('answers 400 when no record is valid UTF-8, after dead-lettering them', async () => {
    const before = (await deadLetterReasons(api)).filter((r) => r === 'invalid_utf8').length;
    const res = await post('envoy', Buffer.from([0xff, 0xfe, 0x0a, 0xc0, 0xaf, 0x0a]));
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('ZTW_INGEST_BAD_ENCODING');
    const after = (await deadLetterReasons(api)).filter((r) => r === 'invalid_utf8').length;
    expect(after - before).toBe(2);
  });

  it('refuses over-deep JSON per record', async () => {
    const deep = `${'{"a":'.repeat(50)}1${'}'.repeat(50)}`;
    const deepArray = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const lines = envoyLines(2, 'deep');
    const res = await post('envoy', [lines[0], deep, deepArray, lines[1]].join('\n'));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ accepted: 2, rejected: 2 });
    expect(res.json().errors.map((e: { reason: string }) => e.reason)).toEqual(['json_too_deep', 'json_too_deep']);
  });

  it('answers 404 for an unknown source without reading the body', async () => {
    const res = await post('no-such-format', 'x');
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'ZTW_INGEST_UNKNOWN_SOURCE', retryable: false });
  });

  it('answers 415 for a content type or encoding it does not read', async () => {
    const cases: Array<Record<string, string>> = [{ 'content-type': 'image/png' }, { 'content-type': 'multipart/form-data; boundary=x' }, { 'content-encoding': 'br' }];
    for (const headers of cases) {
      const res = await post('envoy', 'x', headers);
      expect(res.statusCode).toBe(415);
      expect(res.json().error.code).toBe('ZTW_INGEST_BAD_CONTENT_TYPE');
    }
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    const big = 'x'.repeat(300 * 1024);
    const declared = await post('envoy', big);
    expect(declared.statusCode).toBe(413);
    expect(declared.json().error.code).toBe('ZTW_INGEST_BODY_TOO_LARGE');
    const streamed = await post('envoy', Readable.from([Buffer.alloc(200 * 1024, 'a'), Buffer.alloc(200 * 1024, 'b')]));
    expect(streamed.statusCode).toBe(413);
    expect(streamed.json().error.code).toBe('ZTW_INGEST_BODY_TOO_LARGE');
  });

  it('stops inflating a gzip bomb at the limit', async () => {
    // 64 MiB of newlines compress to ~64 KiB: over the wire limit as is, so send a 1:1000 bomb that fits it.
    const bomb = gzipSync(Buffer.alloc(12 * 1024 * 1024, 0x0a), { level: 9 });
    expect(bomb.length).toBeLessThan(16 * 1024);
    const res = await post('envoy', bomb, { 'content-encoding': 'gzip' });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('ZTW_INGEST_BODY_TOO_LARGE');
    expect(res.json().error.message).toContain('decompressed');
    const wire = await post('envoy', gzipSync(Buffer.from(envoyLines(400, 'wire').join('\n')), { level: 0 }), { 'content-encoding': 'gzip' });
    expect(wire.statusCode).toBe(413);
  });

  it('answers 400 for a corrupt gzip body', async () => {
    const good = gzipSync(envoyLines(5, 'corrupt').join('\n'));
    const bad = Buffer.concat([good.subarray(0, 20), Buffer.from('garbage garbage garbage')]);
    const res = await post('envoy', bad, { 'content-encoding': 'gzip' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('ZTW_INGEST_BAD_ENCODING');
  });

  it('answers 408 when the body does not arrive in time', async () => {
    const slow = new PassThrough();
    slow.write(envoyLines(1, 'slow')[0]);
    const res = await post('envoy', slow);
    slow.destroy();
    expect(res.statusCode).toBe(408);
    expect(res.json().error).toMatchObject({ code: 'ZTW_API_TIMEOUT', retryable: true });
  });

  it('answers 400 for an empty body', async () => {
    for (const payload of ['', '\n\n   \n']) {
      const res = await post('envoy', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('ZTW_INGEST_EMPTY');
    }
  });

  it('needs an ingest (or admin) token', async () => {
    const none = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', payload: 'x' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(none.json().error.code).toBe('ZTW_API_UNAUTHENTICATED');
    const wrong = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', headers: { authorization: 'Bearer nope' }, payload: 'x' });
    expect(wrong.statusCode).toBe(401);
    for (const role of ['analyst', 'auditor'] as const) {
      const res = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', headers: { ...api.auth(role), 'content-type': 'text/plain' }, payload: 'x' });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('ZTW_API_FORBIDDEN');
    }
    const admin = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', headers: { ...api.auth('admin'), 'content-type': 'text/plain' }, payload: envoyLines(1, 'admin')[0] });
    expect(admin.statusCode).toBe(200);
  });
});

describe('OPA decision-log upload and Kubernetes audit webhook', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('accepts the gzip JSON array OPA posts to <service url>/logs', async () => {
    const body = gzipSync(fixture('opa/decision-log-upload-body.json'));
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/opa/logs',
      headers: { ...api.auth('ingest'), 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: body,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ accepted: 1, rejected: 0, errors: [] });
    await api.settle();
    const rows = await api.store!.query<{ decision_id: string; source: string }>(`SELECT decision_id, source FROM ${api.store!.database}.events WHERE source = 'opa'`);
    expect(rows).toEqual([{ decision_id: '4ca636c1-55e4-417a-b1d8-4aceb67960d1', source: 'opa' }]);
  });

  it('splits a Kubernetes EventList into its events', async () => {
    const items = fixture('k8s-audit/allowed.ndjson')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as unknown);
    items.push(JSON.parse(fixture('k8s-audit/forbidden-403.json')) as unknown);
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/ingest/k8s-audit',
      headers: { ...api.auth('ingest'), 'content-type': 'application/json' },
      payload: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items }),
    });
    expect(res.statusCode).toBe(200);
    // The exec event is at stage ResponseStarted (its ResponseComplete twin is the one recorded), so
    // only the create and the forbidden request become events.
    expect(res.json().accepted).toBe(2);
    await api.settle();
    const rows = await api.store!.query<{ status: number; decision: string }>(`SELECT status, decision FROM ${api.store!.database}.events WHERE source = 'k8s_audit' ORDER BY status`);
    expect(rows).toEqual([
      { status: 201, decision: 'allow' },
      { status: 403, decision: 'deny' },
    ]);
  });
});

describe('splitK8sAuditBody', () => {
  const options = { maxRecordBytes: 1024, maxJsonDepth: 8 };
  it('returns the items of an EventList, one record each', async () => {
    const body = Buffer.from(JSON.stringify({ kind: 'EventList', items: [{ auditID: 'a' }, { auditID: 'b', x: 'y'.repeat(2000) }, { auditID: 'c' }] }, null, 2));
    const split = await splitK8sAuditBody(body, options);
    expect(split.records.map((r) => JSON.parse(r).auditID)).toEqual(['a', 'c']);
    expect(split.rejected.map((r) => r.reason)).toEqual(['record_too_long']);
  });
  it('reads audit-log lines and single events like any other body', async () => {
    expect((await splitK8sAuditBody(Buffer.from('{"kind":"Event","auditID":"a"}\n{"kind":"Event","auditID":"b"}\n'), options)).records).toHaveLength(2);
    expect((await splitK8sAuditBody(Buffer.from('{"kind":"EventList","items":' + '['.repeat(20) + ']'.repeat(20) + '}'), options)).rejected.map((r) => r.reason)).toEqual(['json_too_deep']);
  });
});

describe('saturation', () => {
  it('answers 503 with Retry-After while the bus is full', async () => {
    const bus = new MemoryBus({ maxInFlightMessages: 1 });
    const api = await createTestApi({ bus, withStore: false });
    try {
      await bus.publish(TOPICS.events, [{ key: 'k', value: '{}' }]);
      expect(bus.isSaturated()).toBe(true);
      const res = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', headers: { ...api.auth('ingest'), 'content-type': 'text/plain' }, payload: 'x' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json().error).toMatchObject({ code: 'ZTW_INGEST_OVERLOADED', retryable: true });
      const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'not_ready', checks: { bus: false } });
    } finally {
      await api.close();
    }
  });
});
