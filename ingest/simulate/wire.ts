// Renders simulated requests in the real wire formats ztwatch reads: Envoy access logs as JSON
// with Istio's default keys (untyped, `-` for unset, plus the peer-identity operators operators
// add), as JSON keyed by Envoy command operators (typed, null for unset), and as Istio's default
// text line; OPA decision logs (ext_authz v3 input, and a generic app input); and Hubble flows as
// `hubble observe -o json` prints them.
import type { LogFlavor, SimWorkload } from './mesh.ts';

/** One HTTP exchange as one proxy logged it. */
export interface WireRequest {
  readonly timeMs: number;
  /** `inbound`: logged by the server's sidecar; `outbound`: by the client's sidecar or the gateway. */
  readonly direction: 'inbound' | 'outbound';
  /** Client identity (SPIFFE), or '' for a caller without one. */
  readonly srcIdentity: string;
  readonly srcIp: string;
  readonly dst: SimWorkload;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** Envoy `%RESPONSE_FLAGS%`, '' for none. */
  readonly flags: string;
  /** Envoy `%RESPONSE_CODE_DETAILS%`. */
  readonly details: string;
  /** Envoy `%UPSTREAM_TRANSPORT_FAILURE_REASON%`, '' for none. */
  readonly upstreamFailure: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly requestId: string;
  /** False for a plaintext request: no peer certificate, no SNI, no TLS version. */
  readonly mtls: boolean;
  readonly srcPort: number;
  readonly userAgent: string;
}

const fqdn = (w: SimWorkload) => `${w.name}.${w.namespace}.svc.cluster.local`;
const dash = (text: string) => (text === '' ? '-' : text);

/** Envoy JSON with Istio's default keys, every value a string and `-` when unset (Istio's `accessLogEncoding: JSON`). */
function renderIstioJson(r: WireRequest): string {
  const inbound = r.direction === 'inbound';
  const line: Record<string, string> = {
    start_time: new Date(r.timeMs).toISOString(),
    method: r.method,
    path: r.path,
    protocol: 'HTTP/1.1',
    response_code: String(r.status),
    response_flags: dash(r.flags),
    response_code_details: r.details,
    connection_termination_details: '-',
    upstream_transport_failure_reason: dash(r.upstreamFailure),
    bytes_received: String(r.bytesIn),
    bytes_sent: String(r.bytesOut),
    duration: String(r.durationMs),
    upstream_service_time: r.status > 0 && r.flags === '' ? String(Math.max(0, r.durationMs - 1)) : '-',
    x_forwarded_for: '-',
    user_agent: r.userAgent,
    request_id: r.requestId,
    authority: `${r.dst.name}:${r.dst.port}`,
    upstream_host: inbound ? `${r.dst.ip}:${r.dst.port}` : r.flags.includes('UH') ? '-' : `${r.dst.ip}:${r.dst.port}`,
    upstream_cluster: inbound ? `inbound|${r.dst.port}||` : `outbound|${r.dst.port}||${fqdn(r.dst)}`,
    upstream_local_address: inbound ? `127.0.0.6:${40000 + (r.srcPort % 20000)}` : '-',
    downstream_local_address: inbound ? `${r.dst.ip}:${r.dst.port}` : `${r.dst.ip}:${r.dst.port}`,
    downstream_remote_address: `${r.srcIp}:${r.srcPort}`,
    requested_server_name: inbound && r.mtls ? `outbound_.${r.dst.port}_._.${fqdn(r.dst)}` : '-',
    route_name: 'default',
  };
  if (inbound) {
    line.downstream_peer_uri_san = r.mtls ? dash(r.srcIdentity) : '-';
    line.downstream_local_uri_san = r.mtls ? r.dst.identity : '-';
    line.downstream_tls_version = r.mtls ? 'TLSv1.3' : '-';
  } else {
    line.upstream_local_uri_san = dash(r.srcIdentity);
    line.upstream_peer_uri_san = r.upstreamFailure === '' && r.flags === '' ? r.dst.identity : '-';
  }
  return JSON.stringify(line);
}

/** Envoy JSON keyed by command operators in snake_case, typed (numbers are numbers, unset is null). */
function renderEnvoyJson(r: WireRequest): string {
  const inbound = r.direction === 'inbound';
  const line: Record<string, string | number | null> = {
    start_time: new Date(r.timeMs).toISOString(),
    ':method': r.method,
    ':path': r.path,
    protocol: 'HTTP/2',
    response_code: r.status,
    response_flags: dash(r.flags),
    response_code_details: r.details,
    bytes_received: r.bytesIn,
    bytes_sent: r.bytesOut,
    duration: r.durationMs,
    'x-request-id': r.requestId,
    ':authority': `${fqdn(r.dst)}:${r.dst.port}`,
    upstream_cluster: inbound ? `inbound|${r.dst.port}||` : `outbound|${r.dst.port}||${fqdn(r.dst)}`,
    upstream_host: `${r.dst.ip}:${r.dst.port}`,
    upstream_transport_failure_reason: r.upstreamFailure === '' ? null : r.upstreamFailure,
    downstream_remote_address: `${r.srcIp}:${r.srcPort}`,
    downstream_local_address: `${r.dst.ip}:${r.dst.port}`,
    requested_server_name: inbound && r.mtls ? `outbound_.${r.dst.port}_._.${fqdn(r.dst)}` : null,
  };
  if (inbound) {
    line.downstream_peer_uri_san = r.mtls && r.srcIdentity !== '' ? r.srcIdentity : null;
    line.downstream_local_uri_san = r.mtls ? r.dst.identity : null;
    line.downstream_tls_version = r.mtls ? 'TLSv1.3' : null;
  } else {
    line.upstream_local_uri_san = r.srcIdentity === '' ? null : r.srcIdentity;
    line.upstream_tls_version = r.upstreamFailure === '' ? 'TLSv1.3' : null;
  }
  return JSON.stringify(line);
}

/** Renders one request as the logging proxy's flavor writes it. */
export function renderEnvoyLine(r: WireRequest, flavor: LogFlavor): string {
  return flavor === 'istio-json' ? renderIstioJson(r) : renderEnvoyJson(r);
}

/**
 * Istio's default text format, as the ingress gateway writes it (outbound to the first service):
 * `[start] "method path proto" code flags details term "upstream_failure" in out dur svc "xff" "ua" "id" "authority" "upstream_host" cluster upstream_local downstream_local downstream_remote sni route`.
 */
export function renderIstioText(r: WireRequest, gatewayIp: string): string {
  return (
    `[${new Date(r.timeMs).toISOString()}] "${r.method} ${r.path} HTTP/1.1" ${r.status} ${dash(r.flags)} ${r.details} - "${dash(r.upstreamFailure)}" ` +
    `${r.bytesIn} ${r.bytesOut} ${r.durationMs} ${r.flags === '' ? Math.max(0, r.durationMs - 1) : '-'} "${r.srcIp}" "${r.userAgent}" "${r.requestId}" ` +
    `"${r.dst.name}.example.com" "${r.dst.ip}:${r.dst.port}" outbound|${r.dst.port}||${fqdn(r.dst)} ${gatewayIp}:${40000 + (r.srcPort % 20000)} ` +
    `${gatewayIp}:8443 ${r.srcIp}:${r.srcPort} ${r.dst.name}.example.com ${r.dst.name}`
  );
}

function formatNanos(timeMs: number, nanosWithinMs: number): string {
  const iso = new Date(timeMs).toISOString();
  return `${iso.slice(0, 23)}${String(nanosWithinMs).padStart(6, '0')}Z`;
}

/** An OPA decision for an Envoy ext_authz check (opa-envoy-plugin, v3 input). */
export function renderOpaExtAuthz(d: { timeMs: number; decisionId: string; srcIdentity: string; srcIp: string; srcPort: number; dst: SimWorkload; method: string; path: string; requestId: string; allowed: boolean }): string {
  return JSON.stringify({
    decision_id: d.decisionId,
    labels: { id: 'opa-envoy', version: '1.4.2' },
    path: 'envoy/authz/allow',
    input: {
      attributes: {
        source: { address: { socketAddress: { address: d.srcIp, portValue: d.srcPort } }, principal: d.srcIdentity },
        destination: { address: { socketAddress: { address: d.dst.ip, portValue: d.dst.port } }, principal: d.dst.identity },
        request: {
          http: {
            id: d.requestId.slice(0, 8),
            method: d.method,
            path: d.path,
            host: `${d.dst.name}.${d.dst.namespace}.svc.cluster.local:${d.dst.port}`,
            protocol: 'HTTP/1.1',
            headers: { ':method': d.method, ':path': d.path, 'x-request-id': d.requestId },
          },
        },
      },
      parsed_path: d.path.split('/').filter(Boolean),
    },
    result: { allowed: d.allowed, http_status: d.allowed ? 200 : 403 },
    requested_by: '127.0.0.1:43512',
    timestamp: formatNanos(d.timeMs, 417_000),
    metrics: { timer_rego_query_eval_ns: 81_000, timer_server_handler_ns: 190_000 },
  });
}

/** An OPA decision asked by an application about a human user (generic input). */
export function renderOpaUserDecision(d: { timeMs: number; decisionId: string; user: string; method: string; path: string; allowed: boolean; app: string }): string {
  return JSON.stringify({
    decision_id: d.decisionId,
    labels: { id: 'opa-app', version: '1.4.2', app: d.app },
    path: `${d.app}/authz/allow`,
    input: { user: d.user, method: d.method, path: d.path },
    result: d.allowed,
    requested_by: '10.16.0.9:51344',
    timestamp: formatNanos(d.timeMs, 902_000),
  });
}

function endpointLabels(w: SimWorkload): string[] {
  return [`k8s:app=${w.name}`, `k8s:io.cilium.k8s.policy.serviceaccount=${w.serviceAccount}`, `k8s:io.kubernetes.pod.namespace=${w.namespace}`];
}

/** A Hubble L3/L4 flow (`hubble observe -o json`): FORWARDED, or DROPPED by policy. */
export function renderHubbleFlow(f: { timeMs: number; src: SimWorkload; dst: SimWorkload; dstPort: number; srcPort: number; dropped: boolean; node: string }): string {
  const time = formatNanos(f.timeMs, 133_000);
  const flow: Record<string, unknown> = {
    time,
    verdict: f.dropped ? 'DROPPED' : 'FORWARDED',
    ethernet: { source: '46:e5:ea:1f:95:ff', destination: 'd6:ec:b0:4a:ff:46' },
    IP: { source: f.src.ip, destination: f.dst.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: f.srcPort, destination_port: f.dstPort, flags: { SYN: true } } },
    source: { ID: 1000 + (f.src.ip.length * 7), identity: 20000 + f.src.name.length * 11, namespace: f.src.namespace, labels: endpointLabels(f.src), pod_name: `${f.src.name}-7d9f8b6c4d-x2kq9` },
    destination: { identity: 20000 + f.dst.name.length * 13, namespace: f.dst.namespace, labels: endpointLabels(f.dst), pod_name: `${f.dst.name}-5c6b7d8f9b-p4m7w` },
    Type: 'L3_L4',
    node_name: f.node,
    event_type: f.dropped ? { type: 1, sub_type: 133 } : { type: 4 },
    destination_service: { name: f.dst.name, namespace: f.dst.namespace },
    traffic_direction: 'EGRESS',
    is_reply: false,
    Summary: 'TCP Flags: SYN',
  };
  if (f.dropped) {
    flow.drop_reason = 133;
    flow.drop_reason_desc = 'POLICY_DENIED';
  } else {
    flow.trace_observation_point = 'TO_ENDPOINT';
  }
  return JSON.stringify({ flow, node_name: f.node, time });
}
