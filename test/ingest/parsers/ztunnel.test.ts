// ztunnel access logs: the record of ../shared/fixtures/istio/ztunnel-access.log is parsed and
// compared with its expected fields. The other files of that folder (`.prom` scrapes and a pasted
// Prometheus query result) are metrics, read by the mesh-metrics parser, not by this one.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NormalizedEvent, ParseResult } from '../../../core/event.ts';
import { parseZtunnel } from '../../../ingest/parsers/ztunnel.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { expectParsedEvent } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/istio/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

function fixtureLine(): string {
  const { records } = splitRecords(readFileSync(new URL('ztunnel-access.log', FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 });
  expect(records).toHaveLength(1);
  return records[0] as string;
}

function expectEvent(result: ParseResult, expected: Partial<NormalizedEvent>, raw: string): NormalizedEvent {
  return expectParsedEvent(result, raw, { source: 'ztunnel' }, expected);
}

const REVIEWS = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';

describe('ztunnel-access.log', () => {
  it('reads the policy rejection of the PR example (columns separated by spaces, no time column)', () => {
    const line = fixtureLine();
    expectEvent(parseZtunnel(line, OBSERVED), {
      time: OBSERVED, reporter: 'inbound', decision: 'deny', decision_reason: 'allow policies exist, but none allowed',
      src_identity: REVIEWS, src_workload: 'reviews-v1', src_namespace: 'default', src_ip: '10.244.1.6', src_port: 42020,
      dst_identity: PRODUCTPAGE, dst_service: 'productpage', dst_namespace: 'default', dst_ip: '10.244.1.9', dst_port: 9080,
      mtls: 'yes', bytes_in: 0, bytes_out: 0, duration_ms: 0, tls_failure: '', status: 0,
    }, line);
  });
});

describe('ztunnel formats and quirks', () => {
  it('reads the usual tab-separated line with its RFC 3339 time, unquoted values, allowed connection', () => {
    const line =
      '2024-07-23T14:21:03.450051Z\tinfo\taccess\tconnection complete\tsrc.addr=10.12.0.8:37522 src.workload=sleep-bc9998558-bhv5z src.namespace=my-ambient src.identity="spiffe://cluster.local/ns/my-ambient/sa/sleep" dst.addr=10.12.0.9:15008 dst.hbone_addr=10.12.0.9:5000 dst.service=helloworld.my-ambient.svc.cluster.local dst.workload=helloworld-v1-77489ccb5f-pjbq5 dst.namespace=my-ambient dst.identity="spiffe://cluster.local/ns/my-ambient/sa/default" direction="outbound" bytes_sent=67 bytes_recv=225 duration="12ms"';
    expectEvent(parseZtunnel(line, OBSERVED), {
      time: Date.parse('2024-07-23T14:21:03.450Z'), reporter: 'outbound', decision: 'allow', src_workload: 'sleep', src_namespace: 'my-ambient',
      dst_service: 'helloworld', dst_namespace: 'my-ambient', dst_port: 5000, bytes_in: 225, bytes_out: 67, duration_ms: 12, mtls: 'yes',
    }, line);
  });

  it('names the policy of an explicit deny, and sees a plaintext connection reaching the pod', () => {
    const line =
      '2025-10-30T22:23:01.119792Z error access connection complete src.addr=10.217.0.2:44480 dst.addr=10.217.0.248:8080 dst.workload="golang-ex-6d957754b-nfbfv" dst.namespace="test" direction="inbound" bytes_sent=0 bytes_recv=0 duration="0ms" error="connection closed due to policy rejection: explicitly denied by: istio-system/istio_converted_static_strict"';
    expectEvent(parseZtunnel(line, OBSERVED), {
      decision: 'deny', decision_reason: 'istio-system/istio_converted_static_strict', mtls: 'no', src_identity: '',
      dst_service: 'golang-ex', dst_namespace: 'test', dst_port: 8080,
    }, line);
  });

  it('reads the JSON log format (LOG_FORMAT=json)', () => {
    const line = JSON.stringify({
      level: 'error', time: '2024-10-19T01:39:58.302311Z', scope: 'access', message: 'connection complete', 'src.addr': '10.244.1.13:35262',
      'src.workload': 'curl-deny', 'src.namespace': 'default', 'src.identity': 'spiffe://cluster.local/ns/default/sa/curl-deny',
      'dst.addr': '10.244.1.12:15008', 'dst.hbone_addr': '10.244.1.12:8080', 'dst.service': 'handson.default.svc.cluster.local',
      'dst.workload': 'handson-blue-5cb87cdfc8-24npj', 'dst.namespace': 'default', 'dst.identity': 'spiffe://cluster.local/ns/default/sa/handson-blue',
      direction: 'inbound', bytes_sent: 0, bytes_recv: 0, duration: '0ms', error: 'connection closed due to policy rejection',
    });
    expectEvent(parseZtunnel(line, OBSERVED), {
      time: Date.parse('2024-10-19T01:39:58.302Z'), decision: 'deny', decision_reason: 'policy_rejection', src_workload: 'curl-deny',
      dst_service: 'handson', dst_port: 8080, mtls: 'yes', reporter: 'inbound',
    }, line);
  });

  it('reads HTTP fields of L7 access lines', () => {
    const line =
      '2025-03-19T17:32:46.810472Z\tinfo\taccess\trequest complete\tsrc.addr=10.0.71.117:42468 src.identity="spiffe://cluster.local/ns/apps/sa/http" dst.addr=10.0.65.144:15008 dst.hbone_addr=10.0.65.144:8080 dst.service="httpbin.httpbin.svc.cluster.local" direction="inbound" method=GET path="/headers/123" protocol=HTTP1 response_code=503 host="www.example.com:8080" user_agent="curl/8.7.1" request_id="4c5fc679-c5cd-4721-8735-51bcdbea6e0f" duration="0ms"';
    expectEvent(parseZtunnel(line, OBSERVED), {
      method: 'GET', path: '/headers/123', route: '/headers/{id}', protocol: 'HTTP1', status: 503, decision: 'error',
      authority: 'www.example.com:8080', request_id: '4c5fc679-c5cd-4721-8735-51bcdbea6e0f',
    }, line);
  });

  it('turns TLS errors into tls_failure and keeps mtls unknown', () => {
    const line =
      '2024-07-23T14:21:03Z\twarn\taccess\tconnection complete\tsrc.addr=10.12.0.8:37522 src.identity="spiffe://cluster.local/ns/a/sa/b" dst.addr=10.12.0.9:15008 direction="outbound" error="connection failed: tls handshake error: invalid peer certificate: Expired"';
    expectEvent(parseZtunnel(line, OBSERVED), { tls_failure: 'CERTIFICATE_EXPIRED', mtls: 'unknown', decision: 'error', decision_reason: 'CERTIFICATE_EXPIRED' }, line);
    const other = line.replace('tls handshake error: invalid peer certificate: Expired', 'Connection refused (os error 111)');
    expectEvent(parseZtunnel(other, OBSERVED), { tls_failure: '', decision: 'error', decision_reason: 'connection failed: Connection refused (os error 111)' }, other);
  });

  it('skips `connection opened` (the complete line follows) and other scopes; rejects bad times', () => {
    expect(parseZtunnel('2026-08-19T22:32:58.367972Z\tdebug\taccess\tconnection opened\tsrc.addr=10.244.0.7:40461 dst.addr=172.17.0.3:8443 direction="outbound"', OBSERVED))
      .toEqual({ ok: false, reason: 'ztunnel_connection_opened' });
    expect(parseZtunnel('2024-07-23T14:21:03Z\tinfo\txds\tconnected to xds server', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_not_access' });
    expect(parseZtunnel('2024-99-23T14:21:03Z\tinfo\taccess\tconnection complete\tsrc.addr=1.2.3.4:5', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_bad_timestamp' });
    expect(parseZtunnel('hello world', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_unrecognized' });
    expect(parseZtunnel('{"scope":"access","message":"connection opened"}', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_connection_opened' });
    expect(parseZtunnel('{"scope":"access","message":"connection complete","time":"soon"}', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_bad_timestamp' });
    expect(parseZtunnel('{"scope":', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_bad_json' });
    expect(parseZtunnel('# note', OBSERVED)).toEqual({ ok: false, reason: 'ztunnel_comment' });
  });
});
