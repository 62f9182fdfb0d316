import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NormalizedEvent, ParseResult } from '../../../core/event.ts';
import { canonicalLinkerdIdentity, parseLinkerd, parseLinkerdIdentity } from '../../../ingest/parsers/linkerd.ts';
import { splitRecords } from '../../../ingest/records.ts';
import { detectFormat } from '../../../ingest/parsers/index.ts';
import { expectParseOutcome, type Expected } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/linkerd/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

const readLines = (name: string): string[] => readFileSync(new URL(name, FIXTURES), 'utf8').split('\n').filter((l) => l !== '');

function check(result: ParseResult, expected: Expected, raw: string): void {
  expectParseOutcome(result, raw, { source: 'linkerd' }, expected);
}

describe('parseLinkerdIdentity', () => {
  it.each([
    ['web.emojivoto.serviceaccount.identity.linkerd.cluster.local', 'spiffe://cluster.local/ns/emojivoto/sa/web', 'emojivoto', 'web'],
    ['linkerd-prometheus.linkerd.serviceaccount.identity.linkerd.cluster.local', 'spiffe://cluster.local/ns/linkerd/sa/linkerd-prometheus', 'linkerd', 'linkerd-prometheus'],
    // A control plane in another namespace and a custom trust domain.
    ['api.payments.serviceaccount.identity.mesh-system.prod.example.org', 'spiffe://prod.example.org/ns/payments/sa/api', 'payments', 'api'],
    // Service-account names may hold dots; namespaces may not.
    ['my.sa.shop.serviceaccount.identity.linkerd.cluster.local', 'spiffe://cluster.local/ns/shop/sa/my.sa', 'shop', 'my.sa'],
  ])('%s → %s', (name, uri, namespace, serviceAccount) => {
    expect(parseLinkerdIdentity(name)).toEqual({ uri, namespace, serviceAccount, trustDomain: uri.slice(9, uri.indexOf('/ns/')) });
    expect(canonicalLinkerdIdentity(name)).toBe(uri);
  });

  it.each(['', '-', 'web.emojivoto', 'serviceaccount.identity.linkerd.cluster.local', 'web.serviceaccount.identity.linkerd.cluster.local', 'web.emojivoto.serviceaccount.identity.linkerd'])(
    'does not map %j',
    (name) => expect(parseLinkerdIdentity(name)).toBeUndefined(),
  );

  it('keeps URIs and other names, and maps none to empty', () => {
    expect(canonicalLinkerdIdentity('spiffe://cluster.local/ns/a/sa/b')).toBe('spiffe://cluster.local/ns/a/sa/b');
    expect(canonicalLinkerdIdentity(' - ')).toBe('');
    expect(canonicalLinkerdIdentity('')).toBe('');
  });
});

describe('parseLinkerd on fixtures', () => {
  it('proxy-authz-deny.log: each "Request denied" is one deny; follow-up and comment lines are skipped', () => {
    const lines = readLines('proxy-authz-deny.log');
    const table: Expected[] = [
      { reject: 'linkerd_comment_line' },
      { reject: 'linkerd_comment_line' },
      { reject: 'linkerd_deny_followup' },
      {
        reporter: 'inbound',
        decision: 'deny',
        decision_reason: 'server=metrics-api',
        status: 403,
        mtls: 'no',
        src_ip: '192.168.1.253',
        src_port: 37900,
        dst_port: 8085,
        dst_service: '',
        // The bracketed time is proxy uptime, so the event keeps the time it was observed.
        time: OBSERVED,
      },
      { reject: 'linkerd_deny_followup' },
      { reject: 'linkerd_comment_line' },
      {
        reporter: 'inbound',
        decision: 'deny',
        decision_reason: 'server=default:deny route=default:default',
        status: 403,
        mtls: 'no',
        src_ip: '10.203.1.120',
        src_port: 0,
        dst_port: 4191,
        dst_service: 'web',
        time: OBSERVED,
      },
      { reject: 'linkerd_deny_followup' },
    ];
    expect(lines).toHaveLength(table.length);
    lines.forEach((line, i) => check(parseLinkerd(line, OBSERVED), table[i] as Expected, line));
  });

  it('tap-output.golden.json-stream: the request init is an event, the response end is not', () => {
    const { records, rejected } = splitRecords(readFileSync(new URL('tap-output.golden.json-stream', FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 });
    expect(rejected).toEqual([]);
    const table: Expected[] = [
      {
        reporter: 'outbound',
        method: 'GET',
        path: '/some/path',
        route: '/some/path',
        authority: 'localhost',
        protocol: 'https',
        src_ip: '0.0.0.1',
        dst_ip: 'ff01::1',
        dst_service: 'my-pod',
        mtls: 'yes',
        decision: 'unknown',
        status: 0,
      },
      { reject: 'linkerd_tap_not_request' },
    ];
    expect(records).toHaveLength(table.length);
    records.forEach((record, i) => check(parseLinkerd(record, OBSERVED), table[i] as Expected, record));
  });

  it('tap-output-wide.golden.txt: `req` is an event, `end` is not', () => {
    const lines = readLines('tap-output-wide.golden.txt');
    const table: Expected[] = [
      { reporter: 'outbound', method: 'GET', path: '/some/path', authority: 'localhost', src_ip: '0.0.0.1', src_port: 0, dst_ip: 'ff01::1', dst_service: 'my-pod', mtls: 'yes' },
      { reject: 'linkerd_tap_not_request' },
    ];
    expect(lines).toHaveLength(table.length);
    lines.forEach((line, i) => check(parseLinkerd(line, OBSERVED), table[i] as Expected, line));
  });

  it('viz-authz-output.txt: a `linkerd viz authz` table is refused as not a log', () => {
    const lines = readLines('viz-authz-output.txt');
    const reasons = lines.map((line) => {
      const result = parseLinkerd(line, OBSERVED);
      expect(result.ok).toBe(false);
      return result.ok ? '' : result.reason;
    });
    expect(reasons).toEqual([
      'linkerd_comment_line',
      ...Array(4).fill('linkerd_viz_output_not_a_log'),
      'linkerd_comment_line',
      ...Array(4).fill('linkerd_viz_output_not_a_log'),
      'linkerd_comment_line',
      // grpcurl's client-side error is no proxy output at all.
      'linkerd_unrecognized_line',
    ]);
  });

  it('proxy-metrics.prom: exposition lines are refused here (the metrics scraper reads them)', () => {
    for (const line of readLines('proxy-metrics.prom')) {
      const result = parseLinkerd(line, OBSERVED);
      expect(result).toEqual({ ok: false, reason: line.startsWith('#') ? 'linkerd_comment_line' : 'linkerd_metrics_not_a_log' });
    }
  });
});

describe('parseLinkerd on access logs', () => {
  // linkerd/website linkerd.io/content/2-edge/features/access-logging.md, "apache" and "json" examples.
  const apache = [
    '10.42.0.63:51160 traffic.booksapp.serviceaccount.identity.linkerd.cluster.local - [2022-08-23T20:28:20.071809491Z] "GET http://webapp:7000/ HTTP/2.0" 200',
    '10.42.0.63:51160 traffic.booksapp.serviceaccount.identity.linkerd.cluster.local - [2022-08-23T20:28:20.301798187Z] "GET http://webapp:7000/authors/104 HTTP/2.0" 200',
    '10.42.0.1:43682 - - [2022-08-23T20:28:23.049685223Z] "GET /ping HTTP/1.1" 200',
  ];
  const json = [
    '{"client.addr":"10.42.0.70:32996","client.id":"traffic.booksapp.serviceaccount.identity.linkerd.cluster.local","host":"webapp:7000","method":"POST","processing_ns":"30036","request_bytes":"33","response_bytes":"0","status":303,"timestamp":"2022-08-23T20:33:42.436964052Z","total_ns":"14122403","trace_id":"","uri":"http://webapp:7000/authors","user_agent":"Go-http-client/1.1","version":"HTTP/2.0"}',
    '{"client.addr":"10.42.0.1:56300","client.id":"-","host":"10.42.0.69:7000","method":"GET","processing_ns":"35848","request_bytes":"","response_bytes":"4","status":200,"timestamp":"2022-08-23T20:33:49.254262428Z","total_ns":"1416066","trace_id":"","uri":"/ping","user_agent":"kube-probe/1.24","version":"HTTP/1.1"}',
  ];

  it.each([
    [
      apache[0],
      {
        time: Date.UTC(2022, 7, 23, 20, 28, 20, 71),
        reporter: 'inbound',
        src_ip: '10.42.0.63',
        src_port: 51160,
        src_identity: 'spiffe://cluster.local/ns/booksapp/sa/traffic',
        src_namespace: 'booksapp',
        mtls: 'yes',
        method: 'GET',
        path: '/',
        authority: 'webapp:7000',
        dst_service: 'webapp',
        dst_port: 7000,
        protocol: 'HTTP/2.0',
        status: 200,
        decision: 'allow',
      },
    ],
    [apache[1], { path: '/authors/104', route: '/authors/{id}', dst_service: 'webapp', status: 200 }],
    [apache[2], { src_identity: '', mtls: 'no', path: '/ping', authority: '', dst_service: '', status: 200, protocol: 'HTTP/1.1' }],
    [
      json[0],
      {
        time: Date.UTC(2022, 7, 23, 20, 33, 42, 436),
        src_identity: 'spiffe://cluster.local/ns/booksapp/sa/traffic',
        mtls: 'yes',
        method: 'POST',
        path: '/authors',
        dst_service: 'webapp',
        dst_port: 7000,
        status: 303,
        decision: 'allow',
        bytes_in: 33,
        bytes_out: 0,
        duration_ms: 14,
      },
    ],
    [json[1], { src_identity: '', mtls: 'no', dst_ip: '10.42.0.69', dst_port: 7000, dst_service: '', path: '/ping', bytes_out: 4, duration_ms: 1 }],
  ] as Array<[string, Partial<NormalizedEvent>]>)('%s', (line, expected) => check(parseLinkerd(line, OBSERVED), expected, line));

  it('reads a 403 as a deny and a 5xx as an error', () => {
    const denied = parseLinkerd(apache[0]!.replace('" 200', '" 403'), OBSERVED);
    expect(denied.ok && denied.event.decision).toBe('deny');
    expect(denied.ok && denied.event.decision_reason).toBe('http_403');
    const failed = parseLinkerd(json[0]!.replace('"status":303', '"status":503'), OBSERVED);
    expect(failed.ok && failed.event.decision).toBe('error');
  });

  it('refuses broken records with short reasons', () => {
    expect(parseLinkerd(json[0]!.slice(0, 40), OBSERVED)).toEqual({ ok: false, reason: 'linkerd_bad_json' });
    expect(parseLinkerd(json[0]!.replace('2022-08-23T20:33:42.436964052Z', 'yesterday'), OBSERVED)).toEqual({ ok: false, reason: 'linkerd_bad_timestamp' });
    expect(parseLinkerd(apache[0]!.replace('2022-08-23T', '2022-13-23T'), OBSERVED)).toEqual({ ok: false, reason: 'linkerd_bad_timestamp' });
    expect(parseLinkerd('{"status":"teapot","uri":"/"}', OBSERVED)).toEqual({ ok: false, reason: 'linkerd_bad_timestamp' });
    expect(parseLinkerd('[1,2]', OBSERVED)).toEqual({ ok: false, reason: 'linkerd_unrecognized_line' });
    expect(parseLinkerd('   ', OBSERVED)).toEqual({ ok: false, reason: 'linkerd_empty' });
    expect(parseLinkerd('{"hello":"world"}', OBSERVED)).toEqual({ ok: false, reason: 'linkerd_unknown_json' });
  });
});

describe('parseLinkerd on other proxy log shapes', () => {
  it('takes the client identity from an established TLS session', () => {
    const line =
      '[ 80.114299s]  INFO ThreadId(01) inbound:server{port=8080}: linkerd_app_inbound::policy::http: Request denied server.group=policy.linkerd.io server.kind=server server.name=web-http route.group= route.kind=default route.name=default client.tls=Some(Established { client_id: Some(ClientId(Name("vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local"))), negotiated_protocol: None }) client.ip=10.42.0.12';
    check(parseLinkerd(line, OBSERVED), {
      mtls: 'yes',
      src_identity: 'spiffe://cluster.local/ns/emojivoto/sa/vote-bot',
      src_namespace: 'emojivoto',
      src_ip: '10.42.0.12',
      dst_port: 8080,
      decision: 'deny',
      decision_reason: 'server=server:web-http route=default:default',
    }, line);
  });

  it('reads the proxy JSON log format (LINKERD2_PROXY_LOG_FORMAT=json)', () => {
    const record = JSON.stringify({
      timestamp: '[    72.811391s]',
      level: 'INFO',
      fields: { message: 'Request denied', 'server.kind': 'default', 'server.name': 'deny', 'route.kind': 'default', 'route.name': 'default', 'client.tls': 'None(NoClientHello)', 'client.ip': '10.203.1.120' },
      target: 'linkerd_app_inbound::policy::http',
      spans: [{ 'listen.addr': '0.0.0.0:4191', name: 'admin' }],
      threadId: 'ThreadId(2)',
    });
    check(parseLinkerd(record, OBSERVED), { decision: 'deny', mtls: 'no', src_ip: '10.203.1.120', dst_port: 4191, decision_reason: 'server=default:deny route=default:default' }, record);
    const followup = JSON.stringify({ level: 'INFO', fields: { message: 'Request failed', error: 'unauthorized request on route' } });
    expect(parseLinkerd(followup, OBSERVED)).toEqual({ ok: false, reason: 'linkerd_deny_followup' });
    const other = JSON.stringify({ level: 'INFO', fields: { message: 'Connection closed' } });
    expect(parseLinkerd(other, OBSERVED)).toEqual({ ok: false, reason: 'linkerd_not_access_record' });
  });

  it('skips tap response lines', () => {
    expect(parseLinkerd('rsp id=0:1 proxy=in  src=10.1.1.1:5000 dst=10.1.1.2:8080 tls=true :status=200 latency=1650µs', OBSERVED)).toEqual({ ok: false, reason: 'linkerd_tap_not_request' });
  });
});

describe('format detection', () => {
  it('names linkerd for every proxy log, tap and access-log record (ahead of Envoy text)', () => {
    const records = [
      ...readLines('proxy-authz-deny.log'),
      ...readLines('tap-output-wide.golden.txt'),
      ...splitRecords(readFileSync(new URL('tap-output.golden.json-stream', FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 }).records,
      '10.42.0.63:51160 traffic.booksapp.serviceaccount.identity.linkerd.cluster.local - [2022-08-23T20:28:20.071809491Z] "GET http://webapp:7000/ HTTP/2.0" 200',
      '{"client.addr":"10.42.0.1:56300","client.id":"-","host":"10.42.0.69:7000","method":"GET","status":200,"timestamp":"2022-08-23T20:33:49.254262428Z","total_ns":"1416066","uri":"/ping"}',
    ].filter((r) => !r.startsWith('#'));
    expect(records).toHaveLength(11);
    for (const record of records) expect(detectFormat(record), record).toBe('linkerd');
  });
});
