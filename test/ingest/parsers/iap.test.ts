import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ParseResult } from '../../../core/event.ts';
import { parseOauth2Proxy, parsePomerium } from '../../../ingest/parsers/iap.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { detectFormat } from '../../../ingest/parsers/index.ts';
import { expectParseOutcome, type Expected } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/iap/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

const readText = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const readLines = (name: string): string[] => readText(name).split('\n').filter((l) => l !== '');

function check(result: ParseResult, expected: Expected, raw: string, source: 'oauth2_proxy' | 'pomerium'): void {
  expectParseOutcome(result, raw, { source, reporter: 'iap', mtls: 'unknown' }, expected);
}

describe('parseOauth2Proxy', () => {
  it('oauth2-proxy.log: request and auth lines are events, standard lines are skipped', () => {
    const lines = readLines('oauth2-proxy.log');
    const skip = { reject: 'oauth2_proxy_not_access_record' };
    const table: Expected[] = [
      skip,
      skip,
      skip,
      skip,
      {
        time: Date.UTC(2024, 11, 12, 16, 23, 17),
        src_ip: '10.19.255.4',
        src_identity: '',
        request_id: '6b8ad3d13f383608814dd9ef99fe7c0c',
        method: 'GET',
        path: '/oauth2/auth',
        authority: 'oauth2-proxy-internet-service.int5.svc.cluster.local',
        dst_service: 'oauth2-proxy-internet-service',
        dst_namespace: 'int5',
        protocol: 'HTTP/1.1',
        status: 401,
        decision: 'deny',
        decision_reason: 'unauthenticated',
        bytes_out: 13,
        duration_ms: 0,
      },
      { time: Date.UTC(2024, 11, 12, 16, 23, 18), src_ip: '10.19.255.7', status: 401, decision: 'deny', dst_service: 'oauth2-proxy-internet-service' },
      {
        time: Date.UTC(2025, 5, 30, 6, 36, 32),
        src_ip: '10.130.8.1',
        path: '/',
        dst_service: 'example.com',
        status: 302,
        // No upstream, a redirect: an anonymous visitor sent to sign in.
        decision: 'deny',
        decision_reason: 'login_redirect',
        bytes_out: 435,
        duration_ms: 2,
      },
      {
        time: Date.UTC(2025, 5, 30, 6, 36, 57),
        src_identity: 'xxx@example.com',
        request_id: '29eb19d4-5d4d-4979-87f8-d604990f2b58',
        decision: 'allow',
        decision_reason: 'AuthSuccess',
        method: '',
        path: '',
        status: 0,
      },
      {
        time: Date.UTC(2025, 5, 30, 6, 36, 56),
        path: '/oauth2/callback?code=xxx&state=xxx%3A%2F',
        route: '/oauth2/callback',
        status: 302,
        decision: 'allow',
        duration_ms: 450,
        bytes_out: 24,
      },
      skip,
      {
        time: Date.UTC(2025, 1, 21, 2, 31, 30),
        src_ip: '127.0.0.6',
        src_port: 51671,
        src_identity: 'lvcleef@mydomain.com',
        decision: 'allow',
        decision_reason: 'AuthSuccess',
      },
    ];
    expect(lines).toHaveLength(table.length);
    lines.forEach((line, i) => check(parseOauth2Proxy(line, OBSERVED), table[i] as Expected, line, 'oauth2_proxy'));
  });

  it('oauth2-proxy-test-expected.log: `[TIMELESS]` is no time; with one, both layouts read', () => {
    const lines = readLines('oauth2-proxy-test-expected.log');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(parseOauth2Proxy(line, OBSERVED)).toEqual({ ok: false, reason: 'oauth2_proxy_bad_timestamp' });
    const timed = lines.map((l) => l.replace('[TIMELESS]', '[2015/03/19 17:20:19]'));
    const table: Expected[] = [
      {
        time: Date.UTC(2015, 2, 19, 17, 20, 19),
        src_ip: '127.0.0.1',
        request_id: '11111111-2222-4333-8444-555555555555',
        src_identity: 'standard.user',
        authority: 'test-server',
        method: 'GET',
        // The upstream column names the upstream that served the request.
        dst_service: 'standard',
        path: '/foo/bar',
        status: 200,
        decision: 'allow',
        bytes_out: 4,
      },
      { src_identity: 'mr.ping', dst_service: 'test-server', path: '/ping', status: 200, decision: 'allow' },
    ];
    timed.forEach((line, i) => check(parseOauth2Proxy(line, OBSERVED), table[i] as Expected, line, 'oauth2_proxy'));
  });

  it('reads auth failures and errors, Apache-style time, and URL upstreams', () => {
    const failure = '10.0.0.9:41000 - 0f3c1e52-8d4c-4d8e-9d0a-4a1f0a2b3c4d - mallory@evil.test [2024/05/01 10:00:00] [AuthFailure] Invalid authentication via OAuth2: unauthorized';
    check(parseOauth2Proxy(failure, OBSERVED), { decision: 'deny', decision_reason: 'AuthFailure: Invalid authentication via OAuth2: unauthorized', src_identity: 'mallory@evil.test', src_port: 41000 }, failure, 'oauth2_proxy');
    const error = '10.0.0.9 - - - - [2024/05/01 10:00:01] [AuthError] Error redeeming code during OAuth2 callback: token exchange failed';
    check(parseOauth2Proxy(error, OBSERVED), { decision: 'error', request_id: '', src_identity: '' }, error, 'oauth2_proxy');
    const apacheTime = '10.0.0.9 - abc - alice@corp.test [19/Mar/2015:17:20:19 -0400] grafana.monitoring.svc.cluster.local:3000 GET http://10.1.2.3:3000/ "/d/abc123?orgId=1" HTTP/1.1 "curl/8.0" 403 12 0.010';
    check(
      parseOauth2Proxy(apacheTime, OBSERVED),
      { time: Date.UTC(2015, 2, 19, 21, 20, 19), dst_ip: '10.1.2.3', dst_port: 3000, dst_service: 'grafana', dst_namespace: 'monitoring', decision: 'deny', decision_reason: 'forbidden', duration_ms: 10 },
      apacheTime,
      'oauth2_proxy',
    );
    const quoted = '10.0.0.9 - - - bob [2024/05/01 10:00:02] app.example.com GET http://app.prod.svc.cluster.local:8080 "/search?q=\\"x\\"" HTTP/2.0 "ua" 502 0 1.250';
    check(parseOauth2Proxy(quoted, OBSERVED), { path: '/search?q="x"', dst_service: 'app', dst_namespace: 'prod', decision: 'error', duration_ms: 1250 }, quoted, 'oauth2_proxy');
  });

  it('refuses lines it cannot read with short reasons', () => {
    expect(parseOauth2Proxy('', OBSERVED)).toEqual({ ok: false, reason: 'oauth2_proxy_empty' });
    expect(parseOauth2Proxy('hello world', OBSERVED)).toEqual({ ok: false, reason: 'oauth2_proxy_unrecognized_line' });
    expect(parseOauth2Proxy('1.2.3.4 - x - y [2024/02/30 99:00:00] host GET - "/" HTTP/1.1 "" 200 1 0.1', OBSERVED)).toEqual({ ok: false, reason: 'oauth2_proxy_bad_timestamp' });
    expect(parseOauth2Proxy('1.2.3.4 - x - y [2024/02/03 09:00:00] host GET - "/" HTTP/1.1', OBSERVED)).toEqual({ ok: false, reason: 'oauth2_proxy_unrecognized_line' });
  });
});

describe('parsePomerium', () => {
  it('pomerium-authorize.ndjson: a deny for an unauthenticated user, and an old allow with `message` twice', () => {
    const lines = readLines('pomerium-authorize.ndjson');
    const table: Expected[] = [
      {
        time: Date.UTC(2025, 9, 22, 20, 13, 33),
        src_identity: '',
        src_ip: '74.125.217.68',
        method: 'GET',
        path: '/',
        authority: 'verify.adjective-animal.pomerium.app',
        dst_service: 'verify.adjective-animal.pomerium.app',
        decision: 'deny',
        decision_reason: 'user-unauthenticated',
        request_id: '661195d4-adf0-4a82-baf7-a10baf2f73ba',
        decision_id: '661195d4-adf0-4a82-baf7-a10baf2f73ba',
      },
      {
        // 21:04:15 at UTC-7.
        time: Date.UTC(2020, 7, 19, 4, 4, 15),
        src_identity: 'snip@snip.com',
        path: '/spec.json',
        dst_service: 'httpbin.imac.bdd.io',
        status: 200,
        decision: 'allow',
        request_id: '02fd15f5-19a0-4e2b-b580-26960ec1a079',
        decision_id: 'fa7b7b10-657b-4532-a95e-4d67ad576671',
      },
    ];
    expect(lines).toHaveLength(table.length);
    lines.forEach((line, i) => check(parsePomerium(line, OBSERVED), table[i] as Expected, line, 'pomerium'));
  });

  it('pomerium-authorize-pretty.txt: the valid entry reads, the doc sample with `...` values is refused', () => {
    const { records, rejected } = splitRecords(readText('pomerium-authorize-pretty.txt'), { maxLineBytes: 1 << 20 });
    expect(rejected).toEqual([]);
    const table: Expected[] = [
      { reject: 'pomerium_comment_line' },
      { time: Date.UTC(2025, 5, 24, 21, 40, 41), decision: 'allow', decision_reason: 'email-ok,mcp-tool-ok', src_identity: '' },
      { reject: 'pomerium_comment_line' },
      { reject: 'pomerium_bad_json' },
    ];
    expect(records).toHaveLength(table.length);
    records.forEach((record, i) => check(parsePomerium(record, OBSERVED), table[i] as Expected, record, 'pomerium'));
    // The same doc sample with its elisions filled in reads as a deny with both reasons.
    const filled = (records[3] as string).replace(/: \.\.\.,/g, ': 1,');
    check(
      parsePomerium(filled, OBSERVED),
      { decision: 'deny', decision_reason: 'claim-unauthorized,non-pomerium-route', src_identity: 'alex@example.com', dst_service: 'grafana.example.com', decision_id: '7700fe70-a166-406c-a326-48f433029f98' },
      filled,
      'pomerium',
    );
  });

  it('denies when a deny rule matched even though allow is true', () => {
    const line = '{"service":"authorize","allow":true,"allow-why-true":["email-ok"],"deny":true,"deny-why-true":["invalid-client-certificate"],"email":"eve@corp.test","host":"db.internal:8443","path":"/","query":"a=1","check-request-id":["c1","c2"],"time":"2024-01-01T00:00:00Z","message":"authorize check"}';
    check(parsePomerium(line, OBSERVED), { decision: 'deny', decision_reason: 'invalid-client-certificate', dst_service: 'db.internal', dst_port: 8443, path: '/?a=1', route: '/', decision_id: 'c1' }, line, 'pomerium');
  });

  it('refuses other Pomerium messages and broken entries', () => {
    expect(parsePomerium('{"level":"info","service":"proxy","message":"http-request","time":"2024-01-01T00:00:00Z"}', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_not_authorize_check' });
    expect(parsePomerium('{"message":"authorize check","allow":true}', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_bad_timestamp' });
    expect(parsePomerium('{"message":"authorize check"', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_bad_json' });
    expect(parsePomerium('null', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_not_json' });
    expect(parsePomerium('[]', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_not_json' });
    expect(parsePomerium('# note', OBSERVED)).toEqual({ ok: false, reason: 'pomerium_comment_line' });
  });
});

describe('format detection', () => {
  it('names oauth2-proxy and pomerium for their records', () => {
    const oauth2 = [...readLines('oauth2-proxy.log'), ...readLines('oauth2-proxy-test-expected.log')];
    expect(oauth2).toHaveLength(13);
    for (const line of oauth2) expect(detectFormat(line), line).toBe('oauth2-proxy');
    const pomerium = [...readLines('pomerium-authorize.ndjson'), ...splitRecords(readText('pomerium-authorize-pretty.txt'), { maxLineBytes: 1 << 20 }).records].filter((r) => !r.startsWith('#'));
    expect(pomerium).toHaveLength(4);
    for (const record of pomerium) expect(detectFormat(record), record).toBe('pomerium');
  });
});
