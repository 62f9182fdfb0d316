// What the growth of one mesh counter means, as an aggregate event: who talked to whom, with which
// identity, over mTLS or not, allowed or denied (`count` = how much the series grew).
import { isIP } from 'node:net';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { hostOfCluster, namespaceOfHost, portOfCluster, serviceOfHost } from '../identity.ts';
import { hasFailureFlag, parseResponseFlags } from '../parsers/envoy-flags.ts';
import { splitHostPort } from '../parsers/addresses.ts';
import { canonicalLinkerdIdentity, parseLinkerdIdentity } from '../parsers/linkerd.ts';
import type { MetricSample } from './exposition.ts';
import { ENVOY_SSL, type Delta, type Family } from './mesh-counters.ts';

/** What the scraped URL says about the workload behind it. */
export interface TargetAddress {
  readonly ip: string;
  readonly service: string;
  readonly namespace: string;
}

/** The scraped workload's IP, or service and namespace from a Kubernetes service host. */
export function targetAddress(url: string | undefined): TargetAddress {
  if (!url) return { ip: '', service: '', namespace: '' };
  let host = '';
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return { ip: '', service: '', namespace: '' };
  }
  if (isIP(host)) return { ip: host, service: '', namespace: '' };
  // Only a Kubernetes service name says which workload answers; other host names say nothing.
  const namespace = namespaceOfHost(host);
  return namespace === '' ? { ip: '', service: '', namespace: '' } : { ip: '', service: serviceOfHost(host), namespace };
}

/** The aggregate event for one series' growth; undefined when the series adds nothing. */
export function toEvent(d: Delta, target: TargetAddress): NormalizedEvent | undefined {
  const event = createEmptyEvent('mesh_metrics', 0);
  event.count = d.delta;
  const labels = d.sample.labels;
  switch (d.family) {
    case 'istio_requests':
    case 'istio_tcp_opened':
    case 'istio_tcp_closed':
      if (!fillIstio(event, d.family, labels)) return undefined;
      break;
    case 'linkerd_request':
    case 'linkerd_response':
      fillLinkerdTraffic(event, d.family, labels, target);
      break;
    case 'linkerd_http_authz_deny':
    case 'linkerd_tcp_authz_deny':
      fillLinkerdDeny(event, d.family, labels, target);
      break;
    case 'envoy_ssl':
      fillEnvoySsl(event, d.sample.name, labels, target);
      break;
  }
  event.raw = describeSeries(d.sample, d.delta);
  return event;
}

/** False when the series adds nothing (a normal close: the connection was counted when it opened). */
function fillIstio(event: NormalizedEvent, family: Family, labels: Readonly<Record<string, string>>): boolean {
  const flags = parseResponseFlags(known(labels.response_flags));
  if (family === 'istio_tcp_closed' && flags.length === 0) return false;
  const reporter = labels.reporter;
  event.reporter = reporter === 'destination' ? 'inbound' : reporter === 'source' ? 'outbound' : reporter === 'waypoint' ? 'gateway' : 'unknown';
  event.src_identity = known(labels.source_principal);
  event.src_workload = known(labels.source_workload);
  event.src_namespace = known(labels.source_workload_namespace);
  event.dst_identity = known(labels.destination_principal);
  event.dst_service = known(labels.destination_service_name) || known(labels.destination_canonical_service);
  event.dst_namespace = known(labels.destination_service_namespace) || known(labels.destination_workload_namespace);
  event.authority = known(labels.destination_service);
  event.protocol = known(labels.request_protocol) || (family === 'istio_requests' ? 'http' : 'tcp');
  event.response_flags = flags;
  const policy = labels.connection_security_policy;
  // Only the destination knows whether the connection it accepted was mutual TLS.
  event.mtls = policy === 'mutual_tls' ? 'yes' : policy === 'none' ? 'no' : 'unknown';
  if (family === 'istio_requests') {
    const status = Number(labels.response_code);
    event.status = Number.isInteger(status) && status >= 0 && status <= 999 ? status : 0;
    const grpc = known(labels.grpc_response_status);
    // 403 (gRPC 7, PERMISSION_DENIED) is the sidecar's RBAC answer and UAEX its ext_authz denial. A
    // 401 (gRPC 16, UNAUTHENTICATED) asks for credentials, mostly the application's own: no denial.
    if (event.status === 403 || flags.includes('UAEX') || grpc === '7') {
      event.decision = 'deny';
      event.decision_reason = flags.length > 0 ? flags.join(',') : event.status > 0 ? `http_${event.status}` : `grpc_${grpc}`;
    } else if (event.status >= 500 || event.status === 0 || hasFailureFlag(flags)) {
      event.decision = 'error';
      event.decision_reason = flags.join(',');
    } else {
      event.decision = 'allow';
    }
  } else if (hasFailureFlag(flags)) {
    event.decision = 'error';
    event.decision_reason = flags.join(',');
  } else {
    event.decision = 'allow';
    event.decision_reason = flags.join(',');
  }
  return true;
}

function fillLinkerdTraffic(event: NormalizedEvent, family: Family, labels: Readonly<Record<string, string>>, target: TargetAddress): void {
  const inbound = labels.direction === 'inbound';
  event.reporter = inbound ? 'inbound' : labels.direction === 'outbound' ? 'outbound' : 'unknown';
  event.protocol = 'http';
  event.mtls = linkerdTls(labels.tls);
  const authority = labels.authority ?? '';
  event.authority = authority;
  event.dst_port = splitHostPort(authority).port;
  event.dst_service = labels.dst_service ?? serviceOfHost(authority);
  event.dst_namespace = labels.dst_namespace ?? namespaceOfHost(authority);
  if (inbound) {
    const client = parseLinkerdIdentity(labels.client_id ?? '');
    event.src_identity = client?.uri ?? canonicalLinkerdIdentity(labels.client_id ?? '');
    event.src_namespace = client?.namespace ?? '';
    // Prometheus relabelling names the scraped pod; otherwise the target's address stands for it.
    event.dst_service ||= labels.deployment ?? target.service;
    event.dst_namespace ||= labels.namespace ?? target.namespace;
    if (event.dst_service === '') event.dst_ip = target.ip;
  } else {
    event.dst_identity = canonicalLinkerdIdentity(labels.server_id ?? '');
    event.src_workload = labels.deployment ?? target.service;
    event.src_namespace = labels.namespace ?? target.namespace;
    event.src_ip = target.ip;
  }
  if (family === 'linkerd_response') {
    const status = Number(labels.status_code ?? 0);
    event.status = Number.isInteger(status) && status >= 0 && status <= 999 ? status : 0;
    const grpc = labels.grpc_status_code;
    if (event.status === 401 || event.status === 403 || grpc === '7' || grpc === '16') {
      event.decision = 'deny';
      event.decision_reason = grpc === '7' || grpc === '16' ? `grpc_${grpc}` : `http_${event.status}`;
    } else if (labels.classification === 'failure') {
      event.decision = 'error';
      event.decision_reason = 'classification_failure';
    } else if (labels.classification === 'success') {
      event.decision = 'allow';
    }
  }
}

function fillLinkerdDeny(event: NormalizedEvent, family: Family, labels: Readonly<Record<string, string>>, target: TargetAddress): void {
  event.reporter = 'inbound';
  event.protocol = family === 'linkerd_http_authz_deny' ? 'http' : 'tcp';
  event.status = family === 'linkerd_http_authz_deny' ? 403 : 0;
  event.decision = 'deny';
  event.mtls = linkerdTls(labels.tls);
  const client = parseLinkerdIdentity(labels.client_id ?? '');
  event.src_identity = client?.uri ?? canonicalLinkerdIdentity(labels.client_id ?? '');
  event.src_namespace = client?.namespace ?? '';
  const addr = /^(.*):(\d{1,5})$/.exec(labels.target_addr ?? '');
  const ip = (addr?.[1] ?? '').replace(/^\[|\]$/g, '');
  event.dst_port = Number(addr?.[2] ?? 0) <= 65535 ? Number(addr?.[2] ?? 0) : 0;
  event.dst_ip = isIP(ip) && ip !== '0.0.0.0' && ip !== '::' ? ip : target.ip;
  event.dst_service = labels.deployment ?? target.service;
  event.dst_namespace = labels.namespace ?? target.namespace;
  const server = labels.srv_name ? `server=${labels.srv_kind ? `${labels.srv_kind}:` : ''}${labels.srv_name}` : '';
  const route = labels.route_name ? `route=${labels.route_kind ? `${labels.route_kind}:` : ''}${labels.route_name}` : '';
  event.decision_reason = [server, route].filter(Boolean).join(' ') || 'unauthorized';
}

const VERIFY_FAILURES: Readonly<Record<string, string>> = {
  fail_verify_no_cert: 'PEER_DID_NOT_RETURN_A_CERTIFICATE',
  fail_verify_error: 'CERTIFICATE_VERIFY_FAILED',
  fail_verify_san: 'CERTIFICATE_VERIFY_FAILED',
  fail_verify_cert_hash: 'CERTIFICATE_VERIFY_FAILED',
};

function fillEnvoySsl(event: NormalizedEvent, name: string, labels: Readonly<Record<string, string>>, target: TargetAddress): void {
  const m = ENVOY_SSL.exec(name);
  const side = m?.[1] ?? '';
  const stat = m?.[2] ?? '';
  event.protocol = 'tls';
  if (side === 'listener') {
    // A listener accepted (or refused) the handshake: the scraped proxy is the server.
    event.reporter = 'inbound';
    const port = Number(/_(\d{1,5})$/.exec(labels.envoy_listener_address ?? '')?.[1] ?? 0);
    event.dst_port = port <= 65535 ? port : 0;
    event.dst_ip = target.ip;
    event.dst_service = target.service;
    event.dst_namespace = target.namespace;
  } else {
    event.reporter = 'outbound';
    event.src_ip = target.ip;
    event.src_workload = target.service;
    event.src_namespace = target.namespace;
    const cluster = labels.cluster_name ?? labels.envoy_cluster_name ?? '';
    // Istio cluster names: `outbound|9080||details.default.svc.cluster.local`; others are kept whole.
    const host = hostOfCluster(cluster) || cluster;
    event.dst_service = serviceOfHost(host) || host;
    event.dst_namespace = namespaceOfHost(host);
    event.dst_port = portOfCluster(cluster);
    event.authority = host;
  }
  if (stat === 'handshake') {
    event.decision = 'allow';
  } else {
    event.decision = 'error';
    event.decision_reason = `ssl.${stat}`;
    event.tls_failure = VERIFY_FAILURES[stat] ?? (stat.startsWith('fail_verify_') ? 'CERTIFICATE_VERIFY_FAILED' : 'SSL_CONNECTION_ERROR');
  }
}

function linkerdTls(tls: string | undefined): NormalizedEvent['mtls'] {
  if (tls === 'true') return 'yes';
  if (tls === 'no_identity' || tls === 'disabled' || tls === 'false') return 'no';
  return 'unknown';
}

/** Istio writes `unknown` for a label it could not fill. */
function known(value: string | undefined): string {
  return value === undefined || value === 'unknown' || value === '-' ? '' : value;
}

/** Labels worth keeping in `raw`; the rest (versions, canonical revisions, clusters) repeat what is mapped. */
const RAW_LABELS = new Set([
  'reporter',
  'source_principal',
  'source_workload',
  'source_workload_namespace',
  'destination_principal',
  'destination_service',
  'destination_workload',
  'response_code',
  'response_flags',
  'grpc_response_status',
  'connection_security_policy',
  'request_protocol',
  'direction',
  'authority',
  'tls',
  'no_tls_reason',
  'client_id',
  'server_id',
  'dst_service',
  'dst_namespace',
  'status_code',
  'grpc_status_code',
  'classification',
  'target_addr',
  'srv_kind',
  'srv_name',
  'route_kind',
  'route_name',
  'envoy_listener_address',
  'cluster_name',
  'envoy_cluster_name',
]);

function describeSeries(sample: MetricSample, delta: number): string {
  const labels = Object.keys(sample.labels)
    .filter((k) => RAW_LABELS.has(k))
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`)
    .join(',');
  return `${sample.name}{${labels}} +${delta} (now ${sample.value})`;
}
