import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { NormalizedEventSchema, type NormalizedEvent } from '../../../core/event.ts';
import { parseExposition, type MetricSample } from '../../../ingest/metrics/exposition.ts';
import { collectDestinationEdges, computeMeshMetricEvents, selectMeshCounters } from '../../../ingest/metrics/mesh-counters.ts';
import { FAILURE_FLAGS } from '../../../ingest/parsers/envoy-flags.ts';
import { parseEnvoy } from '../../../ingest/parsers/envoy.ts';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const SCRAPE_MS = Date.UTC(2025, 0, 1, 12, 0, 0);

/** The fixture's samples, and a later copy where the i-th sample grew by i + 1 (so `count` names the series). */
function twoSnapshots(file: string): { before: MetricSample[]; after: MetricSample[] } {
  const before = parseExposition(read(file)).samples;
  return { before, after: before.map((s, i) => ({ ...s, value: s.value + i + 1 })) };
}

function byOrdinal(events: NormalizedEvent[]): Map<number, NormalizedEvent> {
  return new Map(events.map((e) => [e.count - 1, e]));
}

type Row = Partial<NormalizedEvent> | null;

function checkTable(file: string, table: Row[], targetUrl?: string): void {
  const { before, after } = twoSnapshots(file);
  expect(before).toHaveLength(table.length);
  const events = computeMeshMetricEvents(before, after, { timeMs: SCRAPE_MS, ...(targetUrl ? { targetUrl } : {}) });
  const found = byOrdinal(events);
  expect(found.size).toBe(events.length);
  table.forEach((row, i) => {
    const event = found.get(i);
    if (row === null) {
      expect(event, `sample ${i} (${before[i]?.name}) must not count`).toBeUndefined();
      return;
    }
    expect(event, `sample ${i} (${before[i]?.name})`).toBeDefined();
    expect(Value.Check(NormalizedEventSchema, event)).toBe(true);
    expect(event).toMatchObject({ source: 'mesh_metrics', time: SCRAPE_MS, observed_time: SCRAPE_MS, count: i + 1, event_id: '', ...row });
    expect(event?.raw).toContain(`${before[i]?.name}{`);
    expect(event?.raw).toContain(`+${i + 1}`);
  });
}

const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

describe('computeMeshMetricEvents on fixtures', () => {
  it('istio/ztunnel-tcp-metrics.prom: opened connections per edge, source copies of destination-reported edges left out', () => {
    const tcp = { protocol: 'tcp', mtls: 'yes', decision: 'allow', status: 0, reporter: 'inbound' } as const;
    checkTable('istio/ztunnel-tcp-metrics.prom', [
      null, // istio_build (gauge)
      null, // istio_xds_message_total
      null,
      null, // istio_xds_message_bytes_total
      null,
      {
        ...tcp,
        src_identity: spiffe('default', 'bookinfo-productpage'),
        src_workload: 'productpage-v1',
        src_namespace: 'default',
        dst_identity: spiffe('default', 'bookinfo-details'),
        dst_service: 'details',
        dst_namespace: 'default',
        authority: 'details.default.svc.cluster.local',
      },
      { ...tcp, src_workload: 'reviews-v3', src_identity: spiffe('default', 'bookinfo-reviews'), dst_service: 'ratings', dst_identity: spiffe('default', 'bookinfo-ratings') },
      { ...tcp, src_workload: 'productpage-v1', dst_service: 'reviews', dst_identity: spiffe('default', 'bookinfo-reviews') },
      { ...tcp, src_workload: 'reviews-v2', dst_service: 'ratings' },
      null, // reporter="source" for productpage → reviews, which the destination reports too
      { ...tcp, src_workload: 'traffic-gen', src_identity: spiffe('default', 'default'), dst_service: 'productpage', dst_identity: spiffe('default', 'bookinfo-productpage') },
      null, // reporter="source" copy of the traffic-gen → productpage edge
      null, // closed normally: counted when it opened
      null,
    ]);
  });

  it('istio/sidecar-http-metrics-excerpt.prom: histogram sums and counts are not request counters', () => {
    checkTable('istio/sidecar-http-metrics-excerpt.prom', [null, null, null, null]);
  });

  it('istio/requests-total-labelset.prom: every label read from its place', () => {
    checkTable('istio/requests-total-labelset.prom', [
      { reporter: 'unknown', src_identity: '1', src_workload: '1', dst_identity: '1', dst_service: '1', dst_namespace: '1', authority: '1', protocol: '1', status: 1, response_flags: ['1'], mtls: 'unknown', decision: 'allow' },
    ]);
  });

  it('istio/requests-total-query-result.txt: a destination-reported mTLS request series', () => {
    checkTable('istio/requests-total-query-result.txt', [
      {
        reporter: 'inbound',
        src_identity: spiffe('default', 'bookinfo-productpage'),
        src_workload: 'productpage-v1',
        src_namespace: 'default',
        dst_identity: spiffe('default', 'bookinfo-details'),
        dst_service: 'details',
        dst_namespace: 'default',
        protocol: 'http',
        status: 200,
        response_flags: [],
        mtls: 'yes',
        decision: 'allow',
      },
    ]);
  });

  it('linkerd/proxy-metrics.prom: request_total per identity and TLS state; other families do not count', () => {
    const target = 'http://10.42.0.21:4191/metrics';
    const inbound = { reporter: 'inbound', protocol: 'http', decision: 'unknown' } as const;
    const fromLinkerd = (sa: string) => ({ ...inbound, mtls: 'yes', src_identity: spiffe('linkerd', sa), src_namespace: 'linkerd' }) as const;
    const fromEmojivoto = (sa: string) => ({ ...inbound, mtls: 'yes', src_identity: spiffe('emojivoto', sa), src_namespace: 'emojivoto', dst_service: 'linkerd-destination' }) as const;
    const table: Row[] = [
      { ...inbound, mtls: 'no', src_identity: '', dst_service: '', dst_ip: '10.42.0.21' },
      { ...fromLinkerd('linkerd-identity'), dst_service: 'linkerd-destination', dst_namespace: 'linkerd', dst_port: 8086, authority: 'linkerd-destination.linkerd.svc.cluster.local:8086' },
      {
        reporter: 'outbound',
        mtls: 'yes',
        dst_identity: spiffe('linkerd', 'linkerd-prometheus'),
        dst_service: 'linkerd-prometheus',
        dst_namespace: 'linkerd',
        dst_port: 9090,
        src_ip: '10.42.0.21',
      },
      { ...fromLinkerd('linkerd-prometheus'), dst_service: 'linkerd-destination' },
      { ...fromLinkerd('linkerd-web'), dst_service: 'linkerd-destination' },
      { ...fromLinkerd('linkerd-web'), dst_service: 'linkerd-controller-api', dst_port: 8085 },
      { reporter: 'outbound', mtls: 'no', dst_service: '', dst_identity: '' },
      fromEmojivoto('default'),
      fromEmojivoto('web'),
      fromEmojivoto('emoji'),
      fromEmojivoto('voting'),
      { ...fromLinkerd('linkerd-grafana'), dst_service: 'linkerd-destination' },
      // route_response_total (7), tcp_* (24), control_* (3): not request counters of the data plane
      ...Array<Row>(34).fill(null),
    ];
    checkTable('linkerd/proxy-metrics.prom', table, target);
  });
});

describe('computeMeshMetricEvents rules', () => {
  const series = (name: string, labels: Record<string, string>, value: number): MetricSample => ({ name, labels, value });

  it('the first scrape is a baseline; resets, new series and unchanged series', () => {
    const a = series('istio_requests_total', { reporter: 'destination', response_code: '200', destination_service_name: 'a' }, 100);
    const b = series('istio_requests_total', { reporter: 'destination', response_code: '200', destination_service_name: 'b' }, 50);
    const c = series('istio_requests_total', { reporter: 'destination', response_code: '200', destination_service_name: 'c' }, 7);
    expect(computeMeshMetricEvents(undefined, [a, b], { timeMs: SCRAPE_MS })).toEqual([]);
    const events = computeMeshMetricEvents([a, b], [{ ...a, value: 30 }, b, c], { timeMs: SCRAPE_MS });
    // a went down (the proxy restarted): its new value is the growth; b did not move; c is new.
    expect(events.map((e) => [e.dst_service, e.count])).toEqual([
      ['a', 30],
      ['c', 7],
    ]);
    expect(computeMeshMetricEvents([a], [{ ...a, value: Number.NaN }], { timeMs: SCRAPE_MS })).toEqual([]);
  });

  it('counts a source-reported edge when no destination reports it, and honours edges seen on other targets', () => {
    const labels = { reporter: 'source', source_workload: 'job', source_workload_namespace: 'batch', destination_service: 'api.prod.svc.cluster.local', destination_service_name: 'api', response_code: '200' };
    const before = [series('istio_requests_total', labels, 10)];
    const after = [series('istio_requests_total', labels, 15)];
    const alone = computeMeshMetricEvents(before, after, { timeMs: SCRAPE_MS });
    expect(alone).toHaveLength(1);
    expect(alone[0]).toMatchObject({ reporter: 'outbound', count: 5, mtls: 'unknown' });
    const serverSide = [series('istio_requests_total', { ...labels, reporter: 'destination' }, 0)];
    const edges = collectDestinationEdges(serverSide);
    expect(computeMeshMetricEvents(before, after, { timeMs: SCRAPE_MS, destinationEdges: edges })).toEqual([]);
  });

  it('reads denials and failures from Istio labels', () => {
    const base = { reporter: 'destination', destination_service_name: 'api', connection_security_policy: 'none' };
    const rows: Array<[Record<string, string>, string, string]> = [
      [{ response_code: '403', response_flags: '-' }, 'deny', 'http_403'],
      [{ response_code: '403', response_flags: 'UAEX' }, 'deny', 'UAEX'],
      [{ response_code: '503', response_flags: 'UF,URX' }, 'error', 'UF,URX'],
      [{ response_code: '200', grpc_response_status: '7' }, 'deny', 'http_200'],
      [{ response_code: '200', response_flags: '-' }, 'allow', ''],
      // A 401 asks for credentials (mostly the application's own login): not a policy denial.
      [{ response_code: '401', response_flags: '-' }, 'allow', ''],
      [{ response_code: '200', grpc_response_status: '16' }, 'allow', ''],
      [{ response_code: '401', response_flags: 'UAEX' }, 'deny', 'UAEX'],
      [{ response_code: '429', response_flags: 'RL' }, 'error', 'RL'],
    ];
    for (const [labels, decision, reason] of rows) {
      const [event] = computeMeshMetricEvents([], [series('istio_requests_total', { ...base, ...labels }, 1)], { timeMs: SCRAPE_MS });
      expect([event?.decision, event?.decision_reason, event?.mtls], JSON.stringify(labels)).toEqual([decision, reason, 'no']);
    }
  });

  it('calls the same response flags failures as the Envoy access-log parser (one list, FAILURE_FLAGS)', () => {
    const base = { reporter: 'destination', destination_service_name: 'api', connection_security_policy: 'none', response_code: '200' };
    const flagged = [...FAILURE_FLAGS, 'DC', 'DR', 'DI', 'RFCF'];
    for (const flag of flagged) {
      const [metric] = computeMeshMetricEvents([], [series('istio_requests_total', { ...base, response_flags: flag }, 1)], { timeMs: SCRAPE_MS });
      const line = JSON.stringify({ start_time: '2025-01-01T00:00:00Z', method: 'GET', path: '/', response_code: 200, response_flags: flag });
      const log = parseEnvoy(line, SCRAPE_MS);
      const failed = FAILURE_FLAGS.has(flag);
      expect([flag, metric?.decision], 'metrics').toEqual([flag, failed ? 'error' : 'allow']);
      expect([flag, log.ok && log.event.decision === 'error'], 'access log').toEqual([flag, failed]);
    }
  });

  it('counts closed TCP connections only when they failed', () => {
    const { before, after } = twoSnapshots('istio/ztunnel-tcp-metrics.prom');
    const failed = after.map((s, i) => (i === 12 ? { ...s, labels: { ...s.labels, response_flags: 'UF,URX' } } : s));
    const events = byOrdinal(computeMeshMetricEvents(before, failed, { timeMs: SCRAPE_MS }));
    // A new label set is a new series: its whole value is the growth.
    const closed = [...events.values()].find((e) => e.response_flags.length > 0);
    expect(closed).toMatchObject({ reporter: 'outbound', dst_service: 'details', decision: 'error', decision_reason: 'UF,URX', response_flags: ['UF', 'URX'], count: (before[12]?.value ?? 0) + 13 });
  });

  it('prefers Linkerd response_total (it carries the outcome) over request_total', () => {
    // Label sets as in linkerd/website proxy-metrics.md; values made up.
    const inbound = { authority: 'web.emojivoto.svc.cluster.local:8080', direction: 'inbound', tls: 'true', client_id: 'vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local' };
    const text = (n: number) =>
      [
        `request_total{${labelText(inbound)}} ${n * 3}`,
        `response_total{${labelText({ ...inbound, status_code: '200', classification: 'success' })}} ${n}`,
        `response_total{${labelText({ ...inbound, status_code: '500', classification: 'failure' })}} ${n}`,
        `response_total{${labelText({ ...inbound, status_code: '403', classification: 'failure' })}} ${n}`,
      ].join('\n');
    const before = selectMeshCounters(parseExposition(text(10)).samples);
    const after = selectMeshCounters(parseExposition(text(12)).samples);
    const events = computeMeshMetricEvents(before, after, { timeMs: SCRAPE_MS });
    expect(events.map((e) => [e.status, e.decision, e.decision_reason, e.count])).toEqual([
      [200, 'allow', '', 2],
      [500, 'error', 'classification_failure', 2],
      [403, 'deny', 'http_403', 2],
    ]);
    expect(events[0]).toMatchObject({ src_identity: spiffe('emojivoto', 'vote-bot'), dst_service: 'web', dst_namespace: 'emojivoto', dst_port: 8080, mtls: 'yes' });
  });

  it('reads Linkerd authorization denials', () => {
    // Label names from linkerd2-proxy PRs #1237/#1269/#1774 (no public exposition sample exists).
    const labels = { target_addr: '10.42.0.9:8080', srv_kind: 'server', srv_name: 'voting-grpc', route_kind: 'default', route_name: 'default', tls: 'no_identity', client_id: '' };
    const before = [series('inbound_http_authz_deny_total', labels, 4)];
    const after = [series('inbound_http_authz_deny_total', labels, 9), series('inbound_tcp_authz_deny_total', { target_addr: '0.0.0.0:6379', srv_name: 'redis' }, 2)];
    const [http, tcp] = computeMeshMetricEvents(before, after, { timeMs: SCRAPE_MS, targetUrl: 'http://10.42.0.9:4191/metrics' });
    expect(http).toMatchObject({ decision: 'deny', status: 403, protocol: 'http', count: 5, dst_ip: '10.42.0.9', dst_port: 8080, mtls: 'no', decision_reason: 'server=server:voting-grpc route=default:default' });
    expect(tcp).toMatchObject({ decision: 'deny', status: 0, protocol: 'tcp', count: 2, dst_ip: '10.42.0.9', dst_port: 6379, decision_reason: 'server=redis' });
  });

  it('reads Envoy TLS counters, without counting verification failures twice', () => {
    // Envoy /stats/prometheus names for listener.<addr>.ssl.* and cluster.<name>.ssl.* (values made up).
    const listener = { envoy_listener_address: '0.0.0.0_15006' };
    const cluster = { cluster_name: 'outbound|9080||details.default.svc.cluster.local' };
    const snapshot = (n: number): MetricSample[] => [
      series('envoy_listener_ssl_handshake', listener, 100 * n),
      series('envoy_listener_ssl_connection_error', listener, 10 * n),
      series('envoy_listener_ssl_fail_verify_no_cert', listener, 3 * n),
      series('envoy_listener_ssl_fail_verify_error', listener, 2 * n),
      series('envoy_cluster_ssl_connection_error', cluster, 4 * n),
      series('envoy_cluster_ssl_fail_verify_san', cluster, 4 * n),
      series('envoy_listener_ssl_ciphers_TLS_AES_128_GCM_SHA256', listener, 100 * n),
    ];
    const events = computeMeshMetricEvents(snapshot(1), snapshot(2), { timeMs: SCRAPE_MS, targetUrl: 'http://10.1.2.3:15090/stats/prometheus' });
    expect(events.map((e) => [e.reporter, e.decision, e.tls_failure, e.decision_reason, e.count])).toEqual([
      ['inbound', 'allow', '', '', 100],
      // 10 failed handshakes, 5 of them explained by the verification counters below.
      ['inbound', 'error', 'SSL_CONNECTION_ERROR', 'ssl.connection_error', 5],
      ['inbound', 'error', 'PEER_DID_NOT_RETURN_A_CERTIFICATE', 'ssl.fail_verify_no_cert', 3],
      ['inbound', 'error', 'CERTIFICATE_VERIFY_FAILED', 'ssl.fail_verify_error', 2],
      ['outbound', 'error', 'CERTIFICATE_VERIFY_FAILED', 'ssl.fail_verify_san', 4],
    ]);
    expect(events[0]).toMatchObject({ protocol: 'tls', dst_ip: '10.1.2.3', dst_port: 15006 });
    expect(events[4]).toMatchObject({ src_ip: '10.1.2.3', dst_service: 'details', dst_namespace: 'default', dst_port: 9080 });
  });
});

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
}
