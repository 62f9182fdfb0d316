// Envoy / Istio access logs: every record of ../shared/fixtures/envoy is parsed and compared with
// its expected normalized fields (table below), and every quirk listed in that folder's README has
// its own test. Lines starting with `#` are the fixtures' annotations and must come back as
// `envoy_comment` rejections.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { repairEvent, type NormalizedEvent, type ParseResult } from '../../../core/event.ts';
import { parseEnvoy, parseIstio } from '../../../ingest/parsers/envoy.ts';
import { parseEnvoyJson } from '../../../ingest/parsers/envoy-json.ts';
import { parseEnvoyText } from '../../../ingest/parsers/envoy-text.ts';
import { ENVOY_KEYS } from '../../../ingest/parsers/envoy-keys.ts';
import { applyEnvoyDecision, rbacPolicyOf } from '../../../ingest/parsers/envoy-decision.ts';
import { parseResponseFlags } from '../../../ingest/parsers/envoy-flags.ts';
import { normalizeTlsFailure } from '../../../ingest/parsers/tls-failures.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { expectParsedEvent, type Expected } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/envoy/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

function readRecords(name: string): string[] {
  const { records, rejected } = splitRecords(readFileSync(new URL(name, FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 });
  expect(rejected).toEqual([]);
  return records;
}

function fixtureLine(name: string, index: number): string {
  const line = readRecords(name).filter((r) => !r.startsWith('#'))[index];
  if (line === undefined) throw new Error(`${name} has no record ${index}`);
  return line;
}

function expectEvent(result: ParseResult, expected: Partial<NormalizedEvent>, raw: string, source = 'envoy'): NormalizedEvent {
  return expectParsedEvent(result, raw, { source, observed_time: OBSERVED }, expected);
}

/** Parses every record of `file`: `#` lines must be comments, the others match `table` in order. */
function checkFile(file: string, table: Expected[]): void {
  const records = readRecords(file);
  const data = records.filter((r) => !r.startsWith('#'));
  expect(data.length).toBe(table.length);
  let next = 0;
  for (const record of records) {
    const result = parseEnvoy(record, OBSERVED);
    if (record.startsWith('#')) {
      expect(result).toEqual({ ok: false, reason: 'envoy_comment' });
      continue;
    }
    const expected = table[next++] as Expected;
    if ('reject' in expected) expect(result, record).toEqual({ ok: false, reason: expected.reject });
    else expectEvent(result, expected, record);
  }
}

const ms = (iso: string): number => Date.parse(iso);

describe('envoy fixtures, record by record', () => {
  it('default-format.log: Envoy default text format', () => {
    checkFile('default-format.log', [
      {
        time: ms('2016-04-15T20:17:00.310Z'), method: 'POST', path: '/api/v1/locations', route: '/api/v1/locations', protocol: 'HTTP/2',
        status: 204, response_flags: [], bytes_in: 154, bytes_out: 0, duration_ms: 226, request_id: 'cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2',
        authority: 'locations', dst_service: 'locations', dst_namespace: '', dst_ip: '10.0.2.1', dst_port: 80,
        // No peer address in this format: the first X-Forwarded-For hop is the client.
        src_ip: '10.0.35.28', src_port: 0, decision: 'allow', reporter: 'unknown', mtls: 'unknown', src_identity: '',
      },
    ]);
  });

  it('istio-default-format.log: Istio text format, client and server lines', () => {
    const common = { method: 'GET', protocol: 'HTTP/1.1', src_identity: '', dst_identity: '', tls_failure: '' };
    checkFile('istio-default-format.log', [
      {
        ...common, time: ms('2020-11-25T21:26:18.409Z'), path: '/status/418', route: '/status/{id}', status: 418, decision: 'unknown',
        reporter: 'outbound', dst_service: 'httpbin', dst_namespace: 'foo', dst_ip: '10.44.1.27', dst_port: 80, src_ip: '10.44.1.23',
        src_port: 46520, bytes_in: 0, bytes_out: 135, duration_ms: 4, mtls: 'unknown', authority: 'httpbin:8000',
        request_id: '84961386-6d84-929d-98bd-c5aee93b5c88',
      },
      {
        // Server side: the Istio mTLS SNI names the service and says the request came over mTLS.
        ...common, time: ms('2020-11-25T21:26:18.409Z'), status: 418, decision: 'unknown', reporter: 'inbound', dst_service: 'httpbin',
        dst_namespace: 'foo', dst_ip: '10.44.1.27', dst_port: 80, src_ip: '10.44.1.23', src_port: 37652, duration_ms: 3, mtls: 'yes',
      },
      {
        ...common, time: ms('2022-04-27T15:02:20.472Z'), path: '/foobar', protocol: 'HTTP/2', status: 503, response_flags: ['UH'],
        decision: 'error', decision_reason: 'UH', reporter: 'outbound', dst_service: 'httpbin', dst_namespace: 'httpbin',
        dst_ip: '10.16.0.20', dst_port: 8443, src_ip: 'X.X.X.X', src_port: 36009, authority: 'httpbin.tetrate.io',
      },
      {
        ...common, time: ms('2022-04-28T10:58:59.087Z'), path: '/', status: 502, response_flags: [], decision: 'error', decision_reason: '',
        reporter: 'outbound', dst_service: 'faulty-http', dst_namespace: 'faulty-http', dst_ip: '10.16.0.40', dst_port: 8090,
      },
      {
        ...common, time: ms('2022-04-28T10:58:59.089Z'), status: 502, response_flags: ['UPE'], decision: 'error', decision_reason: 'UPE',
        reporter: 'inbound', mtls: 'yes', dst_service: 'faulty-http', dst_namespace: 'faulty-http', src_ip: 'X.X.X.X', src_port: 0,
      },
      {
        // The gateway only relays the 403 (via_upstream): the denying hop logs the reason itself.
        ...common, time: ms('2025-07-22T17:55:52.084Z'), status: 403, decision: 'unknown', decision_reason: '', reporter: 'outbound',
        dst_service: 'nginx-svc', dst_namespace: 'default', dst_ip: '10.244.1.9', dst_port: 80, authority: '172.18.10.10',
      },
      {
        ...common, time: ms('2025-07-22T17:55:52.085Z'), status: 403, decision: 'deny', decision_reason: 'none', reporter: 'inbound',
        mtls: 'yes', dst_service: 'nginx-svc', dst_namespace: 'default', dst_ip: '10.244.1.9', dst_port: 80, src_ip: '10.244.1.1', src_port: 0,
      },
    ]);
  });

  it('edge-cases.log: cut, CSV-damaged, custom, prefixed, 2018 and pre-1.9 lines', () => {
    checkFile('edge-cases.log', [
      { reject: 'envoy_bad_timestamp' }, // (1) time prefix cut off
      { reject: 'envoy_bad_timestamp' }, // (2) CSV export: quotes doubled, time gone
      {
        // (3) shortened custom format with the transport failure reason in the last quoted field
        time: ms('2022-05-10T16:27:29.232Z'), method: 'POST', path: '/apis/hbtd/hmi/v1/heartbeat', route: '/apis/hbtd/hmi/v1/heartbeat',
        status: 503, response_flags: ['UF', 'URX'], decision: 'error', decision_reason: 'UF,URX',
        tls_failure: 'SECRET_NOT_SUPPLIED_BY_SDS', mtls: 'unknown',
      },
      {
        // (4) `kubectl logs`/stern prefix before an Envoy default-format line
        time: ms('2018-03-19T12:09:25.501Z'), method: 'POST', path: '/practices.Practices/Get', status: 404, response_flags: ['NR'],
        decision: 'error', decision_reason: 'NR', authority: 'practices:80', dst_service: 'practices',
        request_id: '37195340-e4ba-90e7-b950-bae919a8e817',
      },
      { time: ms('2018-03-19T12:09:38.345Z'), status: 404, decision: 'error', request_id: '22c72547-1e88-9014-92dd-8d83fd3ba2ae' },
      { reject: 'envoy_bad_timestamp' }, // (5) 2018 line without its time
      {
        // (6) Istio 1.3–1.8 layout: one quoted Mixer field after the flags; 503 UAEX = authz backend failed
        time: ms('2022-06-24T14:16:27.229Z'), method: 'POST', status: 503, response_flags: ['UAEX'], decision: 'error',
        decision_reason: 'UAEX', bytes_in: 131, bytes_out: 0, duration_ms: 30, request_id: '1797b0d3-56f0-4674-8cf2-a8a61f9adaea',
        authority: 'api-gw-service-nmn.local', dst_service: 'api-gw-service-nmn.local', dst_ip: '10.40.0.29', dst_port: 443,
        src_ip: '10.34.0.0', src_port: 15995, reporter: 'unknown',
      },
    ]);
  });

  it('json-format.ndjson: untyped JSON (strings, "-"), TCP proxy entries', () => {
    const tcp = { method: '', path: '', route: '', protocol: '', authority: '', status: 0 };
    checkFile('json-format.ndjson', [
      { reject: 'envoy_bad_timestamp' }, // the doc's custom-format example has no start_time
      {
        ...tcp, time: ms('2019-09-17T09:21:42.869Z'), reporter: 'outbound', dst_service: 'keycloak-headless', dst_namespace: 'our_ns',
        dst_ip: 'REDACTED_IP1', dst_port: 7600, src_ip: 'REDACTED_IP2', src_port: 45621, response_flags: ['UF', 'URX'],
        decision: 'error', decision_reason: 'UF,URX', duration_ms: 10002, bytes_in: 0, bytes_out: 0, mtls: 'unknown',
      },
      {
        ...tcp, time: ms('2019-09-17T09:17:16.420Z'), reporter: 'inbound', dst_service: '', dst_ip: 'REDACTED_IP2', dst_port: 15090,
        src_ip: '10.150.17.125', src_port: 52366, response_flags: [], decision: 'allow', bytes_in: 5120, bytes_out: 759108,
        duration_ms: 288127, mtls: 'no',
      },
      {
        ...tcp, time: ms('2019-09-17T08:55:01.420Z'), reporter: 'inbound', src_port: 40302, decision: 'allow', bytes_in: 2048,
        bytes_out: 303518, duration_ms: 109727, mtls: 'no',
      },
      {
        ...tcp, time: ms('2019-09-17T08:57:20.669Z'), reporter: 'outbound', src_port: 46505, decision: 'error', decision_reason: 'UF,URX',
        duration_ms: 10006,
      },
    ]);
  });

  it('json-typed.ndjson: typed JSON (numbers, null) and an untyped Kafka TCP line', () => {
    checkFile('json-typed.ndjson', [
      {
        time: ms('2023-11-23T02:30:43.053Z'), method: 'GET', status: 200, decision: 'allow', reporter: 'outbound',
        path: '/sapi/tenant/v3.0/system/brand/categories?brand_category_ids=1006592999063017728&brand_sw=ON&brand_category_rel_catalog_sw=ON&tenant_required=true&catalog_required=true',
        route: '/sapi/tenant/v3.0/system/brand/categories', dst_service: 'sapi-tenant-part', dst_namespace: 'sopei-biz',
        dst_ip: '10.42.4.107', dst_port: 34021, src_ip: '10.42.0.84', src_port: 47918, bytes_in: 0, bytes_out: 1819807, duration_ms: 66,
        request_id: 'dfdafa8f-10c3-44dc-ad6c-7a49760f499e', authority: 'sapi-tenant-part:34021', mtls: 'unknown', response_flags: [],
      },
      {
        time: ms('2020-09-03T05:30:35.613Z'), method: '', status: 0, decision: 'allow', reporter: 'outbound',
        dst_service: 'infra-kafka-headless', dst_namespace: 'infra', dst_ip: '172.18.3.16', dst_port: 9092, src_ip: '172.18.3.18',
        src_port: 50450, bytes_in: 30, bytes_out: 276, duration_ms: 540218,
      },
    ]);
  });

  it('json-typed-pretty.json: one pretty-printed typed record, joined by splitRecords', () => {
    const [record] = readRecords('json-typed-pretty.json');
    expect(readRecords('json-typed-pretty.json')).toHaveLength(1);
    // The record is the compact form of the pretty object.
    expect(JSON.parse(record as string)).toEqual(JSON.parse(readFileSync(new URL('json-typed-pretty.json', FIXTURES), 'utf8')));
    checkFile('json-typed-pretty.json', [
      {
        time: ms('2021-09-12T05:44:48.369Z'), method: 'GET', path: '/abc', route: '/abc', status: 404, decision: 'unknown',
        reporter: 'outbound', dst_service: 'frontend', dst_namespace: 'online-boutique', dst_ip: '172.17.0.16', dst_port: 8080,
        src_ip: '172.17.0.1', src_port: 35535, bytes_out: 19, duration_ms: 1, request_id: '4ba825ec-7955-9e3d-9dc7-942c38c517f0',
        authority: '10.103.20.194',
      },
    ]);
  });

  it('rbac-denials.log: the two views of one denial; details and debug lines are not access logs', () => {
    checkFile('rbac-denials.log', [
      { status: 403, decision: 'unknown', reporter: 'outbound', request_id: '020e467a-c234-4a8f-b9f4-ca156ca06578' },
      { status: 403, decision: 'deny', decision_reason: 'none', reporter: 'inbound', request_id: '020e467a-c234-4a8f-b9f4-ca156ca06578' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
    ]);
  });

  it('tls-failures.txt: details strings, listener-log pairs, debug lines and reply bodies are not access-log lines', () => {
    checkFile('tls-failures.txt', [
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
      // The listener log format of the test has no %START_TIME%: read, but cannot be placed in time.
      { reject: 'envoy_bad_timestamp' },
      { reject: 'envoy_bad_timestamp' },
      { reject: 'envoy_bad_timestamp' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_app_log' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
      { reject: 'envoy_unrecognized' },
    ]);
  });
});

describe('envoy README quirks', () => {
  it('normalizes both TLS failure encodings and every failure string in tls-failures.txt', () => {
    const lines = readRecords('tls-failures.txt').filter((r) => !r.startsWith('#'));
    expect(lines.map((l) => normalizeTlsFailure(l))).toEqual([
      'CERTIFICATE_VERIFY_FAILED',
      'TLSV1_ALERT_UNKNOWN_CA',
      'SSLV3_ALERT_BAD_CERTIFICATE',
      'NO_COMMON_SIGNATURE_ALGORITHMS',
      'NO_SHARED_CIPHER',
      '',
      'TLSV1_ALERT_UNKNOWN_CA',
      // The peer's `verify cert failed: X509_verify_cert: …` line says it in prose.
      'CERTIFICATE_VERIFY_FAILED',
      'CERTIFICATE_VERIFY_FAILED',
      'CERTIFICATE_VERIFY_FAILED',
      'CLIENTHELLO_TLSEXT',
      'CONNECTION_RESET_BY_PEER',
    ]);
  });

  it('reads a TLS failure in %RESPONSE_CODE_DETAILS% (old encoding) on an access-log line', () => {
    const details = readRecords('tls-failures.txt').filter((r) => !r.startsWith('#'))[0] as string;
    const line = fixtureLine('istio-default-format.log', 3).replace('502 - via_upstream', `503 UF,URX ${details}`);
    expectEvent(parseEnvoy(line, OBSERVED), {
      status: 503, tls_failure: 'CERTIFICATE_VERIFY_FAILED', mtls: 'unknown', decision: 'error', decision_reason: 'UF,URX', response_flags: ['UF', 'URX'],
    }, line);
  });

  it('reads a `KEY=%OPERATOR%` listener log with DOWNSTREAM_TRANSPORT_FAILURE_REASON once it carries START_TIME', () => {
    const pair = readRecords('tls-failures.txt').find((r) => r.startsWith('DOWNSTREAM_TRANSPORT_FAILURE_REASON=TLS')) as string;
    const line = `START_TIME=2024-05-01T10:00:00.000Z DOWNSTREAM_REMOTE_ADDRESS=10.0.0.7:51234 ${pair}`;
    expectEvent(parseEnvoy(line, OBSERVED), {
      time: ms('2024-05-01T10:00:00.000Z'), tls_failure: 'NO_COMMON_SIGNATURE_ALGORITHMS', mtls: 'unknown', decision: 'error',
      decision_reason: 'NO_COMMON_SIGNATURE_ALGORITHMS', src_ip: '10.0.0.7', src_port: 51234,
    }, line);
  });

  it('keeps mtls unknown (not "no") when a handshake failed, even on an inbound plaintext-looking line', () => {
    const line = JSON.stringify({
      start_time: '2024-05-01T10:00:00.000Z', upstream_cluster: 'inbound|8080||', requested_server_name: null, downstream_tls_version: null,
      downstream_transport_failure_reason: 'TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end',
      response_code: 0, response_flags: 'DC',
    });
    expectEvent(parseEnvoy(line, OBSERVED), { tls_failure: 'CERTIFICATE_VERIFY_FAILED', mtls: 'unknown', decision: 'error' }, line);
  });

  it('takes the policy out of rbac_access_denied_matched_policy[…], sanitised ids and Istio names alike', () => {
    const details = readRecords('rbac-denials.log').filter((r) => r.startsWith('rbac_access_denied'));
    expect(details.map(rbacPolicyOf)).toEqual(['abdfxy', 'ab_df__xy', 'a______y']);
    expect(rbacPolicyOf('rbac_access_denied_matched_policy[ns[foo]-policy[bar]-rule[0]]')).toBe('ns[foo]-policy[bar]-rule[0]');
    expect(rbacPolicyOf('via_upstream')).toBe('');
    const line = fixtureLine('istio-default-format.log', 6).replace('[none]', '[ns[default]-policy[deny-curl]-rule[0]]');
    expectEvent(parseEnvoy(line, OBSERVED), { decision: 'deny', decision_reason: 'ns[default]-policy[deny-curl]-rule[0]' }, line);
  });

  it('reads a network RBAC denial from %CONNECTION_TERMINATION_DETAILS% on a TCP line', () => {
    const line = JSON.stringify({
      start_time: '2024-05-01T10:00:00.000Z', upstream_cluster: 'inbound|9092||', response_code: 0, response_flags: '-',
      connection_termination_details: 'rbac_access_denied_matched_policy[ns[kafka]-policy[deny-all]-rule[0]]', requested_server_name: 'outbound_.9092_._.kafka.kafka.svc.cluster.local',
    });
    expectEvent(parseEnvoy(line, OBSERVED), { decision: 'deny', decision_reason: 'ns[kafka]-policy[deny-all]-rule[0]', dst_service: 'kafka', mtls: 'yes' }, line);
  });

  it('maps UAEX to deny on 403 and to error on 5xx (the authorization service itself failed)', () => {
    const line = fixtureLine('istio-default-format.log', 6).replace('403 - rbac_access_denied_matched_policy[none]', '403 UAEX ext_authz_denied');
    expectEvent(parseEnvoy(line, OBSERVED), { decision: 'deny', decision_reason: 'UAEX', response_flags: ['UAEX'] }, line);
    const failed = fixtureLine('istio-default-format.log', 6).replace('403 - rbac_access_denied_matched_policy[none]', '503 UAEX ext_authz_error');
    expectEvent(parseEnvoy(failed, OBSERVED), { decision: 'error', decision_reason: 'UAEX' }, failed);
  });

  it('reads response flags as a set in either order, long names too; `-` is none', () => {
    expect(parseResponseFlags('UF,URX')).toEqual(['UF', 'URX']);
    expect(parseResponseFlags('URX,UF')).toEqual(['URX', 'UF']);
    expect(parseResponseFlags('-')).toEqual([]);
    expect(parseResponseFlags('')).toEqual([]);
    expect(parseResponseFlags('UpstreamConnectionFailure,UpstreamRetryLimitExceeded')).toEqual(['UF', 'URX']);
    expect(parseResponseFlags('NoHealthyUpstream')).toEqual(['UH']);
  });

  it('response code 0 on an HTTP line is "none", and the decision stays unknown (client went away)', () => {
    const line = `[2018-10-28T13:40:01.000Z] "GET / HTTP/1.0" 0 - 0 0 0 - "-" "Mozilla/5.0 (Windows NT 6.1; Win64; x64)" "-" "example" "-"`;
    expectEvent(parseEnvoy(line, OBSERVED), { status: 0, decision: 'unknown', method: 'GET' }, line);
    const dc = line.replace('" 0 - 0', '" 0 DC 0');
    expectEvent(parseEnvoy(dc, OBSERVED), { status: 0, response_flags: ['DC'], decision: 'unknown' }, dc);
  });

  it('maps Envoy operator keys in snake_case without configuration (peer SANs, TLS version)', () => {
    const outbound = JSON.stringify({
      start_time: '2024-05-01T10:00:00.123Z', method: 'GET', path: '/api/orders/123', protocol: 'HTTP/2', response_code: 200,
      upstream_cluster: 'outbound|9080||orders.shop.svc.cluster.local', upstream_host: '10.1.0.9:9080',
      downstream_remote_address: '127.0.0.6:40000', upstream_local_uri_san: 'spiffe://cluster.local/ns/web/sa/frontend',
      upstream_peer_uri_san: 'spiffe://cluster.local/ns/shop/sa/orders', upstream_tls_version: 'TLSv1.3', x_request_id: 'r-1', trace_id: 'abc',
    });
    expectEvent(parseEnvoy(outbound, OBSERVED), {
      reporter: 'outbound', src_identity: 'spiffe://cluster.local/ns/web/sa/frontend', src_namespace: 'web', src_workload: 'frontend',
      dst_identity: 'spiffe://cluster.local/ns/shop/sa/orders', dst_service: 'orders', dst_namespace: 'shop', mtls: 'yes',
      tls_version: 'TLSv1.3', request_id: 'r-1', trace_id: 'abc', route: '/api/orders/{id}', decision: 'allow',
    }, outbound);
    const inbound = JSON.stringify({
      start_time: '2024-05-01T10:00:00Z', response_code: '403', upstream_cluster: 'inbound|9080||', downstream_remote_address: '10.1.0.5:41000',
      downstream_peer_uri_san: 'spiffe://cluster.local/ns/web/sa/frontend', downstream_local_uri_san: 'spiffe://cluster.local/ns/shop/sa/orders',
      downstream_tls_version: 'TLSv1.3', response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[orders]-rule[0]]',
      authority: 'orders.shop.svc.cluster.local:9080',
    });
    expectEvent(parseEnvoy(inbound, OBSERVED), {
      reporter: 'inbound', src_identity: 'spiffe://cluster.local/ns/web/sa/frontend', dst_identity: 'spiffe://cluster.local/ns/shop/sa/orders',
      dst_service: 'orders', dst_namespace: 'shop', mtls: 'yes', tls_version: 'TLSv1.3', status: 403, decision: 'deny',
      decision_reason: 'ns[shop]-policy[orders]-rule[0]',
    }, inbound);
  });

  it('names the server from an inbound cluster that carries the service host when no Istio SNI does', () => {
    const json = JSON.stringify({
      start_time: '2024-05-01T10:00:00Z', method: 'GET', path: '/cart', response_code: 200, authority: 'checkout:8080',
      upstream_cluster: 'inbound|8080||checkout.shop.svc.cluster.local', downstream_remote_address: '10.1.0.5:41000',
    });
    expectEvent(parseEnvoy(json, OBSERVED), { reporter: 'inbound', dst_service: 'checkout', dst_namespace: 'shop' }, json);
    const server = fixtureLine('istio-default-format.log', 1);
    const text = server.replace('inbound|8000|| ', 'inbound|8080||checkout.shop.svc.cluster.local ').replace(/ outbound_\S+ /, ' - ');
    expect(text).not.toBe(server);
    expectEvent(parseEnvoy(text, OBSERVED), { reporter: 'inbound', dst_service: 'checkout', dst_namespace: 'shop' }, text);
    // Istio's SNI still wins where present: it is what the client asked for.
    const both = server.replace('inbound|8000|| ', 'inbound|8080||checkout.shop.svc.cluster.local ');
    expectEvent(parseEnvoy(both, OBSERVED), { reporter: 'inbound', dst_service: 'httpbin', dst_namespace: 'foo' }, both);
  });

  it('says mtls "no" when the downstream TLS version column shows plaintext, and "no" for TLS without a client certificate', () => {
    const plain = JSON.stringify({ start_time: '2024-05-01T10:00:00Z', response_code: 200, upstream_cluster: 'inbound|80||', downstream_tls_version: '-', downstream_peer_uri_san: '-' });
    expectEvent(parseEnvoy(plain, OBSERVED), { mtls: 'no', tls_version: '' }, plain);
    const nonIstio = JSON.stringify({ start_time: '2024-05-01T10:00:00Z', response_code: 200, downstream_tls_version: null });
    expectEvent(parseEnvoy(nonIstio, OBSERVED), { mtls: 'no' }, nonIstio);
    const unknown = JSON.stringify({ start_time: '2024-05-01T10:00:00Z', response_code: 200 });
    expectEvent(parseEnvoy(unknown, OBSERVED), { mtls: 'unknown' }, unknown);
  });

  it('reads the same record whatever its key order (Istio does not keep it stable)', () => {
    const line = fixtureLine('json-format.ndjson', 1);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    const reversed = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()));
    const a = parseEnvoy(line, OBSERVED);
    const b = parseEnvoy(reversed, OBSERVED);
    if (!a.ok || !b.ok) throw new Error('rejected');
    expect({ ...b.event, raw: '' }).toEqual({ ...a.event, raw: '' });
  });

  it('ignores keys it does not know (istio_policy_status, user_agent, upstream_service_time)', () => {
    const line = fixtureLine('json-format.ndjson', 1);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    delete parsed.istio_policy_status;
    const a = parseEnvoy(line, OBSERVED);
    const b = parseEnvoy(JSON.stringify(parsed), OBSERVED);
    if (!a.ok || !b.ok) throw new Error('rejected');
    expect({ ...b.event, raw: '' }).toEqual({ ...a.event, raw: '' });
  });

  it('reads every built-in key the same through the fast switch and through the key table (ENVOY_KEYS)', () => {
    const samples: Record<number, unknown> = {};
    for (const [key, slot] of ENVOY_KEYS) {
      const value = slot === 1 ? '2024-05-01T10:00:00.000Z' : key === 'log' ? '' : key.includes('san') ? 'spiffe://cluster.local/ns/a/sa/b' : key.includes('cluster') ? 'outbound|80||svc.ns.svc.cluster.local' : key === 'traceparent' ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : `v-${key}-1`;
      samples[slot] = value;
      const line = JSON.stringify({ start_time: '2024-05-01T10:00:00.000Z', [key]: value });
      const viaSwitch = parseEnvoyJson(line, OBSERVED);
      const viaTable = parseEnvoyJson(line, OBSERVED, { fieldMap: {} });
      expect(viaSwitch, key).toEqual(viaTable);
    }
    expect(Object.keys(samples).length).toBeGreaterThan(25);
  });

  it('reads Istio\'s keys by name and any other record through the key switch, with the same result', () => {
    // The key table (fieldMap: {}) is the reference for both fast paths.
    const keys = [...ENVOY_KEYS.keys(), 'user_agent', 'upstream_service_time', 'upstream_local_address', 'route_name', 'unknown_key', '__proto__'];
    const value = fc.oneof(
      fc.constantFrom(null, '-', '', 0, 200, '403', 'via_upstream', 'outbound|9080||reviews.shop.svc.cluster.local', 'outbound_.9080_._.reviews.shop.svc.cluster.local', 'spiffe://cluster.local/ns/shop/sa/cart', '10.0.0.1:9080', 'UF,URX', 'TLSv1.3', true),
      fc.string({ maxLength: 12 }),
      fc.integer(),
    );
    const record = fc
      .tuple(fc.constantFrom('2024-05-01T10:00:00.000Z', '2024-05-01T10:00:00Z', 'yesterday'), fc.uniqueArray(fc.tuple(fc.constantFrom(...keys), value), { selector: ([key]) => key, maxLength: 12 }))
      .map(([time, pairs]) => `{"start_time":${JSON.stringify(time)},${pairs.map(([key, v]) => `${JSON.stringify(key)}:${JSON.stringify(v)}`).join(',')}}`.replace(',}', '}'));
    fc.assert(
      fc.property(record, (line) => {
        expect(parseEnvoyJson(line, OBSERVED)).toEqual(parseEnvoyJson(line, OBSERVED, { fieldMap: {} }));
      }),
      { numRuns: 3000 },
    );
  });

  it('maps other keys by `fieldMap` (key → event field, or key → built-in key)', () => {
    const line = JSON.stringify({ ts: '2024-05-01T10:00:00Z', code: '503', client: 'spiffe://cluster.local/ns/a/sa/b', svc: 'payments', flags: 'UF', mtls_mode: 'yes' });
    const fieldMap = { ts: 'time', code: 'status', client: 'src_identity', svc: 'dst_service', flags: 'response_flags', mtls_mode: 'mtls', ignored: 'not_a_field' };
    expectEvent(parseEnvoy(line, OBSERVED, { fieldMap }), {
      time: ms('2024-05-01T10:00:00Z'), status: 503, src_identity: 'spiffe://cluster.local/ns/a/sa/b', dst_service: 'payments',
      response_flags: ['UF'], decision: 'error', mtls: 'yes',
    }, line);
    const custom = fixtureLine('json-format.ndjson', 0).replace('{', '{"when":"2024-05-01T10:00:00Z",');
    expectEvent(parseEnvoy(custom, OBSERVED, { fieldMap: { when: 'start_time', my_custom_header: 'request_id' } }), {
      request_id: 'value_of_MY_CUSTOM_HEADER', protocol: 'HTTP/1.1', duration_ms: 123,
    }, custom);
    expect(parseEnvoy(custom, OBSERVED)).toEqual({ ok: false, reason: 'envoy_bad_timestamp' });
  });

  it('reads a text line wrapped by Docker/CRI as {"log": …}, keeping the wrapper as raw', () => {
    const text = fixtureLine('istio-default-format.log', 6);
    const wrapped = JSON.stringify({ log: `${text}\n`, stream: 'stdout', time: '2025-07-22T17:55:52.1Z' });
    expectEvent(parseEnvoy(wrapped, OBSERVED), { decision: 'deny', decision_reason: 'none', time: ms('2025-07-22T17:55:52.085Z') }, wrapped);
  });

  it('tags events from the istio entry with source istio', () => {
    const line = fixtureLine('istio-default-format.log', 1);
    expectEvent(parseIstio(line, OBSERVED), { reporter: 'inbound' }, line, 'istio');
  });

  it('rejects broken records with short reasons and never throws', () => {
    expect(parseEnvoy('{"start_time": "2024-05-01T10:00:00Z", ', OBSERVED)).toEqual({ ok: false, reason: 'envoy_bad_json' });
    expect(parseEnvoy('[1,2]', OBSERVED)).toEqual({ ok: false, reason: 'envoy_unrecognized' });
    expect(parseEnvoyJson('[1,2]', OBSERVED)).toEqual({ ok: false, reason: 'envoy_not_object' });
    expect(parseEnvoy('{"start_time": "yesterday"}', OBSERVED)).toEqual({ ok: false, reason: 'envoy_bad_timestamp' });
    // Envoy writes %START_TIME% as text: a number there is not an Envoy record (a fieldMap'd time may be one).
    expect(parseEnvoy('{"start_time": 12345, "response_code": 200}', OBSERVED)).toEqual({ ok: false, reason: 'envoy_bad_timestamp' });
    expect(parseEnvoy('{"start_time": "1700000000", "response_code": 200}', OBSERVED)).toMatchObject({ ok: true, event: { time: 1_700_000_000_000 } });
    expect(parseEnvoy('{"ts": 1700000000123, "response_code": 200}', OBSERVED, { fieldMap: { ts: 'time' } })).toMatchObject({ ok: true, event: { time: 1_700_000_000_123 } });
    expect(parseEnvoy('[2024-13-45T99:00:00.000Z] "GET / HTTP/1.1" 200 - 0 0 0 - "-" "-" "-" "-" "-"', OBSERVED)).toEqual({ ok: false, reason: 'envoy_bad_timestamp' });
    expect(parseEnvoy('   ', OBSERVED)).toEqual({ ok: false, reason: 'envoy_empty' });
    expect(parseEnvoyText('hello world', OBSERVED)).toEqual({ ok: false, reason: 'envoy_unrecognized' });
    expect(parseEnvoy('[2024-05-01T10:00:00.000Z] no request here', OBSERVED)).toEqual({ ok: false, reason: 'envoy_unrecognized' });
  });
});

describe('applyEnvoyDecision', () => {
  const base = (status: number, flags: string[]): NormalizedEvent => {
    const result = parseEnvoy(JSON.stringify({ start_time: '2024-05-01T10:00:00Z', method: 'GET', response_code: status }), OBSERVED);
    if (!result.ok) throw new Error('rejected');
    return { ...result.event, response_flags: flags };
  };
  it.each([
    [200, [], 'via_upstream', '', 'allow', ''],
    [302, [], '', '', 'allow', ''],
    [403, [], 'rbac_access_denied_matched_policy[none]', '', 'deny', 'none'],
    [403, [], 'RBAC: access denied', '', 'deny', 'RBAC'],
    [403, ['RBAC'], '', '', 'deny', 'RBAC'],
    [403, ['UAEX'], 'ext_authz_denied', '', 'deny', 'UAEX'],
    [403, [], 'ext_authz_denied', '', 'deny', 'ext_authz_denied'],
    [503, ['UAEX'], '', '', 'error', 'UAEX'],
    [503, ['UF', 'URX'], '', '', 'error', 'UF,URX'],
    [404, ['NR'], 'route_not_found', '', 'error', 'NR'],
    [429, ['RL'], '', '', 'error', 'RL'],
    [500, [], 'via_upstream', '', 'error', ''],
    [504, [], 'upstream_response_timeout', '', 'error', 'upstream_response_timeout'],
    [404, [], 'via_upstream', '', 'unknown', ''],
    [0, ['DC'], '', '', 'unknown', ''],
  ])('%i %j %s → %s %s', (status, flags, details, term, decision, reason) => {
    const event = base(status, flags);
    applyEnvoyDecision(event, details, term);
    expect([event.decision, event.decision_reason]).toEqual([decision, reason]);
  });
});

describe('shared Envoy flag lists', () => {
  const line = (flags: string): string => JSON.stringify({ start_time: '2024-05-01T10:00:00.000Z', response_code: 503, response_flags: flags });

  it('two lines with the same flags text share one frozen, well-formed list', () => {
    const a = parseEnvoy(line('UF,URX'), 0);
    const b = parseEnvoy(line('UF,URX'), 0);
    if (!a.ok || !b.ok) throw new Error('rejected');
    expect(a.event.response_flags).toEqual(['UF', 'URX']);
    expect(b.event.response_flags).toBe(a.event.response_flags);
    expect(Object.isFrozen(a.event.response_flags)).toBe(true);
    expect(a.event.decision_reason).toBe('UF,URX');
  });

  it('a flag with a lone surrogate is repaired once, when parsed', () => {
    const result = parseEnvoy(line('Z\ud800'), 0);
    if (!result.ok) throw new Error('rejected');
    expect(result.event.response_flags).toEqual(['Z\ufffd']);
    expect(repairEvent(result.event).response_flags).toEqual(['Z\ufffd']);
  });
});
