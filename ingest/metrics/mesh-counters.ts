// Which mesh counters ztwatch reads (Istio requests and TCP connections, Linkerd requests and
// authorization denials, Envoy TLS failures) and their growth between two scrapes of one target.
import type { NormalizedEvent } from '../../core/event.ts';
import type { MetricSample } from './exposition.ts';
import { targetAddress, toEvent } from './mesh-events.ts';

/** The kinds of series read, each with its own meaning. */
export type Family =
  | 'istio_requests'
  | 'istio_tcp_opened'
  | 'istio_tcp_closed'
  | 'linkerd_request'
  | 'linkerd_response'
  | 'linkerd_http_authz_deny'
  | 'linkerd_tcp_authz_deny'
  | 'envoy_ssl';

/** Envoy's TLS counters (listener and cluster side, per cause). */
export const ENVOY_SSL = /^envoy_(listener|cluster)_(?:[a-z0-9_]*_)?ssl_(connection_error|handshake|fail_verify_[a-z_]+)(?:_total)?$/;

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

/** When the events happened and what else is known about the scraped target. */
export interface MeshDeltaOptions {
  /** Event time of the events (the scrape time), in ms. */
  readonly timeMs: number;
  /** The scraped URL: its host stands for the scraped workload where the labels do not name it. */
  readonly targetUrl?: string;
  /** Edges reported by a destination proxy on any target (see collectDestinationEdges). */
  readonly destinationEdges?: ReadonlySet<string>;
}

/** One series' growth between two scrapes. */
export interface Delta {
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

function labelKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

function seriesKey(sample: MetricSample): string {
  return `${sample.name}{${labelKey(sample.labels)}}`;
}
