// Test helper: deterministic Envoy access-log lines (Istio JSON keys plus the peer SPIFFE id),
// each with a request id that names the run and the line, so stored rows can be counted per run.

const SERVICES = ['payments', 'ledger', 'catalog', 'checkout', 'search'];

/**
 * One Envoy JSON access-log line; `requestId` ends up in the event's `request_id`. `overrides`
 * replaces fields in place (the key order, and so the line, stays otherwise the same).
 */
export function envoyLine(i: number, requestId: string, nowMs: number, overrides: Readonly<Record<string, unknown>> = {}): string {
  const service = SERVICES[i % SERVICES.length] as string;
  return JSON.stringify({
    start_time: new Date(nowMs - (i % 1000)).toISOString(),
    method: i % 3 === 0 ? 'POST' : 'GET',
    path: `/api/v1/${service}/${i}`,
    protocol: 'HTTP/1.1',
    response_code: i % 10 === 0 ? 403 : 200,
    response_flags: '-',
    response_code_details: i % 10 === 0 ? 'rbac_access_denied_matched_policy[none]' : 'via_upstream',
    bytes_received: i % 100,
    bytes_sent: 1000 + i,
    duration: i % 50,
    upstream_service_time: '3',
    x_forwarded_for: '-',
    user_agent: 'test/1.0',
    request_id: requestId,
    authority: `${service}.shop.svc.cluster.local:8080`,
    upstream_host: '10.0.0.5:8080',
    upstream_cluster: `inbound|8080||${service}.shop.svc.cluster.local`,
    downstream_remote_address: `10.0.1.${i % 250}:4${i % 10}000`,
    downstream_local_address: '10.0.0.5:8080',
    downstream_peer_uri_san: `spiffe://cluster.local/ns/shop/sa/client-${i % 7}`,
    requested_server_name: `outbound_.8080_._.${service}.shop.svc.cluster.local`,
    route_name: 'default',
    ...overrides,
  });
}

/** `count` lines whose request ids are `${prefix}-${i}`. */
export function envoyLines(prefix: string, count: number, nowMs = Date.now(), from = 0): string[] {
  return Array.from({ length: count }, (_, k) => envoyLine(from + k, `${prefix}-${from + k}`, nowMs));
}
