// /v1/posture/*: the console's rollout guidance over a real store, with role checks and 4xx codes
// for bad policy bodies and parameters.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createTestApi, type TestApi } from './helpers.ts';

const NOW = Date.now();
const CHECKOUT = 'spiffe://cluster.local/ns/production/sa/checkout-api';
const CART = 'spiffe://cluster.local/ns/production/sa/cart';

function event(i: number, src: string, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', NOW),
    event_id: randomUUID(),
    time: NOW - (i + 1) * 60_000,
    reporter: 'inbound',
    src_identity: src,
    src_ip: '10.0.0.9',
    dst_service: 'payment-service',
    dst_namespace: 'production',
    dst_port: 8080,
    method: 'POST',
    path: '/v1/charges',
    route: '/v1/charges',
    status: 200,
    decision: 'allow',
    mtls: 'yes',
    ...overrides,
  };
}

/** A recorded OPA decision (Envoy external authorization) as OPA's decision log writes it. */
function opaDecision(i: number, method: string): NormalizedEvent {
  const input = { attributes: { request: { http: { method, path: '/v1/charges' } } } };
  const decisionId = `d-${i}`;
  return {
    ...createEmptyEvent('opa', NOW),
    event_id: randomUUID(),
    time: NOW - (i + 1) * 60_000,
    reporter: 'authz',
    decision: 'allow',
    decision_id: decisionId,
    raw: JSON.stringify({ decision_id: decisionId, path: 'envoy/authz/allow', input, result: true }),
  };
}

/** A .tar.gz OPA bundle of one Rego file, as `opa build` would send it. */
function buildBundle(rego: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-bundle-test-'));
  try {
    mkdirSync(join(dir, 'src', 'envoy'), { recursive: true });
    writeFileSync(join(dir, 'src', 'envoy', 'authz.rego'), rego);
    execFileSync('tar', ['-czf', join(dir, 'bundle.tar.gz'), '-C', join(dir, 'src'), '.']);
    return readFileSync(join(dir, 'bundle.tar.gz'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PAYMENT_POLICY = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: payment-service-policy, namespace: production }
spec:
  selector: { matchLabels: { app: payment-service } }
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/production/sa/checkout-api"] } }]
    to: [{ operation: { methods: ["POST"], paths: ["/v1/charges"] } }]
`;

describe('/v1/posture', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ withIngest: false });
    await api.store!.insertEvents([
      ...Array.from({ length: 10 }, (_, i) => event(i, CHECKOUT)),
      ...Array.from({ length: 4 }, (_, i) => event(i, CART, { method: 'GET', path: '/v1/charges/7', route: '/v1/charges/{id}' })),
      ...Array.from({ length: 3 }, (_, i) => event(i, '', { src_ip: '192.0.2.10', mtls: 'no', dst_service: 'ledger', dst_port: 9000 })),
      ...Array.from({ length: 3 }, (_, i) => event(i, CART, { dst_service: 'ledger', dst_port: 9000 })),
      ...Array.from({ length: 6 }, (_, i) => opaDecision(i, i % 3 === 0 ? 'POST' : 'GET')),
    ]);
  });
  afterAll(async () => {
    await api.close();
  });

  it('GET /v1/posture/mtls: readiness per port, plaintext senders, manifest', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/posture/mtls?window=1d', headers: api.auth('analyst') });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ ports: Array<{ service: string; verdict: string; senders: Array<{ sender: string; requests: number }> }>; manifest: string }>();
    expect(body.ports.find((p) => p.service === 'payment-service')?.verdict).toBe('ready');
    expect(body.ports.find((p) => p.service === 'ledger')).toMatchObject({ verdict: 'blocked', senders: [{ sender: '192.0.2.10', requests: 3 }] });
    expect(body.manifest).toContain('name: payment-service-strict');
  });

  it('POST /v1/posture/replay with a YAML body: the seed payment policy denies cart', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/posture/replay?window=1d', headers: { ...api.auth('analyst'), 'content-type': 'application/yaml' }, payload: PAYMENT_POLICY });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ labels: string; denied: Array<{ source: string; method: string; route: string; requests: number }>; changed_flows: number }>();
    expect(body.labels).toContain('convention');
    expect(body.denied).toEqual([expect.objectContaining({ source: CART, method: 'GET', route: '/v1/charges/{id}', requests: 4 })]);
    expect(body.changed_flows).toBe(1);
  });

  it('POST /v1/posture/replay with an OPA bundle (.tar.gz): recorded decisions through the real opa', async () => {
    const bundle = buildBundle('package envoy.authz\n\ndefault allow := false\n\nallow if input.attributes.request.http.method == "GET"\n');
    const res = await api.app.inject({ method: 'POST', url: '/v1/posture/replay?window=1d', headers: { ...api.auth('analyst'), 'content-type': 'application/gzip' }, payload: bundle });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ opa: { replayed: number; changed_decisions: number; changed: Array<{ decisionId: string; recorded: string; replayed: string; path: string }> } }>();
    expect(body.opa.replayed).toBe(6);
    expect(body.opa.changed_decisions).toBe(2);
    expect(body.opa.changed.map((c) => c.decisionId).sort()).toEqual(['d-0', 'd-3']);
    expect(body.opa.changed.every((c) => c.path === 'envoy/authz/allow' && c.recorded === 'allow' && c.replayed === 'deny')).toBe(true);
  });

  it('POST /v1/posture/unused and blast-radius with a JSON body', async () => {
    const policies = PAYMENT_POLICY.replace('"cluster.local/ns/production/sa/checkout-api"]', '"cluster.local/ns/production/sa/checkout-api", "cluster.local/ns/old/sa/gone"]');
    const unused = await api.app.inject({ method: 'POST', url: '/v1/posture/unused?window=1d', headers: api.auth('analyst'), payload: { policies } });
    expect(unused.statusCode).toBe(200);
    expect(unused.json<{ rows: Array<{ value: string }> }>().rows.map((r) => r.value)).toEqual(['cluster.local/ns/old/sa/gone']);
    const blast = await api.app.inject({ method: 'POST', url: `/v1/posture/blast-radius?window=1d&identity=${encodeURIComponent(CART)}`, headers: api.auth('analyst'), payload: { policies } });
    expect(blast.statusCode).toBe(200);
    const rows = blast.json<{ rows: Array<{ service: string; canReachHop: number | null; didReachHop: number | null }> }>().rows;
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ service: 'ledger', canReachHop: 1, didReachHop: 1 }),
        expect.objectContaining({ service: 'payment-service', canReachHop: null, didReachHop: 1 }),
      ]),
    );
  });

  it('GET /v1/posture/generate writes least-privilege policies', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/posture/generate?format=istio&window=1d', headers: api.auth('analyst') });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ yaml: string; documents: unknown[] }>();
    expect(body.documents).toHaveLength(2);
    expect(body.yaml).toContain('cluster.local/ns/production/sa/checkout-api');
  });

  it('answers 4xx with codes for bad input and wrong roles', async () => {
    const cases: Array<[string, InjectOptions, number, string]> = [
      ['no token', { method: 'GET', url: '/v1/posture/mtls' }, 401, 'ZTW_API_UNAUTHENTICATED'],
      ['ingest role', { method: 'GET', url: '/v1/posture/mtls', headers: api.auth('ingest') }, 403, 'ZTW_API_FORBIDDEN'],
      ['bad window', { method: 'GET', url: '/v1/posture/mtls?window=forever', headers: api.auth('analyst') }, 400, 'ZTW_API_BAD_REQUEST'],
      ['window too long', { method: 'GET', url: '/v1/posture/mtls?window=9999d', headers: api.auth('analyst') }, 400, 'ZTW_API_BAD_REQUEST'],
      ['bad format', { method: 'GET', url: '/v1/posture/generate?format=xml', headers: api.auth('analyst') }, 400, 'ZTW_API_BAD_REQUEST'],
      ['no identity', { method: 'GET', url: '/v1/posture/blast-radius', headers: api.auth('analyst') }, 400, 'ZTW_API_BAD_REQUEST'],
      ['empty body', { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'text/plain' }, payload: '   ' }, 400, 'ZTW_API_BAD_REQUEST'],
      ['broken YAML', { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'application/yaml' }, payload: 'kind: [x' }, 400, 'ZTW_POSTURE_POLICY_INVALID'],
      [
        'CUSTOM action',
        { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'application/yaml' }, payload: PAYMENT_POLICY.replace('spec:\n', 'spec:\n  action: CUSTOM\n') },
        422,
        'ZTW_POSTURE_POLICY_UNSUPPORTED',
      ],
      ['policies not a document', { method: 'POST', url: '/v1/posture/replay', headers: api.auth('analyst'), payload: { policies: 5 } }, 400, 'ZTW_POSTURE_POLICY_INVALID'],
      ['bad inventory', { method: 'POST', url: '/v1/posture/replay', headers: api.auth('analyst'), payload: { policies: PAYMENT_POLICY, inventory: { kind: 'List' } } }, 400, 'ZTW_POSTURE_INVENTORY_INVALID'],
      ['bundle not gzip', { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'application/gzip' }, payload: Buffer.from('package x') }, 400, 'ZTW_API_BAD_REQUEST'],
      ['bundle gzip but not tar', { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'application/gzip' }, payload: gzipSync('not a tar') }, 400, 'ZTW_API_BAD_REQUEST'],
      [
        'bundle with broken Rego',
        { method: 'POST', url: '/v1/posture/replay', headers: { ...api.auth('analyst'), 'content-type': 'application/gzip' }, payload: buildBundle('package envoy.authz\n\nallow if {{\n') },
        400,
        'ZTW_API_BAD_REQUEST',
      ],
    ];
    for (const [name, request, status, code] of cases) {
      const res = await api.app.inject(request);
      expect([name, res.statusCode, res.json<{ error: { code: string } }>().error.code]).toEqual([name, status, code]);
    }
  });
});
