// OPA decision logs: every record of ../shared/fixtures/opa is parsed (after splitRecords, as the
// collectors do) and compared with its expected fields; each README quirk has its own test. The two
// ext_authz input files are policy *inputs*, not decision events: as records they are refused
// (`opa_not_decision`), and wrapped into a decision event they must map to src/dst/method/path.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NormalizedEvent, ParseResult } from '../../../core/event.ts';
import { parseOpa } from '../../../ingest/parsers/opa.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { expectParsedEvent, type Expected } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/opa/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

const readText = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

function readRecords(name: string): string[] {
  const { records, rejected } = splitRecords(readText(name), { maxLineBytes: 1 << 20 });
  expect(rejected).toEqual([]);
  return records;
}

function expectEvent(result: ParseResult, expected: Partial<NormalizedEvent>, raw: string): NormalizedEvent {
  return expectParsedEvent(result, raw, { source: 'opa', reporter: 'authz' }, expected);
}

function checkFile(file: string, table: Expected[]): void {
  const records = readRecords(file);
  expect(records.length).toBe(table.length);
  records.forEach((record, i) => {
    const expected = table[i] as Expected;
    const result = parseOpa(record, OBSERVED);
    if ('reject' in expected) expect(result, record).toEqual({ ok: false, reason: expected.reject });
    else expectEvent(result, expected, record);
  });
}

/** A decision event around a policy input, as opa-envoy-plugin logs it. */
function decisionAround(input: unknown, result: unknown): string {
  return JSON.stringify({
    decision_id: '0b9f2b5e-1e1c-4a51-9a8b-8d7a3c2f4e10',
    path: '/envoy/authz/allow',
    input,
    result,
    requested_by: '127.0.0.1:36412',
    timestamp: '2024-05-01T10:00:00.123456789Z',
  });
}

describe('opa fixtures, record by record', () => {
  it('decision-log-upload-body.json: the upload body is an array; each element is one decision', () => {
    checkFile('decision-log-upload-body.json', [
      {
        // `"result": "true"` is a string in the doc: still an allow.
        time: Date.parse('2018-01-01T00:00:00Z'), decision: 'allow', decision_reason: 'http/example/authz/allow',
        decision_id: '4ca636c1-55e4-417a-b1d8-4aceb67960d1', method: 'GET', path: '/salary/bob', route: '/salary/bob',
        src_ip: '', status: 0,
      },
    ]);
  });

  it('decision-log-console-fluentd.log: console output behind a fluentd time and tag', () => {
    checkFile('decision-log-console-fluentd.log', [
      {
        time: Date.parse('2024-09-23T22:32:47.950Z'), decision: 'allow', decision_reason: 'permissions',
        decision_id: 'e557b5be-6d2c-44b6-8cbd-b6270d109321', method: 'GET', path: '/ga4gh/drs/v1/cohorts', route: '/ga4gh/drs/v1/cohorts',
      },
    ]);
  });

  it('decision-log-masking-examples.txt: annotations and the two elided (invalid JSON) events', () => {
    checkFile('decision-log-masking-examples.txt', [
      { reject: 'opa_comment' },
      { reject: 'opa_comment' },
      { reject: 'opa_comment' },
      { reject: 'opa_comment' },
      { reject: 'opa_bad_json' },
      { reject: 'opa_comment' },
      { reject: 'opa_bad_json' },
    ]);
  });

  it('envoy-ext-authz-input-*.json: a policy input alone is not a decision event', () => {
    checkFile('envoy-ext-authz-input-v2-istio.json', [{ reject: 'opa_not_decision' }]);
    checkFile('envoy-ext-authz-input-v3.json', [{ reject: 'opa_not_decision' }]);
  });
});

describe('opa README quirks', () => {
  it('maps an ext_authz v3 input (protojson socketAddress) and an object result with allowed:false', () => {
    const input: unknown = JSON.parse(readText('envoy-ext-authz-input-v3.json'));
    const line = decisionAround(input, { allowed: false, http_status: 403, body: 'denied' });
    expectEvent(parseOpa(line, OBSERVED), {
      time: Date.parse('2024-05-01T10:00:00.123Z'), decision: 'deny', decision_reason: 'envoy/authz/allow', status: 403,
      decision_id: '0b9f2b5e-1e1c-4a51-9a8b-8d7a3c2f4e10', src_ip: '172.17.0.1', src_port: 61402,
      // The doc's own typo is kept as written: the parser does not invent addresses.
      dst_ip: '172.17.06', dst_port: 8000, method: 'POST', path: '/people?lang=en', route: '/people', protocol: 'HTTP/1.1',
      authority: '192.168.99.206:30164', request_id: '7bca5c86-bf55-432c-b212-8c0f1dc999ec', dst_service: '', mtls: 'unknown',
    }, line);
  });

  it('maps an ext_authz v2 input (capitalised Address.SocketAddress.PortSpecifier) and result false', () => {
    const input: unknown = JSON.parse(readText('envoy-ext-authz-input-v2-istio.json'));
    const line = decisionAround(input, false);
    expectEvent(parseOpa(line, OBSERVED), {
      decision: 'deny', src_ip: '172.17.0.10', src_port: 36472, dst_ip: '172.17.0.17', dst_port: 9080, method: 'GET',
      path: '/api/v1/products?lang=en', route: '/api/v1/products', authority: '192.168.99.100:31380',
      request_id: '92a6c0f7-0250-944b-9cfc-ae10cbcedd8e', trace_id: '537f473f27475073', status: 0,
    }, line);
  });

  it('reads the caller from attributes.source.principal first, then from x-forwarded-client-cert', () => {
    const input = JSON.parse(readText('envoy-ext-authz-input-v3.json')) as { attributes: { source: Record<string, unknown>; request: { http: { headers: Record<string, string>; host: string } } } };
    input.attributes.source.principal = 'spiffe://cluster.local/ns/web/sa/frontend';
    input.attributes.request.http.host = 'people.hr.svc.cluster.local:8000';
    const line = decisionAround(input, true);
    expectEvent(parseOpa(line, OBSERVED), {
      decision: 'allow', src_identity: 'spiffe://cluster.local/ns/web/sa/frontend', src_namespace: 'web', src_workload: 'frontend',
      mtls: 'yes', dst_service: 'people', dst_namespace: 'hr',
    }, line);
    delete input.attributes.source.principal;
    input.attributes.request.http.headers['x-forwarded-client-cert'] =
      'By=spiffe://cluster.local/ns/hr/sa/people;Hash=abc;Subject="O=a, CN=b";URI=spiffe://cluster.local/ns/web/sa/admin';
    const viaXfcc = decisionAround(input, true);
    expectEvent(parseOpa(viaXfcc, OBSERVED), {
      src_identity: 'spiffe://cluster.local/ns/web/sa/admin', dst_identity: 'spiffe://cluster.local/ns/hr/sa/people', mtls: 'yes',
    }, viaXfcc);
  });

  it('parses the masking examples once the doc elision is removed: masked and erased fields do not matter', () => {
    const blocks = readRecords('decision-log-masking-examples.txt').filter((r) => !r.startsWith('#'));
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      const repaired = block
        .split('\n')
        .filter((l) => !l.includes('8<'))
        .join('\n');
      expectEvent(parseOpa(repaired, OBSERVED), {
        time: Date.parse('2019-06-03T20:07:16.939Z'), decision: 'allow', decision_reason: 'system/main',
        decision_id: 'b4638167-7fcb-4bc7-9e80-31f5f87cb738',
      }, repaired);
    }
  });

  it('survives masks that replace whole input objects with strings, and erased inputs', () => {
    const masked = decisionAround({ attributes: '**REDACTED**' }, false);
    expectEvent(parseOpa(masked, OBSERVED), { decision: 'deny', method: '', path: '' }, masked);
    const input = JSON.parse(readText('envoy-ext-authz-input-v3.json')) as { attributes: { request: { http: Record<string, unknown> } } };
    input.attributes.request.http.headers = '**REDACTED**';
    input.attributes.request.http.path = 42;
    const mangled = decisionAround(input, { allowed: 'true' });
    // With the path masked, opa-envoy-plugin's parsed_path still says where the request went.
    expectEvent(parseOpa(mangled, OBSERVED), { decision: 'allow', path: '/people', request_id: '', method: 'POST' }, mangled);
    const erased = JSON.stringify({ decision_id: 'x', path: 'a/b', erased: ['/input'], result: true, timestamp: '2024-05-01T10:00:00Z' });
    expectEvent(parseOpa(erased, OBSERVED), { decision: 'allow', method: '', decision_reason: 'a/b' }, erased);
  });

  it('accepts a decision path with a leading slash and an ad-hoc query instead of a path', () => {
    const withSlash = JSON.stringify({ decision_id: 'a', path: '/http/authz/allow', result: false, timestamp: '2024-05-01T10:00:00Z' });
    expectEvent(parseOpa(withSlash, OBSERVED), { decision_reason: 'http/authz/allow', decision: 'deny' }, withSlash);
    const query = JSON.stringify({ decision_id: 'b', query: 'data.http.authz.allow == true', result: [], timestamp: '2024-05-01T10:00:00Z' });
    expectEvent(parseOpa(query, OBSERVED), { decision_reason: 'data.http.authz.allow == true', decision: 'unknown' }, query);
  });

  it('reads the caller of non-Envoy inputs, mapping Kubernetes service accounts to SPIFFE form', () => {
    const admission = JSON.stringify({
      decision_id: 'c', path: 'kubernetes/admission/deny', timestamp: '2024-05-01T10:00:00Z', result: { allowed: false },
      input: { request: { userInfo: { username: 'system:serviceaccount:ci:deployer' }, method: 'CREATE', path: ['apis', 'apps', 'v1'] } },
    });
    expectEvent(parseOpa(admission, OBSERVED), {
      decision: 'deny', src_identity: 'spiffe://cluster.local/ns/ci/sa/deployer', src_namespace: 'ci', src_workload: 'deployer',
      method: 'CREATE', path: '/apis/apps/v1',
    }, admission);
    const user = JSON.stringify({ decision_id: 'd', path: 'p', timestamp: '2024-05-01T10:00:00Z', result: true, input: { user: 'alice@example.com', method: 'GET', path: '/finance/salary/alice' } });
    expectEvent(parseOpa(user, OBSERVED), { src_identity: 'alice@example.com', src_namespace: '', path: '/finance/salary/alice' }, user);
  });

  it('refuses what is not a decision event, with short reasons', () => {
    expect(parseOpa('{"level":"info","msg":"Initializing server.","time":"2024-09-23T22:32:40Z"}', OBSERVED)).toEqual({ ok: false, reason: 'opa_not_decision' });
    expect(parseOpa('{"decision_id":"x","result":true}', OBSERVED)).toEqual({ ok: false, reason: 'opa_bad_timestamp' });
    expect(parseOpa('{"decision_id":"x","result":true,"timestamp":"not a time"}', OBSERVED)).toEqual({ ok: false, reason: 'opa_bad_timestamp' });
    expect(parseOpa('{"decision_id":', OBSERVED)).toEqual({ ok: false, reason: 'opa_bad_json' });
    // Arrays are split by splitRecords before parsing; one reaching the parser whole is damage.
    expect(parseOpa('[{"decision_id":"x"}]', OBSERVED)).toEqual({ ok: false, reason: 'opa_bad_json' });
    expect(parseOpa('plain text', OBSERVED)).toEqual({ ok: false, reason: 'opa_not_json' });
    expect(parseOpa('', OBSERVED)).toEqual({ ok: false, reason: 'opa_empty' });
  });
});
