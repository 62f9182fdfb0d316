// The mesh-metrics source: scrapes Istio, Linkerd and Envoy metrics endpoints and turns the growth
// of their counters between two scrapes into aggregate events (`count` = how many requests,
// connections or handshakes the series gained). Meshes that log nothing still show who talks to
// whom, with which identity, over mTLS or not, and how often they are denied.
import { isIP } from 'node:net';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createError } from '../../core/errors.ts';
import { hostOfCluster, namespaceOfHost, portOfCluster, serviceOfHost } from '../identity.ts';
import { hasFailureFlag, parseResponseFlags } from '../parsers/envoy-flags.ts';
import { splitHostPort } from '../parsers/addresses.ts';
import { canonicalLinkerdIdentity, parseLinkerdIdentity } from '../parsers/linkerd.ts';
import { parseExposition, type MetricSample } from './exposition.ts';

/** One endpoint to scrape. */
export interface ScrapeTarget {
  /** Metrics URL, e.g. `http://10.0.0.5:15090/stats/prometheus` or `http://10.0.0.6:4191/metrics`. */
  readonly url: string;
  /** Time between two scrapes, in seconds. */
  readonly intervalSeconds: number;
}

export interface MetricsScraperOptions {
  readonly targets: readonly ScrapeTarget[];
  /** Receives the events of one scrape; a rejection keeps the old baseline, so the next scrape carries them. */
  readonly emit: (events: NormalizedEvent[]) => Promise<void>;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Clock in ms; event time of metric-derived events is the scrape time. @default Date.now */
  readonly now?: () => number;
  /** Longest wait for one scrape, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
  /** Largest metrics body read, in bytes. @default 33554432 */
  readonly maxBodyBytes?: number;
  /** Told about every failed scrape (unreachable target, bad status, emit failure). */
  readonly onError?: (url: string, error: Error) => void;
}

/** Counts since start, per scraper. */
export interface ScrapeStats {
  scrapes: number;
  failures: number;
  events: number;
  lastError: string;
}

export interface MetricsScraper {
  /** Scrapes every target now, then each on its own interval. */
  start(): void;
  /** Scrapes every target once and resolves when done (used by `start`, tests and one-shot runs). */
  scrapeOnce(): Promise<void>;
  stats(): Readonly<ScrapeStats>;
  /** Stops the timers and waits for scrapes in flight. */
  close(): Promise<void>;
}

// --- the pure part: which series count, and what their growth means -----------------------------

type Family =
  | 'istio_requests'
  | 'istio_tcp_opened'
  | 'istio_tcp_closed'
  | 'linkerd_request'
  | 'linkerd_response'
  | 'linkerd_http_authz_deny'
  | 'linkerd_tcp_authz_deny'
  | 'envoy_ssl';

const ENVOY_SSL = /^envoy_(listener|cluster)_(?:[a-z0-9_]*_)?ssl_(connection_error|handshake|fail_verify_[a-z_]+)(?:_total)?$/;

function familyOf(name: string): Family | undefined {
  switch (name) {
    case 'istio_requests_total':
      return 'istio_requests';
    case 'istio_tcp_connections_opened_total':
      return 'istio_tcp_opened';
    case 'istio_tcp_connections_closed_total':
      return 'istio_tcp_closed';
    case 'request_total':
      return 'linkerd_request';
    case 'response_total':
      return 'linkerd_response';
    case 'inbound_http_authz_deny_total':
      return 'linkerd_http_authz_deny';
    case 'inbound_tcp_authz_deny_total':
      return 'linkerd_tcp_authz_deny';
    default:
      return ENVOY_SSL.test(name) ? 'envoy_ssl' : undefined;
  }
}

/** Keeps only the counters the mesh-metrics source reads (the rest of a scrape is not held). */
export function selectMeshCounters(samples: readonly MetricSample[]): MetricSample[] {
  return samples.filter((s) => familyOf(s.name) !== undefined && Number.isFinite(s.value) && s.value >= 0);
}

/**
 * Keys of the Istio edges a destination proxy reports. A request is counted by both the client's
 * proxy (`reporter="source"`) and the server's (`reporter="destination"`); where the destination
 * reports an edge, its source series are left out so nothing is counted twice.
 */
export function collectDestinationEdges(samples: readonly MetricSample[]): Set<string> {
  const edges = new Set<string>();
  for (const s of samples) {
    const family = familyOf(s.name);
    if ((family === 'istio_requests' || family === 'istio_tcp_opened' || family === 'istio_tcp_closed') && s.labels.reporter === 'destination') {
      edges.add(istioEdgeKey(family, s.labels));
    }
  }
  return edges;
}

function istioEdgeKey(family: Family, labels: Readonly<Record<string, string>>): string {
  return [family, labels.source_workload, labels.source_workload_namespace, labels.destination_service].join('|');
}

export interface MeshDeltaOptions {
  /** Event time of the events (the scrape time), in ms. */
  readonly timeMs: number;
  /** The scraped URL: its host stands for the scraped workload where the labels do not name it. */
  readonly targetUrl?: string;
  /** Edges reported by a destination proxy on any target (see collectDestinationEdges). */
  readonly destinationEdges?: ReadonlySet<string>;
}

interface Delta {
  readonly sample: MetricSample;
  readonly family: Family;
  readonly delta: number;
}

/**
 * Turns the growth of mesh counters between two scrapes of one target into aggregate events.
 * No previous scrape: baseline only, no events. A counter lower than before was reset: its new
 * value is the growth. A series new since the previous scrape grew from zero.
 */
export function computeMeshMetricEvents(
  previous: readonly MetricSample[] | undefined,
  current: readonly MetricSample[],
  options: MeshDeltaOptions,
): NormalizedEvent[] {
  if (previous === undefined) return [];
  const before = new Map<string, number>();
  for (const s of previous) if (familyOf(s.name)) before.set(seriesKey(s), s.value);
  const edges = new Set(options.destinationEdges ?? []);
  for (const edge of collectDestinationEdges(current)) edges.add(edge);
  // response_total carries the outcome of the same requests request_total counts: prefer it.
  const hasResponses = current.some((s) => s.name === 'response_total');

  const deltas: Delta[] = [];
  for (const sample of current) {
    const family = familyOf(sample.name);
    if (family === undefined || !Number.isFinite(sample.value) || sample.value < 0) continue;
    if (family === 'linkerd_request' && hasResponses) continue;
    if (family.startsWith('istio_') && sample.labels.reporter === 'source' && edges.has(istioEdgeKey(family, sample.labels))) continue;
    const old = before.get(seriesKey(sample));
    const grown = old === undefined || sample.value < old ? sample.value : sample.value - old;
    const delta = Math.round(grown);
    if (delta >= 1) deltas.push({ sample, family, delta });
  }

  const target = targetAddress(options.targetUrl);
  const events: NormalizedEvent[] = [];
  for (const d of settleEnvoySsl(deltas)) {
    const event = toEvent(d, target);
    if (event) {
      event.time = options.timeMs;
      event.observed_time = options.timeMs;
      events.push(event);
    }
  }
  return events;
}

/**
 * Envoy counts every failed handshake in `ssl.connection_error`, the verification failures among
 * them also in `ssl.fail_verify_*`: keep the classified ones and only the unexplained remainder.
 */
function settleEnvoySsl(deltas: readonly Delta[]): Delta[] {
  const verifyFailures = new Map<string, number>();
  for (const d of deltas) {
    const m = d.family === 'envoy_ssl' ? ENVOY_SSL.exec(d.sample.name) : null;
    if (m && (m[2] as string).startsWith('fail_verify_')) {
      const key = `${m[1]}|${labelKey(d.sample.labels)}`;
      verifyFailures.set(key, (verifyFailures.get(key) ?? 0) + d.delta);
    }
  }
  const out: Delta[] = [];
  for (const d of deltas) {
    const m = d.family === 'envoy_ssl' ? ENVOY_SSL.exec(d.sample.name) : null;
    if (m && m[2] === 'connection_error') {
      const rest = d.delta - (verifyFailures.get(`${m[1]}|${labelKey(d.sample.labels)}`) ?? 0);
      if (rest >= 1) out.push({ ...d, delta: rest });
    } else {
      out.push(d);
    }
  }
  return out;
}

interface TargetAddress {
  readonly ip: string;
  readonly service: string;
  readonly namespace: string;
}

function targetAddress(url: string | undefined): TargetAddress {
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

function toEvent(d: Delta, target: TargetAddress): NormalizedEvent | undefined {
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

function labelKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

function seriesKey(sample: MetricSample): string {
  return `${sample.name}{${labelKey(sample.labels)}}`;
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

// --- the scraper -------------------------------------------------------------------------------------

const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=1,*/*;q=0.1';

interface TargetState {
  readonly target: ScrapeTarget;
  previous: MetricSample[] | undefined;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
}

/** Creates a scraper over `targets`; nothing runs until `start()` or `scrapeOnce()`. */
export function createMetricsScraper(options: MetricsScraperOptions): MetricsScraper {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  const states: TargetState[] = options.targets.map((target) => ({ target, previous: undefined, timer: undefined, running: undefined }));
  const destinationEdges = new Set<string>();
  const stats: ScrapeStats = { scrapes: 0, failures: 0, events: 0, lastError: '' };
  let closed = false;
  let started = false;

  async function scrapeTarget(state: TargetState): Promise<void> {
    const { url } = state.target;
    try {
      const response = await fetchImpl(url, { headers: { accept: ACCEPT }, signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw createError('INGEST_SCRAPE_FAILED', `${url} answered HTTP ${response.status}`);
      const declared = Number(response.headers.get('content-length') ?? 0);
      if (declared > maxBodyBytes) throw createError('INGEST_SCRAPE_FAILED', `${url} body of ${declared} bytes exceeds ${maxBodyBytes}`);
      const text = await response.text();
      if (text.length > maxBodyBytes) throw createError('INGEST_SCRAPE_FAILED', `${url} body exceeds ${maxBodyBytes} bytes`);
      const current = selectMeshCounters(parseExposition(text).samples);
      for (const edge of collectDestinationEdges(current)) destinationEdges.add(edge);
      const timeMs = now();
      const events = computeMeshMetricEvents(state.previous, current, { timeMs, targetUrl: url, destinationEdges });
      if (events.length > 0) await options.emit(events);
      // Only now: a failed emit keeps the old baseline, and the next scrape carries the growth.
      state.previous = current;
      stats.scrapes++;
      stats.events += events.length;
    } catch (cause) {
      stats.failures++;
      const error =
        cause instanceof Error && 'code' in cause && typeof cause.code === 'string' && cause.code.startsWith('ZTW_')
          ? cause
          : createError('INGEST_SCRAPE_FAILED', `${url}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      stats.lastError = error.message;
      options.onError?.(url, error);
    }
  }

  function runTarget(state: TargetState): Promise<void> {
    if (!state.running) {
      state.running = scrapeTarget(state).finally(() => {
        state.running = undefined;
      });
    }
    return state.running;
  }

  function schedule(state: TargetState): void {
    if (closed) return;
    state.timer = setTimeout(() => {
      void runTarget(state).then(() => schedule(state));
    }, Math.max(0.05, state.target.intervalSeconds) * 1000);
    state.timer.unref();
  }

  return {
    start() {
      if (started || closed) return;
      started = true;
      for (const state of states) void runTarget(state).then(() => schedule(state));
    },
    async scrapeOnce() {
      await Promise.all(states.map((state) => runTarget(state)));
    },
    stats() {
      return { ...stats };
    },
    async close() {
      closed = true;
      for (const state of states) clearTimeout(state.timer);
      await Promise.all(states.map((state) => state.running));
    },
  };
}
