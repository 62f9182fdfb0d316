import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from './helpers.ts';

describe('health, metrics, OpenAPI', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('answers /healthz and /readyz without a token', async () => {
    const health = await api.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { store: true, bus: true } });
  });

  it('serves Prometheus metrics, counting API errors by code', async () => {
    await api.app.inject({ method: 'GET', url: '/v1/access' });
    const res = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('ztwatch_stage_errors_total{stage="api",code="ZTW_API_UNAUTHENTICATED"} 1');
  });

  it('describes every route in /openapi.json with schemas, security and error bodies', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/readyz',
        '/v1/access',
        '/v1/access/export',
        '/v1/anomalies',
        '/v1/anomalies/{id}',
        '/v1/incidents',
        '/v1/incidents/{id}',
        '/v1/audit',
        '/v1/chain/verify',
        '/v1/graph',
        '/v1/graph/series',
        '/v1/ingest/k8s-audit',
        '/v1/ingest/{source}',
        '/v1/opa/logs',
        '/v1/opa/logs/{partition}',
        '/v1/posture/blast-radius',
        '/v1/posture/generate',
        '/v1/posture/mtls',
        '/v1/posture/replay',
        '/v1/posture/unused',
        '/v1/session',
      ].sort(),
    );
    const ingest = doc.paths['/v1/ingest/{source}'].post;
    expect(Object.keys(ingest.requestBody.content)).toEqual(['application/x-ndjson', 'application/json', 'text/plain']);
    expect(ingest.security).toEqual([{ bearerAuth: [] }]);
    expect(ingest.responses['4XX'].content['application/json'].schema.properties.error.required).toEqual(['code', 'message', 'retryable']);
    const access = doc.paths['/v1/access'].get;
    expect(access.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['identity', 'identity_prefix', 'service', 'decision', 'path_prefix', 'from', 'to', 'cursor', 'limit']));
    const docs = await api.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toContain('text/html');
  });

  it('answers unknown routes with a coded 404 and sets protective headers', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('ZTW_API_NOT_FOUND');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const post = await api.app.inject({ method: 'DELETE', url: '/v1/access' });
    expect(post.statusCode).toBe(404);
  });

  it('answers what the HTTP parser refuses with a coded body', async () => {
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.app.server.address() as AddressInfo;
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(text));
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString()));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
    const huge = await raw(`GET /v1/access?identity=${'x'.repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1.1 400/);
    expect(huge).toContain('"code":"ZTW_API_BAD_REQUEST"');
    const garbage = await raw('NOT A REQUEST\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1.1 400/);
    expect(garbage).toContain('ZTW_API_BAD_REQUEST');
  });
});

describe('routes follow the process role', () => {
  it('has no query routes without a store and no ingest routes without an ingestor', async () => {
    const collector = await createTestApi({ withStore: false });
    try {
      const access = await collector.app.inject({ method: 'GET', url: '/v1/access', headers: collector.auth('admin') });
      expect(access.statusCode).toBe(404);
      const ready = await collector.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.json().checks).toEqual({ bus: true });
    } finally {
      await collector.close();
    }
    const query = await createTestApi({ withIngest: false, appOptions: { isReady: () => false } });
    try {
      const ingest = await query.app.inject({ method: 'POST', url: '/v1/ingest/envoy', headers: { ...query.auth('admin'), 'content-type': 'text/plain' }, payload: 'x' });
      expect(ingest.statusCode).toBe(404);
      expect(ingest.json().error.code).toBe('ZTW_API_NOT_FOUND');
      const ready = await query.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'not_ready', checks: { store: true, bus: true, process: false } });
    } finally {
      await query.close();
    }
  });

  it('closes /metrics to callers without a token when metricsOpen is false', async () => {
    const api = await createTestApi({ withStore: false, overrides: { auth: { metricsOpen: false } } });
    try {
      expect((await api.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      expect((await api.app.inject({ method: 'GET', url: '/metrics', headers: api.auth('analyst') })).statusCode).toBe(200);
    } finally {
      await api.close();
    }
  });
});
