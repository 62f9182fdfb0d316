import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRole } from '../../core/config.ts';
import { hashToken, isSpiffeAllowed, ROUTE_ROLES } from '../../api/auth.ts';
import { createTestApi, type TestApi } from './helpers.ts';

describe('tokens and roles', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ appOptions: { extraTokens: [{ name: 'demo', role: 'analyst', token: 'demo-token-123' }] } });
  });
  afterAll(async () => {
    await api.close();
  });

  it('stores tokens as SHA-256 hex', () => {
    expect(hashToken('secret')).toBe(createHash('sha256').update('secret').digest('hex'));
    expect(hashToken('secret')).toMatch(/^[0-9a-f]{64}$/);
  });

  // Each route with the roles allowed on it (admin is allowed everywhere).
  const routes: Array<{ method: 'GET' | 'POST'; url: string; kind: keyof typeof ROUTE_ROLES }> = [
    { method: 'POST', url: '/v1/ingest/envoy', kind: 'ingest' },
    { method: 'POST', url: '/v1/ingest/k8s-audit', kind: 'ingest' },
    { method: 'POST', url: '/v1/opa/logs', kind: 'ingest' },
    { method: 'GET', url: '/v1/anomalies', kind: 'anomalies' },
    { method: 'GET', url: '/v1/anomalies/x', kind: 'anomalies' },
    { method: 'GET', url: '/v1/incidents', kind: 'anomalies' },
    { method: 'GET', url: '/v1/incidents/x', kind: 'anomalies' },
    { method: 'GET', url: '/v1/graph', kind: 'graph' },
    { method: 'GET', url: '/v1/graph/series', kind: 'graph' },
    { method: 'GET', url: '/v1/posture/mtls', kind: 'graph' },
    { method: 'GET', url: '/v1/posture/generate?format=istio', kind: 'graph' },
    { method: 'GET', url: '/v1/posture/blast-radius?identity=x', kind: 'graph' },
    { method: 'POST', url: '/v1/posture/replay', kind: 'graph' },
    { method: 'POST', url: '/v1/posture/unused', kind: 'graph' },
    { method: 'POST', url: '/v1/posture/blast-radius', kind: 'graph' },
    { method: 'GET', url: '/v1/session', kind: 'session' },
    { method: 'GET', url: '/v1/access', kind: 'access' },
    { method: 'GET', url: '/v1/access?include_raw=true', kind: 'accessRaw' },
    { method: 'GET', url: '/v1/access/export', kind: 'export' },
    { method: 'GET', url: '/v1/chain/verify', kind: 'verify' },
    { method: 'GET', url: '/v1/audit', kind: 'audit' },
  ];
  const roles: ApiRole[] = ['ingest', 'analyst', 'auditor', 'admin'];

  it('lists every authenticated route of the OpenAPI document above', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const open = new Set(['/healthz', '/readyz', '/metrics']);
    const listed = new Set(routes.map((r) => `${r.method} ${r.url.split('?')[0]?.replace(/\/x$/, '/{id}').replace('/v1/opa/logs/{id}', '/v1/opa/logs/{partition}')}`));
    const documented = Object.entries(doc.paths)
      .filter(([path]) => !open.has(path) && path !== '/v1/opa/logs/{partition}')
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace('{source}', 'envoy')}`));
    expect(documented.filter((route) => !listed.has(route))).toEqual([]);
  });

  it('grants each role exactly its routes (least privilege)', async () => {
    for (const route of routes) {
      for (const role of roles) {
        const res = await api.app.inject({ method: route.method, url: route.url, headers: { ...api.auth(role), 'content-type': 'text/plain' }, ...(route.method === 'POST' ? { payload: '{}' } : {}) });
        const allowed = (ROUTE_ROLES[route.kind] as readonly ApiRole[]).includes(role);
        if (allowed) expect([401, 403], `${role} ${route.url} -> ${res.statusCode}`).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, `${role} ${route.url}`).toBe(403);
          expect(res.json().error.code).toBe('ZTW_API_FORBIDDEN');
        }
      }
    }
    expect(ROUTE_ROLES.ingest).toEqual(['ingest', 'admin']);
    expect(ROUTE_ROLES.session).toEqual(roles);
    expect(ROUTE_ROLES.audit).toEqual(['admin']);
    expect(ROUTE_ROLES.accessRaw).not.toContain('analyst');
  });

  it('refuses missing, malformed and unknown credentials with 401', async () => {
    const headers = [
      {},
      { authorization: '' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${api.tokens.admin} extra` },
      { authorization: `Bearer ${api.tokens.admin.slice(0, -1)}` },
      { authorization: `Bearer ${'x'.repeat(10_000)}` },
      { authorization: `Bearer ${hashToken(api.tokens.admin)}` },
    ];
    for (const h of headers) {
      const res = await api.app.inject({ method: 'GET', url: '/v1/anomalies', headers: h });
      expect(res.statusCode, JSON.stringify(h).slice(0, 80)).toBe(401);
      expect(res.json().error).toEqual({ code: 'ZTW_API_UNAUTHENTICATED', message: expect.any(String), retryable: false });
    }
    const lower = await api.app.inject({ method: 'GET', url: '/v1/anomalies', headers: { authorization: `bearer ${api.tokens.analyst}` } });
    expect(lower.statusCode).toBe(200);
  });

  it('accepts the process-local plaintext tokens', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/graph', headers: { authorization: 'Bearer demo-token-123' } });
    expect(res.statusCode).toBe(200);
  });

  it('matches SPIFFE IDs exactly or by a trailing *', () => {
    const list = ['spiffe://cluster.local/ns/mesh/sa/collector', 'spiffe://prod.example/ns/ingest/*'];
    expect(isSpiffeAllowed('spiffe://cluster.local/ns/mesh/sa/collector', list)).toBe(true);
    expect(isSpiffeAllowed('spiffe://cluster.local/ns/mesh/sa/collector2', list)).toBe(false);
    expect(isSpiffeAllowed('spiffe://prod.example/ns/ingest/sa/fluentbit', list)).toBe(true);
    expect(isSpiffeAllowed('spiffe://prod.example/ns/other/sa/x', list)).toBe(false);
    expect(isSpiffeAllowed('spiffe://evil/spiffe://prod.example/ns/ingest/x', list)).toBe(false);
  });
});

describe('mTLS with a SPIFFE allowlist for ingest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztw-mtls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  /** A key and a certificate signed by the test CA, with the given subjectAltName. */
  function issue(name: string, san: string): void {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`);
    writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.crt`), '-days', '1', '-extfile', file(`${name}.ext`));
  }

  let port = 0;
  let api: TestApi;
  let strict: TestApi;
  let strictPort = 0;

  beforeAll(async () => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=ztwatch-test-ca');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('rogue-ca.key'), '-out', file('rogue-ca.crt'), '-days', '1', '-subj', '/CN=rogue-ca');
    issue('server', 'IP:127.0.0.1,DNS:localhost');
    issue('collector', 'URI:spiffe://cluster.local/ns/mesh/sa/collector');
    issue('stranger', 'URI:spiffe://cluster.local/ns/mesh/sa/stranger');
    // Same allowed SPIFFE ID, but signed by a CA the server does not trust.
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('rogue.key'), '-out', file('rogue.csr'), '-subj', '/CN=rogue');
    writeFileSync(file('rogue.ext'), 'subjectAltName=URI:spiffe://cluster.local/ns/mesh/sa/collector\n');
    openssl('x509', '-req', '-in', file('rogue.csr'), '-CA', file('rogue-ca.crt'), '-CAkey', file('rogue-ca.key'), '-CAcreateserial', '-out', file('rogue.crt'), '-days', '1', '-extfile', file('rogue.ext'));
    const tls = { certFile: file('server.crt'), keyFile: file('server.key'), caFile: file('ca.crt') };
    const allowlist = ['spiffe://cluster.local/ns/mesh/sa/collector'];
    api = await createTestApi({ overrides: { http: { tls }, auth: { ingestSpiffeAllowlist: allowlist } } });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    port = (api.app.server.address() as AddressInfo).port;
    strict = await createTestApi({ withStore: false, overrides: { http: { tls }, auth: { ingestSpiffeAllowlist: allowlist, ingestRequireMtls: true } } });
    await strict.app.listen({ host: '127.0.0.1', port: 0 });
    strictPort = (strict.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await api?.close();
    await strict?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (target: number, path: string, client: string | undefined, headers: Record<string, string> = {}, method = 'POST') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: target,
          path,
          method,
          ca: readFileSync(file('ca.crt')),
          ...(client ? { cert: readFileSync(file(`${client}.crt`)), key: readFileSync(file(`${client}.key`)) } : {}),
          headers: { 'content-type': 'text/plain', ...headers },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(method === 'POST' ? '{"start_time":"2025-01-01T00:00:00Z","method":"GET","path":"/","response_code":200}' : undefined);
    });

  it('lets an allowlisted client certificate ingest without a token', async () => {
    const res = await send(port, '/v1/ingest/envoy', 'collector');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ accepted: expect.any(Number) });
  });

  it('refuses a certificate that is not allowlisted or not signed by the trusted CA', async () => {
    for (const client of ['stranger', 'rogue', undefined]) {
      const res = await send(port, '/v1/ingest/envoy', client);
      expect(res.status, String(client)).toBe(401);
      expect(JSON.parse(res.body).error.code).toBe('ZTW_API_UNAUTHENTICATED');
    }
  });

  it('gives a certificate the ingest role on ingest routes only; tokens still work over TLS', async () => {
    const query = await send(port, '/v1/anomalies', 'collector', {}, 'GET');
    expect(query.status).toBe(401);
    const token = await send(port, '/v1/anomalies', undefined, api.auth('analyst'), 'GET');
    expect(token.status).toBe(200);
  });

  it('demands the certificate when ingestRequireMtls is set, even with an ingest token', async () => {
    expect((await send(strictPort, '/v1/ingest/envoy', undefined, strict.auth('ingest'))).status).toBe(401);
    expect((await send(strictPort, '/v1/ingest/envoy', 'stranger', strict.auth('ingest'))).status).toBe(401);
    expect((await send(strictPort, '/v1/ingest/envoy', 'collector')).status).toBe(200);
  });
});
