// The benchmarks' traffic: deterministic Envoy access-log lines, so every run measures the same rows.

const SERVICES = ['payments', 'ledger', 'catalog', 'checkout', 'search', 'reviews', 'ratings', 'cart', 'orders', 'users'];

/** A deterministic Envoy access-log line (Istio JSON keys plus the peer SPIFFE id). */
export function envoyLine(i: number, nowMs: number): string {
  const service = SERVICES[i % SERVICES.length] as string;
  const client = `client-${(i * 7) % 40}`;
  const denied = i % 50 === 0;
  return JSON.stringify({
    start_time: new Date(nowMs - (i % 5000)).toISOString(),
    method: i % 4 === 0 ? 'POST' : 'GET',
    path: `/api/v1/${service}/items/${i % 9973}`,
    protocol: 'HTTP/1.1',
    response_code: denied ? 403 : 200,
    response_flags: '-',
    response_code_details: denied ? 'rbac_access_denied_matched_policy[none]' : 'via_upstream',
    bytes_received: i % 700,
    bytes_sent: 200 + (i % 5000),
    duration: i % 120,
    upstream_service_time: String(i % 100),
    x_forwarded_for: '-',
    user_agent: 'bench/1.0',
    request_id: `${(i * 2654435761) >>> 0}-${i}`,
    authority: `${service}.shop.svc.cluster.local:8080`,
    upstream_host: `10.0.${i % 200}.5:8080`,
    upstream_cluster: `inbound|8080||${service}.shop.svc.cluster.local`,
    downstream_remote_address: `10.1.${i % 250}.${i % 200}:${30000 + (i % 20000)}`,
    downstream_local_address: `10.0.${i % 200}.5:8080`,
    downstream_peer_uri_san: `spiffe://cluster.local/ns/shop/sa/${client}`,
    requested_server_name: `outbound_.8080_._.${service}.shop.svc.cluster.local`,
    route_name: 'default',
  });
}
