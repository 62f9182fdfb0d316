// Hubble flows: every record of ../shared/fixtures/hubble is parsed and compared with its expected
// fields; README quirks (wrapper or not, reply flows, string latency, field-masked exporter output,
// numeric drop reasons, policy names) each have a test.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NormalizedEvent, ParseResult } from '../../../core/event.ts';
import { parseHubble } from '../../../ingest/parsers/hubble.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { expectParsedEvent } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/hubble/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

function readRecords(name: string): string[] {
  const { records, rejected } = splitRecords(readFileSync(new URL(name, FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 });
  expect(rejected).toEqual([]);
  return records;
}

function expectEvent(result: ParseResult, expected: Partial<NormalizedEvent>, raw: string): NormalizedEvent {
  return expectParsedEvent(result, raw, { source: 'hubble', reporter: 'network' }, expected);
}

function checkFile(file: string, table: Array<Partial<NormalizedEvent>>): NormalizedEvent[] {
  const records = readRecords(file);
  expect(records.length).toBe(table.length);
  return records.map((record, i) => expectEvent(parseHubble(record, OBSERVED), table[i] as Partial<NormalizedEvent>, record));
}

const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const ms = (iso: string): number => Date.parse(iso);

const PROMETHEUS = { src_identity: spiffe('istio-system', 'prometheus'), src_workload: 'prometheus', src_namespace: 'istio-system' };
const HOST = { src_identity: '', src_workload: '', src_namespace: '', src_ip: '10.0.2.1' };

describe('hubble fixtures, record by record', () => {
  it('dropped-policy-denied-exporter.ndjson: field-masked exporter output, POLICY_DENIED and INVALID_SOURCE_IP', () => {
    checkFile('dropped-policy-denied-exporter.ndjson', [
      {
        time: ms('2023-08-21T12:12:13.517Z'), decision: 'error', decision_reason: 'INVALID_SOURCE_IP', protocol: 'ICMPv6',
        src_ip: 'fe80::64d8:8aff:fe72:fc14', dst_ip: 'ff02::2', src_port: 0, dst_port: 0, src_workload: '', dst_service: '',
      },
      {
        // No labels (field mask): no service account, so no SPIFFE identity — workload and namespace only.
        time: ms('2023-08-21T12:12:18.510Z'), decision: 'deny', decision_reason: 'POLICY_DENIED', protocol: 'TCP',
        src_ip: '10.244.1.60', src_port: 44916, dst_ip: '10.244.1.5', dst_port: 80, src_workload: 'xwing', src_namespace: 'default',
        src_identity: '', dst_identity: '', dst_service: 'deathstar', dst_namespace: 'default',
      },
    ]);
  });

  it('dropped-printer-test.jsonpb.ndjson: bare flow without the wrapper; drop reason from event_type.sub_type 133', () => {
    checkFile('dropped-printer-test.jsonpb.ndjson', [
      {
        time: 1_234_567, decision: 'deny', decision_reason: 'POLICY_DENIED', protocol: 'TCP', src_ip: '1.1.1.1', src_port: 31793,
        dst_ip: '2.2.2.2', dst_port: 8080, src_identity: '', dst_service: '',
      },
    ]);
  });

  it('http-l7-200-response-excerpt.ndjson: an L7 response, turned around so the client is src', () => {
    checkFile('http-l7-200-response-excerpt.ndjson', [
      {
        ...PROMETHEUS, time: ms('2021-10-04T14:28:43.062Z'), src_ip: '10.156.2.7', src_port: 36482, dst_ip: '10.156.2.3', dst_port: 10054,
        dst_identity: spiffe('kube-system', 'kube-dns'), dst_service: 'kube-dns', dst_namespace: 'kube-system', method: 'GET',
        path: '/metrics', route: '/metrics', authority: '10.156.2.3:10054', protocol: 'HTTP/1.1', status: 200, duration_ms: 2,
        request_id: '47041ff4-d130-42f2-9b08-2b81abe422ab', decision: 'allow',
      },
    ]);
  });

  it('http-l7-flows.ndjson: requests to reserved:world peers and 503 responses', () => {
    const request = { ...PROMETHEUS, method: 'GET', path: '/metrics', protocol: 'HTTP/1.1', status: 0, duration_ms: 0, decision: 'allow' as const };
    checkFile('http-l7-flows.ndjson', [
      {
        ...request, time: ms('2021-10-04T14:28:38.735Z'), dst_ip: '10.128.0.4', dst_port: 9990, dst_identity: '', dst_service: '',
        dst_namespace: '', request_id: '49116c2c-3017-4237-97e7-1ff4e16bfe28',
      },
      {
        ...request, time: ms('2021-10-04T14:28:39.629Z'), dst_ip: '10.156.3.6', dst_service: 'kube-dns', dst_namespace: 'kube-system',
        dst_identity: '', request_id: 'da8726d1-5c99-486f-8e5a-bdba0a329355',
      },
      {
        ...request, time: ms('2021-10-04T14:28:39.808Z'), src_port: 57468, dst_ip: '10.156.1.2', dst_port: 9253,
        dst_service: 'node-local-dns', request_id: 'e69069f2-fa66-4826-9746-f4b16c89559b',
      },
      {
        // The response to the previous request: same connection once turned around; 503 is an error.
        ...request, time: ms('2021-10-04T14:28:40.808Z'), src_ip: '10.156.2.7', src_port: 57468, dst_ip: '10.156.1.2', dst_port: 9253,
        dst_service: 'node-local-dns', status: 503, decision: 'error', duration_ms: 999, request_id: 'e69069f2-fa66-4826-9746-f4b16c89559b',
      },
      {
        ...request, time: ms('2021-10-04T14:28:41.706Z'), src_port: 52506, dst_ip: '10.156.0.2', dst_port: 9253, dst_service: 'node-local-dns',
        status: 503, decision: 'error', duration_ms: 4138, request_id: '93aa85f1-7962-47fc-a0ec-ba6e806f9614',
      },
    ]);
  });

  it('l3l4-forwarded-flows.ndjson: TCP flows; both directions of a connection give the same edge', () => {
    const reviews = { dst_identity: spiffe('bookinfo', 'bookinfo-reviews'), dst_service: 'reviews', dst_namespace: 'bookinfo', dst_ip: '10.0.2.16' };
    const telemetry = {
      src_identity: spiffe('istio-system', 'istio-mixer-service-account'), src_workload: 'istio-telemetry', src_namespace: 'istio-system',
      src_ip: '10.0.0.53', src_port: 55574, dst_identity: spiffe('istio-system', 'istio-galley-service-account'), dst_service: 'galley',
      dst_ip: '10.0.2.14', dst_port: 9901,
    };
    const exporter = {
      src_identity: spiffe('kube-system', 'event-exporter-sa'), src_workload: 'event-exporter-gke', src_ip: '10.0.2.13', src_port: 36804,
      dst_ip: '35.246.31.234', dst_port: 443, dst_service: '', dst_identity: '',
    };
    const kubeDns = { ...HOST, src_port: 50908, dst_identity: spiffe('kube-system', 'kube-dns'), dst_service: 'kube-dns', dst_ip: '10.0.2.12', dst_port: 10054 };
    const events = checkFile('l3l4-forwarded-flows.ndjson', [
      { ...HOST, ...reviews, src_port: 42044, dst_port: 15020, protocol: 'TCP', decision: 'allow', time: ms('2021-06-16T16:52:13.136Z') },
      { ...HOST, ...reviews, src_port: 42044, dst_port: 15020 },
      { ...PROMETHEUS, ...reviews, src_ip: '10.0.1.4', src_port: 58698, dst_port: 15090 },
      { ...PROMETHEUS, ...reviews, src_ip: '10.0.1.4', src_port: 58698, dst_port: 15090 },
      telemetry,
      telemetry,
      exporter,
      exporter,
      kubeDns,
      kubeDns,
    ]);
    expect(events.every((e) => e.decision === 'allow' && e.protocol === 'TCP')).toBe(true);
  });

  it('policy-verdict-redirected-excerpt.ndjson: policy verdicts (REDIRECTED) with numeric policy_match_type', () => {
    const ratings = { src_identity: spiffe('bookinfo', 'bookinfo-ratings'), src_workload: 'ratings-v1', src_namespace: 'bookinfo', src_ip: '10.244.0.206' };
    const productpage = { src_identity: spiffe('bookinfo', 'bookinfo-productpage'), src_workload: 'productpage-v1', src_namespace: 'bookinfo', src_ip: '10.244.0.177' };
    const coredns = { dst_identity: spiffe('kube-system', 'coredns'), dst_service: 'kube-dns', dst_namespace: 'kube-system', dst_port: 53, protocol: 'UDP' };
    const toProductpage = { dst_identity: spiffe('bookinfo', 'bookinfo-productpage'), dst_service: 'productpage', dst_port: 9080, protocol: 'TCP' };
    const toDetails = { dst_identity: spiffe('bookinfo', 'bookinfo-details'), dst_service: 'details', dst_port: 9080, protocol: 'TCP' };
    checkFile('policy-verdict-redirected-excerpt.ndjson', [
      { ...ratings, ...coredns, decision: 'allow', decision_reason: 'match:L3_L4', dst_ip: '10.244.1.227', time: ms('2021-11-10T10:40:56.871Z') },
      { ...ratings, ...toProductpage, decision: 'allow', decision_reason: 'match:L4_ONLY', dst_ip: '10.244.0.177' },
      { ...productpage, ...coredns, decision_reason: 'match:L3_L4', dst_ip: '10.244.1.80' },
      { ...productpage, ...toDetails, decision_reason: 'match:L4_ONLY', dst_ip: '10.244.1.193' },
      { ...ratings, ...toProductpage, decision_reason: 'match:L4_ONLY' },
      { ...productpage, ...toDetails, decision_reason: 'match:L4_ONLY' },
    ]);
  });
});

describe('hubble README quirks', () => {
  const dropped = (): Record<string, unknown> => JSON.parse(readRecords('dropped-policy-denied-exporter.ndjson')[1] as string) as Record<string, unknown>;

  it('names the denying policies when the flow lists them (newer Cilium *_denied_by / *_allowed_by)', () => {
    const record = dropped();
    (record.flow as Record<string, unknown>).ingress_denied_by = [{ name: 'deny-xwing', namespace: 'default', kind: 'CiliumNetworkPolicy' }];
    const line = JSON.stringify(record);
    expectEvent(parseHubble(line, OBSERVED), { decision: 'deny', decision_reason: 'default/deny-xwing' }, line);
    const allowed = JSON.parse(readRecords('l3l4-forwarded-flows.ndjson')[2] as string) as { flow: Record<string, unknown> };
    allowed.flow.ingress_allowed_by = [{ name: 'allow-scrapes', namespace: 'bookinfo' }, { name: 'cluster-wide' }];
    const allowLine = JSON.stringify(allowed);
    expectEvent(parseHubble(allowLine, OBSERVED), { decision: 'allow', decision_reason: 'bookinfo/allow-scrapes,cluster-wide' }, allowLine);
  });

  it('reads the deprecated numeric drop_reason, and AUDIT / ERROR verdicts', () => {
    const record = dropped();
    const flow = record.flow as Record<string, unknown>;
    delete flow.drop_reason_desc;
    flow.drop_reason = 181;
    const deny = JSON.stringify(record);
    expectEvent(parseHubble(deny, OBSERVED), { decision: 'deny', decision_reason: 'POLICY_DENY' }, deny);
    flow.drop_reason = 160;
    const other = JSON.stringify(record);
    expectEvent(parseHubble(other, OBSERVED), { decision: 'error', decision_reason: 'DROP_REASON_160' }, other);
    flow.verdict = 'AUDIT';
    const audit = JSON.stringify(record);
    expectEvent(parseHubble(audit, OBSERVED), { decision: 'allow', decision_reason: 'AUDIT' }, audit);
    flow.verdict = 'ERROR';
    const error = JSON.stringify(record);
    expectEvent(parseHubble(error, OBSERVED), { decision: 'error' }, error);
  });

  it('takes the time from the wrapper when the flow has none, and rejects flows without any', () => {
    const record = dropped();
    delete (record.flow as Record<string, unknown>).time;
    const line = JSON.stringify(record);
    expectEvent(parseHubble(line, OBSERVED), { time: ms('2023-08-21T12:12:18.510Z') }, line);
    delete record.time;
    expect(parseHubble(JSON.stringify(record), OBSERVED)).toEqual({ ok: false, reason: 'hubble_bad_timestamp' });
  });

  it('reads the service record, DNS names and Cilium mutual authentication when present', () => {
    const record = JSON.parse(readRecords('l3l4-forwarded-flows.ndjson')[7] as string) as { flow: Record<string, unknown> };
    record.flow.destination_names = ['api.github.com'];
    record.flow.auth_type = 'SPIRE';
    const line = JSON.stringify(record);
    expectEvent(parseHubble(line, OBSERVED), { dst_service: 'api.github.com', mtls: 'yes' }, line);
    const svc = JSON.parse(readRecords('l3l4-forwarded-flows.ndjson')[2] as string) as { flow: Record<string, unknown> };
    svc.flow.destination_service = { name: 'reviews-metrics', namespace: 'bookinfo' };
    const svcLine = JSON.stringify(svc);
    expectEvent(parseHubble(svcLine, OBSERVED), { dst_service: 'reviews-metrics', dst_namespace: 'bookinfo' }, svcLine);
  });

  it('refuses records that are not flows', () => {
    expect(parseHubble('{"node_status":{"state":"NODE_CONNECTED"},"time":"2023-08-21T12:12:13Z"}', OBSERVED)).toEqual({ ok: false, reason: 'hubble_no_flow' });
    expect(parseHubble('{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":3}}', OBSERVED)).toEqual({ ok: false, reason: 'hubble_no_flow' });
    expect(parseHubble('{"flow":', OBSERVED)).toEqual({ ok: false, reason: 'hubble_bad_json' });
    expect(parseHubble('# comment', OBSERVED)).toEqual({ ok: false, reason: 'hubble_comment' });
    expect(parseHubble('{"flow":{"verdict":"FORWARDED","time":"later"}}', OBSERVED)).toEqual({ ok: false, reason: 'hubble_bad_timestamp' });
  });
});
