// Wire formats of the independent generator, written from the formats' documentation and the
// shared fixtures (not from the project's own simulator): Envoy access logs as a server sidecar
// (inbound) and a client sidecar (outbound) write them, in Istio's JSON keys (untyped, `-` for unset)
// or in typed snake_case Envoy command operators (null for unset), with the peer-certificate
// operators an operator adds; inbound listener lines for failed TLS handshakes
// (`%DOWNSTREAM_TRANSPORT_FAILURE_REASON%`); the ingress gateway in Istio's default text format; OPA
// decision logs (opa-envoy-plugin v3 ext_authz input, an app's own input, upload and console
// shapes); and Hubble flows (`hubble observe -o json`, the `{"flow":…}` wrapper).
import type { LogStyle } from './topology.ts';

/** The server side of an exchange. */
export interface Peer {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly ip: string;
  readonly port: number;
}

/** One HTTP exchange between two sidecars, before it is written by either of them. */
export interface Exchange {
  readonly timeMs: number;
  /** Client SPIFFE ID, '' when the client has no certificate. */
  readonly srcIdentity: string;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dst: Peer;
  readonly method: string;
  readonly path: string;
  readonly protocol: string;
  /** `:authority` as the client wrote it (`name:port` or the service FQDN). */
  readonly authority: string;
  /** 0 when no response was received. */
  readonly status: number;
  /** Envoy short response flags joined by commas, '' for none. */
  readonly flags: string;
  readonly details: string;
  readonly termDetails: string;
  /** `%UPSTREAM_TRANSPORT_FAILURE_REASON%` as the client sidecar writes it, '' for none. */
  readonly upstreamFailure: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly requestId: string;
  readonly traceId: string;
  /** The request travelled over mutual TLS. */
  readonly mtls: boolean;
  readonly userAgent: string;
}

const fqdn = (p: Peer) => `${p.name}.${p.namespace}.svc.cluster.local`;
const orDash = (v: string) => (v === '' ? '-' : v);
const orNull = (v: string) => (v === '' ? null : v);
const iso = (ms: number) => new Date(ms).toISOString();

/** OpenSSL's text for a TLS failure, as `%UPSTREAM_TRANSPORT_FAILURE_REASON%` prints it. */
export function tlsErrorText(reason: string): string {
  const code = TLS_CODES[reason] ?? 268435581;
  return `TLS_error:|${code}:SSL_routines:OPENSSL_internal:${reason}:TLS_error_end`;
}

const TLS_CODES: Readonly<Record<string, number>> = {
  CERTIFICATE_VERIFY_FAILED: 268435581,
  SSLV3_ALERT_CERTIFICATE_EXPIRED: 268436501,
  SSLV3_ALERT_BAD_CERTIFICATE: 268436498,
  TLSV1_ALERT_UNKNOWN_CA: 268436504,
};

/** The line the server's sidecar writes for an exchange it received. */
export function renderInbound(x: Exchange, style: LogStyle): string {
  const sni = x.mtls ? `outbound_.${x.dst.port}_._.${fqdn(x.dst)}` : '';
  const local = `${x.dst.ip}:${x.dst.port}`;
  const remote = `${x.srcIp}:${x.srcPort}`;
  if (style === 'istio-keys') {
    return JSON.stringify({
      authority: x.authority,
      bytes_received: String(x.bytesIn),
      bytes_sent: String(x.bytesOut),
      connection_termination_details: orDash(x.termDetails),
      downstream_local_address: local,
      downstream_remote_address: remote,
      duration: String(x.durationMs),
      method: x.method,
      path: x.path,
      protocol: x.protocol,
      request_id: x.requestId,
      requested_server_name: orDash(sni),
      response_code: String(x.status),
      response_code_details: x.details,
      response_flags: orDash(x.flags),
      route_name: 'default',
      start_time: iso(x.timeMs),
      upstream_cluster: `inbound|${x.dst.port}||`,
      upstream_host: x.status === 0 && x.flags !== '' ? '-' : `${x.dst.ip}:${x.dst.port}`,
      upstream_local_address: `127.0.0.6:${20000 + (x.srcPort % 40000)}`,
      upstream_service_time: x.status >= 200 && x.flags === '' ? String(Math.max(0, x.durationMs - 1)) : '-',
      upstream_transport_failure_reason: '-',
      user_agent: x.userAgent,
      x_forwarded_for: '-',
      downstream_peer_uri_san: x.mtls ? orDash(x.srcIdentity) : '-',
      downstream_tls_version: x.mtls ? 'TLSv1.3' : '-',
    });
  }
  return JSON.stringify({
    start_time: iso(x.timeMs),
    method: x.method,
    path: x.path,
    protocol: x.protocol,
    response_code: x.status,
    response_flags: orDash(x.flags),
    response_code_details: x.details,
    connection_termination_details: orNull(x.termDetails),
    bytes_received: x.bytesIn,
    bytes_sent: x.bytesOut,
    duration: x.durationMs,
    request_id: x.requestId,
    traceparent: `00-${x.traceId}-${x.requestId.replace(/-/g, '').slice(0, 16)}-01`,
    authority: x.authority,
    upstream_cluster: `inbound|${x.dst.port}||${fqdn(x.dst)}`,
    upstream_host: `127.0.0.1:${x.dst.port}`,
    downstream_remote_address: remote,
    downstream_local_address: local,
    requested_server_name: orNull(sni),
    downstream_peer_uri_san: x.mtls ? orNull(x.srcIdentity) : null,
    downstream_local_uri_san: x.mtls ? x.dst.identity : null,
    downstream_tls_version: x.mtls ? 'TLSv1.3' : null,
    downstream_tls_cipher: x.mtls ? 'TLS_AES_128_GCM_SHA256' : null,
    user_agent: x.userAgent,
  });
}

/** The line the client's sidecar writes for an exchange it sent (`clusterIp` is the service VIP). */
export function renderOutbound(x: Exchange, style: LogStyle, clusterIp: string): string {
  const handshakeOk = x.upstreamFailure === '';
  const cluster = `outbound|${x.dst.port}||${fqdn(x.dst)}`;
  const upstreamHost = x.flags.includes('UH') ? '' : `${x.dst.ip}:${x.dst.port}`;
  if (style === 'istio-keys') {
    return JSON.stringify({
      start_time: iso(x.timeMs),
      method: x.method,
      path: x.path,
      protocol: x.protocol,
      response_code: String(x.status),
      response_flags: orDash(x.flags),
      response_code_details: x.details,
      connection_termination_details: orDash(x.termDetails),
      upstream_transport_failure_reason: orDash(x.upstreamFailure),
      bytes_received: String(x.bytesIn),
      bytes_sent: String(x.bytesOut),
      duration: String(x.durationMs),
      upstream_service_time: x.status >= 200 && x.flags === '' ? String(Math.max(0, x.durationMs - 2)) : '-',
      x_forwarded_for: '-',
      user_agent: x.userAgent,
      request_id: x.requestId,
      authority: x.authority,
      upstream_host: orDash(upstreamHost),
      upstream_cluster: cluster,
      upstream_local_address: upstreamHost === '' ? '-' : `${x.srcIp}:${30000 + (x.srcPort % 30000)}`,
      downstream_local_address: `${clusterIp}:${x.dst.port}`,
      downstream_remote_address: `${x.srcIp}:${x.srcPort}`,
      requested_server_name: '-',
      route_name: 'default',
      upstream_local_uri_san: orDash(x.srcIdentity),
      upstream_peer_uri_san: handshakeOk && upstreamHost !== '' ? x.dst.identity : '-',
      upstream_tls_version: handshakeOk && upstreamHost !== '' ? 'TLSv1.3' : '-',
    });
  }
  return JSON.stringify({
    start_time: iso(x.timeMs),
    method: x.method,
    path: x.path,
    protocol: x.protocol,
    response_code: x.status,
    response_flags: orDash(x.flags),
    response_code_details: x.details,
    connection_termination_details: orNull(x.termDetails),
    upstream_transport_failure_reason: orNull(x.upstreamFailure),
    bytes_received: x.bytesIn,
    bytes_sent: x.bytesOut,
    duration: x.durationMs,
    request_id: x.requestId,
    traceparent: `00-${x.traceId}-${x.requestId.replace(/-/g, '').slice(16, 32)}-01`,
    authority: x.authority,
    upstream_cluster: cluster,
    upstream_host: orNull(upstreamHost),
    downstream_remote_address: `${x.srcIp}:${x.srcPort}`,
    downstream_local_address: `${clusterIp}:${x.dst.port}`,
    upstream_local_uri_san: orNull(x.srcIdentity),
    upstream_peer_uri_san: handshakeOk && upstreamHost !== '' ? x.dst.identity : null,
    upstream_tls_version: handshakeOk && upstreamHost !== '' ? 'TLSv1.3' : null,
    user_agent: x.userAgent,
  });
}

/** An inbound listener line for a TLS handshake that failed before any request (status 0, no method). */
export function renderHandshakeFailure(f: { timeMs: number; srcIp: string; srcPort: number; dst: Peer; reason: string }): string {
  return JSON.stringify({
    start_time: iso(f.timeMs),
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: '-',
    response_code_details: null,
    connection_termination_details: null,
    downstream_transport_failure_reason: tlsErrorText(f.reason),
    bytes_received: 0,
    bytes_sent: 0,
    duration: 0,
    upstream_cluster: `inbound|${f.dst.port}||`,
    upstream_host: null,
    downstream_remote_address: `${f.srcIp}:${f.srcPort}`,
    downstream_local_address: `${f.dst.ip}:${f.dst.port}`,
    requested_server_name: `outbound_.${f.dst.port}_._.${fqdn(f.dst)}`,
    downstream_peer_uri_san: null,
    downstream_local_uri_san: null,
    downstream_tls_version: null,
  });
}

/** The ingress gateway's line in Istio's default text format. */
export function renderGatewayText(x: Exchange, gatewayIp: string, host: string): string {
  return (
    `[${iso(x.timeMs)}] "${x.method} ${x.path} ${x.protocol}" ${x.status} ${orDash(x.flags)} ${x.details} ${orDash(x.termDetails)} "${orDash(x.upstreamFailure)}" ` +
    `${x.bytesIn} ${x.bytesOut} ${x.durationMs} ${x.status >= 200 && x.flags === '' ? Math.max(0, x.durationMs - 3) : '-'} "${x.srcIp}" "${x.userAgent}" "${x.requestId}" "${host}" ` +
    `"${x.dst.ip}:${x.dst.port}" outbound|${x.dst.port}||${fqdn(x.dst)} ${gatewayIp}:${30000 + (x.srcPort % 30000)} ${gatewayIp}:8443 ${x.srcIp}:${x.srcPort} ${host} -`
  );
}

function nanoTime(ms: number, nanos: number): string {
  return `${iso(ms).slice(0, 23)}${String(nanos % 1_000_000).padStart(6, '0')}Z`;
}

/** An opa-envoy-plugin decision for an ext_authz check (v3 protojson input). */
export function renderOpaEnvoyDecision(d: { timeMs: number; decisionId: string; exchange: Exchange; allowed: boolean; console: boolean; instance: string; revision: string }): string {
  const x = d.exchange;
  const headers: Record<string, string> = { ':authority': x.authority, ':method': x.method, ':path': x.path, 'x-request-id': x.requestId, 'user-agent': x.userAgent };
  // Some gateways forward the caller in XFCC instead of the peer principal.
  const viaXfcc = d.instance.endsWith('-x');
  if (viaXfcc) headers['x-forwarded-client-cert'] = `By=${x.dst.identity};Hash=${x.requestId.replace(/-/g, '')};Subject="";URI=${x.srcIdentity}`;
  const event: Record<string, unknown> = {
    decision_id: d.decisionId,
    labels: { id: d.instance, version: '0.68.0-envoy' },
    bundles: { authz: { revision: d.revision } },
    path: 'envoy/authz/allow',
    input: {
      attributes: {
        source: { address: { socketAddress: { address: x.srcIp, portValue: x.srcPort } }, ...(viaXfcc ? {} : { principal: x.srcIdentity }) },
        destination: { address: { socketAddress: { address: x.dst.ip, portValue: x.dst.port } }, ...(viaXfcc ? {} : { principal: x.dst.identity }) },
        request: { time: iso(x.timeMs), http: { id: x.requestId.slice(0, 18), method: x.method, path: x.path, host: x.authority, protocol: x.protocol, headers, size: x.bytesIn } },
        metadataContext: {},
      },
      parsed_path: x.path.split('?')[0]?.split('/').filter(Boolean) ?? [],
      parsed_query: {},
      truncated_body: false,
      version: { encoding: 'protojson', ext_authz: 'v3' },
    },
    result: d.allowed ? true : { allowed: false, http_status: 403, headers: { 'x-ext-authz-check': 'denied' } },
    requested_by: `127.0.0.1:${30000 + (x.srcPort % 20000)}`,
    timestamp: nanoTime(d.timeMs, x.srcPort * 37),
    metrics: { timer_rego_query_eval_ns: 40_000 + (x.srcPort % 90_000), timer_server_handler_ns: 120_000 + (x.srcPort % 150_000) },
  };
  if (d.console) Object.assign(event, { level: 'info', msg: 'Decision Log', type: 'openpolicyagent.org/decision_logs', req_id: x.srcPort % 1000 });
  return JSON.stringify(event);
}

/** A decision an application asked OPA about one of its users (its own input document). */
export function renderOpaAppDecision(d: { timeMs: number; decisionId: string; app: string; user: string; method: string; path: string; allowed: boolean; roles: readonly string[] }): string {
  return JSON.stringify({
    decision_id: d.decisionId,
    labels: { id: `${d.app}-opa`, version: '0.68.0', app: d.app },
    path: `apps/${d.app.replace(/-/g, '_')}/authz/allow`,
    input: { user: d.user, method: d.method, path: d.path, roles: d.roles },
    result: d.allowed,
    requested_by: '127.0.0.1:8181',
    timestamp: nanoTime(d.timeMs, d.timeMs % 977 * 1000),
  });
}

/** One end of a Hubble flow: a pod (with labels) or an address outside the cluster's endpoints. */
export interface FlowEndpoint {
  readonly ip: string;
  readonly namespace?: string;
  readonly app?: string;
  readonly serviceAccount?: string;
  readonly pod?: string;
  readonly identity: number;
}

/** A Hubble L3/L4 flow: a TCP SYN forwarded, or dropped by policy. */
export function renderHubbleFlow(f: { timeMs: number; src: FlowEndpoint; dst: FlowEndpoint; srcPort: number; dstPort: number; dropped: boolean; node: string; service?: { name: string; namespace: string } }): string {
  const endpoint = (e: FlowEndpoint) => {
    if (e.namespace === undefined) return { identity: e.identity, labels: ['reserved:world'] };
    const labels = [`k8s:app=${e.app ?? ''}`, `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${e.namespace}`, 'k8s:io.cilium.k8s.policy.cluster=default'];
    if (e.serviceAccount) labels.push(`k8s:io.cilium.k8s.policy.serviceaccount=${e.serviceAccount}`);
    labels.push(`k8s:io.kubernetes.pod.namespace=${e.namespace}`);
    return { ID: 100 + (e.identity % 3000), identity: e.identity, namespace: e.namespace, labels, ...(e.pod ? { pod_name: e.pod } : {}) };
  };
  const time = nanoTime(f.timeMs, f.srcPort * 131);
  const flow: Record<string, unknown> = {
    time,
    verdict: f.dropped ? 'DROPPED' : 'FORWARDED',
    ethernet: { source: '0a:58:0a:2a:00:01', destination: '0a:58:0a:2a:00:02' },
    IP: { source: f.src.ip, destination: f.dst.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: f.srcPort, destination_port: f.dstPort, flags: { SYN: true } } },
    source: endpoint(f.src),
    destination: endpoint(f.dst),
    Type: 'L3_L4',
    node_name: f.node,
    event_type: f.dropped ? { type: 1, sub_type: 133 } : { type: 4, sub_type: 0 },
    traffic_direction: f.dropped ? 'INGRESS' : 'EGRESS',
    is_reply: false,
    Summary: 'TCP Flags: SYN',
  };
  if (f.service) flow.destination_service = f.service;
  if (f.dropped) {
    flow.drop_reason = 133;
    flow.drop_reason_desc = 'POLICY_DENIED';
  } else {
    flow.trace_observation_point = 'TO_ENDPOINT';
  }
  return JSON.stringify({ flow, node_name: f.node, time });
}

/** A client sidecar's line for a call to a host outside the mesh (a ServiceEntry, TLS originated by the app). */
export function renderEgress(e: { timeMs: number; srcIp: string; srcPort: number; host: string; hostIp: string; status: number; flags: string; details: string; bytesIn: number; bytesOut: number; durationMs: number; requestId: string }): string {
  return JSON.stringify({
    start_time: iso(e.timeMs),
    method: null,
    path: null,
    protocol: null,
    response_code: e.status,
    response_flags: orDash(e.flags),
    response_code_details: orNull(e.details),
    connection_termination_details: null,
    upstream_transport_failure_reason: null,
    bytes_received: e.bytesIn,
    bytes_sent: e.bytesOut,
    duration: e.durationMs,
    request_id: orNull(e.requestId),
    authority: null,
    upstream_cluster: `outbound|443||${e.host}`,
    upstream_host: e.flags === '' ? `${e.hostIp}:443` : null,
    downstream_remote_address: `${e.srcIp}:${e.srcPort}`,
    downstream_local_address: `${e.hostIp}:443`,
    requested_server_name: e.host,
    upstream_local_uri_san: null,
    upstream_peer_uri_san: null,
    user_agent: null,
  });
}
