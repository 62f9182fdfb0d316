// Demo traffic for the dashboard query tests: half an hour of a small mesh with allowed, denied
// (RBAC, OPA, IAP), TLS-failing and plaintext requests on several edges, plus anomalies (one
// resolved) and an audit-log row. Deterministic, so tests can compare query results with totals
// computed here independently of ClickHouse.
import { createEmptyEvent, type NormalizedEvent, type Source, type Reporter, type Decision, type MtlsState } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';

/** Start of the demo traffic, Unix milliseconds. */
export const DEMO_START_MS = Date.UTC(2025, 5, 2, 9, 0, 0);
/** Minutes of demo traffic. */
export const DEMO_MINUTES = 30;

/** SPIFFE identity of a Kubernetes service account. */
export const spiffe = (namespace: string, serviceAccount: string): string => `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;

interface EdgeSpec {
  source: Source;
  reporter: Reporter;
  srcIdentity: string;
  srcNamespace: string;
  srcWorkload: string;
  dstService: string;
  dstNamespace: string;
  /** dst_identity as the inbound side reports it; '' when the reporter does not know it. */
  dstIdentity: string;
  method: string;
  path: (minute: number) => string;
  route: string;
}

/** The ingress gateway's identity: a caller that is never called, so it stays an identity node. */
export const GATEWAY_IDENTITY = spiffe('istio-system', 'istio-ingressgateway-service-account');

const EDGES = {
  gatewayToFrontend: {
    source: 'istio',
    reporter: 'inbound',
    srcIdentity: GATEWAY_IDENTITY,
    srcNamespace: 'istio-system',
    srcWorkload: 'istio-ingressgateway',
    dstService: 'frontend',
    dstNamespace: 'web',
    dstIdentity: spiffe('web', 'frontend'),
    method: 'GET',
    path: () => '/',
    route: '/',
  },
  frontendToCheckout: {
    source: 'istio',
    reporter: 'inbound',
    srcIdentity: spiffe('web', 'frontend'),
    srcNamespace: 'web',
    srcWorkload: 'frontend',
    dstService: 'checkout',
    dstNamespace: 'shop',
    dstIdentity: spiffe('shop', 'checkout'),
    method: 'POST',
    path: (m) => `/api/cart/${1000 + m}`,
    route: '/api/cart/{id}',
  },
  checkoutToPayments: {
    source: 'envoy',
    reporter: 'inbound',
    srcIdentity: spiffe('shop', 'checkout'),
    srcNamespace: 'shop',
    srcWorkload: 'checkout',
    dstService: 'payments',
    dstNamespace: 'shop',
    dstIdentity: spiffe('shop', 'payments'),
    method: 'POST',
    path: () => '/v1/charge',
    route: '/v1/charge',
  },
  checkoutToInventory: {
    source: 'envoy',
    reporter: 'outbound',
    srcIdentity: spiffe('shop', 'checkout'),
    srcNamespace: 'shop',
    srcWorkload: 'checkout',
    dstService: 'inventory',
    dstNamespace: 'shop',
    dstIdentity: spiffe('shop', 'inventory'),
    method: 'GET',
    path: (m) => `/items/${m}`,
    route: '/items/{id}',
  },
  inventoryToLedger: {
    source: 'envoy',
    reporter: 'inbound',
    srcIdentity: '',
    srcNamespace: 'shop',
    srcWorkload: 'inventory',
    dstService: 'ledger',
    dstNamespace: 'finance',
    dstIdentity: spiffe('finance', 'ledger'),
    method: 'PUT',
    path: () => '/reserve',
    route: '/reserve',
  },
  paymentsToLedger: {
    source: 'opa',
    reporter: 'authz',
    srcIdentity: spiffe('shop', 'payments'),
    srcNamespace: 'shop',
    srcWorkload: 'payments',
    dstService: 'ledger',
    dstNamespace: 'finance',
    dstIdentity: '',
    method: 'POST',
    path: () => '/entries',
    route: '/entries',
  },
  aliceToFrontend: {
    source: 'oauth2_proxy',
    reporter: 'iap',
    srcIdentity: 'alice@example.com',
    srcNamespace: '',
    srcWorkload: '',
    dstService: 'frontend',
    dstNamespace: 'web',
    dstIdentity: '',
    method: 'GET',
    path: () => '/account',
    route: '/account',
  },
  bobToFrontend: {
    source: 'oauth2_proxy',
    reporter: 'iap',
    srcIdentity: 'bob@example.com',
    srcNamespace: '',
    srcWorkload: '',
    dstService: 'frontend',
    dstNamespace: 'web',
    dstIdentity: '',
    method: 'GET',
    path: () => '/admin/users',
    route: '/admin/users',
  },
} satisfies Record<string, EdgeSpec>;

interface Outcome {
  decision: Decision;
  status: number;
  reason?: string;
  mtls: MtlsState;
  tlsFailure?: string;
}

const ALLOW_MTLS: Outcome = { decision: 'allow', status: 200, mtls: 'yes' };

/** The demo events, in time order. */
export function createDemoEvents(): NormalizedEvent[] {
  const events: NormalizedEvent[] = [];
  let seq = 0;
  const emit = (edge: EdgeSpec, minute: number, second: number, outcome: Outcome): void => {
    const time = DEMO_START_MS + minute * 60_000 + second * 1000;
    seq++;
    const event: NormalizedEvent = {
      ...createEmptyEvent(edge.source, time + 150),
      event_id: `demo-${seq}`,
      time,
      reporter: edge.reporter,
      src_identity: edge.srcIdentity,
      src_workload: edge.srcWorkload,
      src_namespace: edge.srcNamespace,
      src_ip: `10.1.0.${seq % 250}`,
      src_port: 40_000 + (seq % 1000),
      dst_identity: edge.dstIdentity,
      dst_service: edge.dstService,
      dst_namespace: edge.dstNamespace,
      dst_ip: '10.2.0.10',
      dst_port: 8080,
      method: edge.method,
      path: edge.path(minute),
      route: edge.route,
      authority: `${edge.dstService}.${edge.dstNamespace}.svc.cluster.local`,
      protocol: 'HTTP/1.1',
      status: outcome.status,
      decision: outcome.decision,
      decision_reason: outcome.reason ?? '',
      response_flags: outcome.tlsFailure ? ['UF'] : [],
      mtls: outcome.mtls,
      tls_version: outcome.mtls === 'yes' ? 'TLSv1.3' : '',
      tls_failure: outcome.tlsFailure ?? '',
      bytes_in: 300 + (seq % 50),
      bytes_out: 1200 + (seq % 300),
      duration_ms: 3 + (seq % 20),
      request_id: `req-${seq}`,
      decision_id: edge.source === 'opa' ? `dec-${seq}` : '',
      trace_id: `trace-${seq}`,
    };
    event.raw = JSON.stringify({ demo: seq, path: event.path });
    events.push(event);
  };

  for (let m = 0; m < DEMO_MINUTES; m++) {
    for (let i = 0; i < 3; i++) emit(EDGES.gatewayToFrontend, m, i * 15 + 4, ALLOW_MTLS);
    for (let i = 0; i < 5; i++) emit(EDGES.frontendToCheckout, m, i * 10, ALLOW_MTLS);
    for (let i = 0; i < 3; i++) emit(EDGES.checkoutToPayments, m, i * 10 + 1, ALLOW_MTLS);
    emit(EDGES.checkoutToPayments, m, 45, { decision: 'deny', status: 403, reason: 'rbac:payments-allow-list', mtls: 'yes' });
    for (let i = 0; i < 2; i++) emit(EDGES.checkoutToInventory, m, i * 20 + 2, ALLOW_MTLS);
    if (m % 5 === 0) emit(EDGES.checkoutToInventory, m, 50, { decision: 'error', status: 503, reason: 'UF', mtls: 'unknown', tlsFailure: 'CERTIFICATE_VERIFY_FAILED' });
    if (m >= 10 && m < 13) emit(EDGES.checkoutToPayments, m, 55, { decision: 'error', status: 503, reason: 'UF', mtls: 'unknown', tlsFailure: 'SSLV3_ALERT_CERTIFICATE_EXPIRED' });
    for (let i = 0; i < 2; i++) emit(EDGES.inventoryToLedger, m, i * 25 + 3, { decision: 'allow', status: 200, mtls: 'no' });
    emit(EDGES.paymentsToLedger, m, 30, { decision: 'deny', status: 403, reason: 'ledger.authz.deny', mtls: 'unknown' });
    emit(EDGES.aliceToFrontend, m, 20, { decision: 'allow', status: 200, mtls: 'unknown' });
    if (m % 3 === 0) emit(EDGES.bobToFrontend, m, 40, { decision: 'deny', status: 403, reason: 'email_not_allowed', mtls: 'unknown' });
  }
  return events.sort((a, b) => a.time - b.time);
}

/** Anomaly lifecycle rows: a1 and a3 firing, a2 firing then resolved (higher version wins). */
export function createDemoAnomalies(): Record<string, unknown>[] {
  const at = (minute: number): number => DEMO_START_MS + minute * 60_000;
  const row = (id: string, detector: string, severity: string, status: string, version: number, extra: Record<string, unknown>) => ({
    id,
    detector,
    severity,
    status,
    first_seen: at(5),
    last_seen: at(20),
    src: null,
    dst: null,
    subject: id,
    score: 7.5,
    summary: `${detector} on ${id}`,
    evidence: JSON.stringify({ baseline: 0.1, observed: 3, sample_request_ids: ['req-1'] }),
    version,
    ...extra,
  });
  return [
    row('a1', 'deny_spike', 'high', 'firing', 1, { src: spiffe('shop', 'checkout'), dst: 'payments', subject: 'checkout->payments' }),
    row('a2', 'mtls_failure', 'medium', 'firing', 1, { dst: 'payments', first_seen: at(10), last_seen: at(12) }),
    row('a2', 'mtls_failure', 'medium', 'resolved', 2, { dst: 'payments', first_seen: at(10), last_seen: at(15) }),
    row('a3', 'plaintext', 'low', 'firing', 1, { dst: 'ledger', subject: 'ledger', first_seen: at(1) }),
  ];
}

/** One audited access-history query, as the API writes it. */
export function createDemoAuditRows(): Record<string, unknown>[] {
  return [
    {
      time: DEMO_START_MS + 15 * 60_000,
      actor: 'auditor-1',
      role: 'auditor',
      action: 'access_history',
      filters: JSON.stringify({ identity: 'alice@example.com' }),
      rows: 30,
      status: 200,
      remote_addr: '10.0.0.9',
    },
  ];
}

/** Inserts the demo events, anomalies and audit rows into `store`. */
export async function insertDemoData(store: Store): Promise<NormalizedEvent[]> {
  const events = createDemoEvents();
  await store.insertEvents(events, 'dashboards-demo');
  await store.insertRows('anomalies', createDemoAnomalies());
  await store.insertRows('audit_log', createDemoAuditRows());
  return events;
}
