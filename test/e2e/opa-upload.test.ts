// OPA's own decision-log upload into ztwatch, with a real `opa` binary on loopback: a ztwatch
// runtime (collector, memory bus, sink, embedded in-memory ClickHouse, API) and `opa run --server`
// with an Envoy ext_authz-style policy whose decision_logs service points at `<ztwatch>/v1/opa`.
// Requests go to OPA's data API; OPA batches the decisions, gzips them and posts them with its
// bearer token; the test reads them back through `GET /v1/access`.
//
// The binary is built by scripts/deps/opa.sh into .cache/opa/bin/opa.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../cli/runtime.ts';
import { startServer, waitFor, type RunningServer } from '../helpers/prometheus.ts';
import { createTestConfig } from '../helpers/store.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OPA_BIN = join(ROOT, '.cache/opa/bin/opa');
const INGEST_TOKEN = `ztw_${randomBytes(24).toString('base64url')}`;
const ADMIN_TOKEN = `ztw_${randomBytes(24).toString('base64url')}`;
/** Longest wait for OPA to start, and for its uploads to be stored. */
const WAIT_MS = 30_000;

// Fails the file outright (never a skip) when the binary has not been built.
if (!existsSync(OPA_BIN)) {
  throw new Error(`${OPA_BIN} is missing: run scripts/deps/opa.sh (or scripts/test-deps.sh) to build it`);
}

const POLICY = `package envoy.authz

default allow := false

allow if input.attributes.request.http.method == "GET"
`;

/** One ext_authz check sent to OPA, and what ztwatch should store for it. */
interface Check {
  readonly requestId: string;
  readonly principal: string;
  readonly method: string;
  readonly path: string;
  readonly decision: 'allow' | 'deny';
}

const RUN_ID = randomBytes(4).toString('hex');
const CHECKS: readonly Check[] = [
  { requestId: `req-${RUN_ID}-1`, principal: 'spiffe://cluster.local/ns/shop/sa/frontend', method: 'GET', path: '/api/orders/17', decision: 'allow' },
  { requestId: `req-${RUN_ID}-2`, principal: 'spiffe://cluster.local/ns/shop/sa/frontend', method: 'POST', path: '/api/orders', decision: 'deny' },
  { requestId: `req-${RUN_ID}-3`, principal: 'spiffe://cluster.local/ns/batch/sa/reporter', method: 'GET', path: '/api/orders', decision: 'allow' },
  { requestId: `req-${RUN_ID}-4`, principal: 'spiffe://cluster.local/ns/batch/sa/reporter', method: 'DELETE', path: '/api/orders/17', decision: 'deny' },
  { requestId: `req-${RUN_ID}-5`, principal: 'spiffe://cluster.local/ns/dev/sa/debugger', method: 'PUT', path: '/admin/config', decision: 'deny' },
];

/** The ext_authz CheckRequest shape opa-envoy-plugin hands to the policy as `input`. */
function buildInput(check: Check): Record<string, unknown> {
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: '10.1.2.3', portValue: 40_000 } },
        principal: check.principal,
      },
      destination: {
        address: { socketAddress: { address: '10.1.9.9', portValue: 8080 } },
        principal: 'spiffe://cluster.local/ns/shop/sa/orders',
      },
      request: {
        http: {
          id: check.requestId,
          method: check.method,
          path: check.path,
          host: 'orders.shop.svc.cluster.local',
          protocol: 'HTTP/1.1',
          headers: { ':method': check.method, ':path': check.path, 'x-request-id': check.requestId },
        },
      },
    },
  };
}

/** A running `opa run --server`. */
/** Starts OPA on a free loopback port and waits for /health; retries when the port was taken. */
function startOpa(configPath: string, policyPath: string): Promise<RunningServer> {
  return startServer(
    'opa',
    OPA_BIN,
    (port) => ['run', '--server', '--skip-version-check', '--addr', `127.0.0.1:${port}`, '--config-file', configPath, policyPath],
    '/health',
    WAIT_MS,
  );
}

/** The fields of a `GET /v1/access` item this test reads. */
interface AccessItem {
  readonly source: string;
  readonly reporter: string;
  readonly request_id: string;
  readonly decision_id: string;
  readonly decision: string;
  readonly decision_reason: string;
  readonly src_identity: string;
  readonly src_namespace: string;
  readonly dst_service: string;
  readonly method: string;
  readonly path: string;
}

describe('OPA decision-log upload (real opa binary)', () => {
  let dir = '';
  let runtime: Runtime | undefined;
  let opa: RunningServer | undefined;

  beforeAll(async () => {
    runtime = await startRuntime({
      config: createTestConfig({ http: { port: 0 }, log: { level: 'silent' } }),
      roles: new Set(['collector', 'sink', 'api']),
      extraTokens: [
        { name: 'opa', role: 'ingest', token: INGEST_TOKEN },
        { name: 'reader', role: 'admin', token: ADMIN_TOKEN },
      ],
      log: () => {},
    });
    dir = await mkdtemp(join(tmpdir(), 'ztwatch-opa-'));
    const policyPath = join(dir, 'policy.rego');
    const configPath = join(dir, 'opa.yaml');
    await writeFile(policyPath, POLICY);
    // JSON is YAML: OPA reads this file as its config.
    const opaConfig = {
      services: [{ name: 'ztwatch', url: `${runtime.url}/v1/opa`, credentials: { bearer: { token: INGEST_TOKEN } } }],
      decision_logs: { service: 'ztwatch', reporting: { min_delay_seconds: 1, max_delay_seconds: 2 } },
    };
    await writeFile(configPath, JSON.stringify(opaConfig, null, 2));
    opa = await startOpa(configPath, policyPath);
  });

  afterAll(async () => {
    await opa?.close();
    await runtime?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('stores every decision OPA uploads, with its verdict, caller and request id', async () => {
    const server = opa as RunningServer;
    for (const check of CHECKS) {
      const res = await fetch(`${server.url}/v1/data/envoy/authz/allow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: buildInput(check) }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { result?: unknown; decision_id?: unknown };
      expect(body.result).toBe(check.decision === 'allow');
      expect(typeof body.decision_id).toBe('string');
    }

    const base = (runtime as Runtime).url;
    const items = await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/access?limit=1000`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        if (res.status !== 200) throw new Error(`GET /v1/access answered ${res.status}: ${await res.text()}`);
        const page = (await res.json()) as { items: AccessItem[] };
        const fromOpa = page.items.filter((item) => item.source === 'opa');
        return fromOpa.length >= CHECKS.length ? fromOpa : undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 500, what: `${CHECKS.length} OPA decisions in GET /v1/access`, details: () => server.logs() },
    );

    expect(items).toHaveLength(CHECKS.length);
    const byRequestId = new Map(items.map((item) => [item.request_id, item]));
    expect([...byRequestId.keys()].sort()).toEqual(CHECKS.map((c) => c.requestId).sort());
    for (const check of CHECKS) {
      const item = byRequestId.get(check.requestId) as AccessItem;
      expect(item.decision).toBe(check.decision);
      expect(item.src_identity).toBe(check.principal);
      expect(item.src_namespace).toBe(check.principal.split('/')[4]);
      expect(item.method).toBe(check.method);
      expect(item.path).toBe(check.path);
      expect(item.dst_service).toBe('orders');
      expect(item.reporter).toBe('authz');
      expect(item.decision_reason).toBe('envoy/authz/allow');
      expect(item.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(new Set(items.map((item) => item.decision_id)).size).toBe(CHECKS.length);
    expect(items.filter((item) => item.decision === 'deny')).toHaveLength(CHECKS.filter((c) => c.decision === 'deny').length);
  });
});
