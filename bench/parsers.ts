// Parser benchmark: events/s per core for each format, and for JSON formats the ratio to bare
// `JSON.parse` of the same lines measured in the same run (DESIGN §10 target: ≥ 0.6).
// Lines are generated in the shape of the fixtures (../shared/fixtures), deterministically.
// Run alone: `node bin/run-ts.js bench/parsers.ts` (optional argument: lines per format).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Parser } from '../core/event.ts';
import { PARSERS } from '../ingest/parsers/index.ts';
import { splitRecords } from '../ingest/records.ts';

/** Lines generated per format. */
const DEFAULT_LINES = 200_000;
/** Timed rounds per measurement; the best round counts (least disturbed by GC and neighbours). */
const ROUNDS = 5;
/**
 * Alternating passes of parser and `JSON.parse`: the best of each counts, so a neighbour's burst
 * of work during one pass does not decide the ratio.
 */
const PASSES = 4;

/** A small deterministic PRNG (mulberry32), so every run parses the same lines. */
function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['reviews', 'ratings', 'details', 'productpage', 'payments', 'orders', 'cart', 'checkout'];
const NAMESPACES = ['default', 'bookinfo', 'shop', 'payments'];
const PATHS = ['/api/v1/users/{n}', '/api/v1/orders/{u}/items', '/status/{n}', '/health', '/products/{n}/reviews', '/cart/{h}'];
const FLAGS = ['-', '-', '-', '-', '-', '-', 'UF,URX', 'UH', 'NR', 'UAEX', 'DC'];
const STATUS = [200, 200, 200, 200, 201, 204, 302, 403, 404, 503, 0];
/** User agents and query strings as they appear in the fixtures. */
const USER_AGENTS = ['curl/7.73.0-DEV', 'bff_catalog', 'Apache-HttpClient/4.5.1 (Java/1.8.0_372)', 'grpc-go/1.9.1', 'Mozilla/5.0 (Windows NT 6.1; Win64; x64)', 'curl/8.14.1'];
const QUERIES = ['', '', '', '?lang=en', '?brand_category_ids={n}&brand_sw=ON&tenant_required=true&catalog_required=true'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

function hex(random: () => number, length: number): string {
  let s = '';
  while (s.length < length) s += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return s.slice(0, length);
}

function uuid(random: () => number): string {
  const h = hex(random, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function ip(random: () => number): string {
  return `10.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}`;
}

function requestPath(random: () => number): string {
  return pick(random, PATHS)
    .replace('{n}', String(Math.floor(random() * 100_000)))
    .replace('{u}', uuid(random))
    .replace('{h}', hex(random, 24));
}

function isoTime(base: number, i: number): string {
  return new Date(base + i * 7).toISOString();
}

const BASE_TIME = Date.UTC(2025, 0, 15, 12, 0, 0);

/** Istio `accessLogEncoding: JSON` lines: typed and untyped values, some with peer SANs and TLS keys. */
export function generateEnvoyJson(count: number): string[] {
  const random = createRandom(1);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const service = pick(random, SERVICES);
    const ns = pick(random, NAMESPACES);
    const status = pick(random, STATUS);
    const typed = random() < 0.5;
    const inbound = random() < 0.5;
    const num = (n: number) => (typed ? n : String(n));
    const record: Record<string, unknown> = {
      start_time: isoTime(BASE_TIME, i),
      method: pick(random, METHODS),
      path: requestPath(random) + pick(random, QUERIES).replace('{n}', String(Math.floor(random() * 1e18))),
      protocol: 'HTTP/1.1',
      response_code: num(status),
      response_flags: pick(random, FLAGS),
      response_code_details: status === 403 ? 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-all]-rule[0]]' : 'via_upstream',
      connection_termination_details: typed ? null : '-',
      upstream_transport_failure_reason: typed ? null : '-',
      bytes_received: num(Math.floor(random() * 2000)),
      bytes_sent: num(Math.floor(random() * 50_000)),
      duration: num(Math.floor(random() * 300)),
      upstream_service_time: String(Math.floor(random() * 300)),
      x_forwarded_for: random() < 0.3 ? ip(random) : typed ? null : '-',
      user_agent: pick(random, USER_AGENTS),
      request_id: uuid(random),
      authority: `${service}:9080`,
      upstream_host: `${ip(random)}:9080`,
      upstream_cluster: inbound ? 'inbound|9080||' : `outbound|9080||${service}.${ns}.svc.cluster.local`,
      upstream_local_address: `${ip(random)}:${40000 + Math.floor(random() * 20000)}`,
      downstream_local_address: `${ip(random)}:9080`,
      downstream_remote_address: `${ip(random)}:${40000 + Math.floor(random() * 20000)}`,
      requested_server_name: inbound ? `outbound_.9080_._.${service}.${ns}.svc.cluster.local` : typed ? null : '-',
      route_name: 'default',
    };
    if (random() < 0.4) {
      record.downstream_peer_uri_san = `spiffe://cluster.local/ns/${pick(random, NAMESPACES)}/sa/${pick(random, SERVICES)}`;
      record.downstream_tls_version = 'TLSv1.3';
    }
    lines.push(JSON.stringify(record));
  }
  return lines;
}

/** Istio's default text format, as in fixtures/envoy/istio-default-format.log. */
export function generateEnvoyText(count: number): string[] {
  const random = createRandom(2);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const service = pick(random, SERVICES);
    const ns = pick(random, NAMESPACES);
    const status = pick(random, STATUS);
    const inbound = random() < 0.5;
    const cluster = inbound ? 'inbound|9080||' : `outbound|9080||${service}.${ns}.svc.cluster.local`;
    const sni = inbound ? `outbound_.9080_._.${service}.${ns}.svc.cluster.local` : '-';
    const details = status === 403 ? 'rbac_access_denied_matched_policy[none]' : 'via_upstream';
    lines.push(
      `[${isoTime(BASE_TIME, i)}] "GET ${requestPath(random)} HTTP/1.1" ${status} ${pick(random, FLAGS)} ${details} - "-" 0 ${Math.floor(random() * 5000)} ${Math.floor(random() * 100)} 3 "-" "curl/8.5.0" "${uuid(random)}" "${service}:9080" "${ip(random)}:9080" ${cluster} ${ip(random)}:37652 ${ip(random)}:9080 ${ip(random)}:46520 ${sni} default`,
    );
  }
  return lines;
}

/** OPA decision events for opa-envoy-plugin (ext_authz v3 input), one per line. */
export function generateOpa(count: number): string[] {
  const random = createRandom(3);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const allowed = random() < 0.8;
    lines.push(
      JSON.stringify({
        decision_id: uuid(random),
        labels: { id: 'a6b6c2f0-1111-2222-3333-444455556666', version: '0.68.0' },
        path: 'envoy/authz/allow',
        input: {
          attributes: {
            source: { address: { socketAddress: { address: ip(random), portValue: 40000 + Math.floor(random() * 20000) } }, principal: `spiffe://cluster.local/ns/${pick(random, NAMESPACES)}/sa/${pick(random, SERVICES)}` },
            destination: { address: { socketAddress: { address: ip(random), portValue: 8000 } } },
            request: {
              time: isoTime(BASE_TIME, i),
              http: {
                id: String(Math.floor(random() * 1e15)),
                method: 'POST',
                path: requestPath(random),
                host: `${pick(random, SERVICES)}.${pick(random, NAMESPACES)}.svc.cluster.local:8000`,
                protocol: 'HTTP/1.1',
                headers: { ':authority': 'svc:8000', ':method': 'POST', 'user-agent': 'curl/8.5.0', 'x-request-id': uuid(random) },
              },
            },
          },
          parsed_path: ['api', 'v1'],
          parsed_query: {},
        },
        result: allowed ? true : { allowed: false, http_status: 403 },
        requested_by: '127.0.0.1:36412',
        timestamp: new Date(BASE_TIME + i * 7).toISOString().replace('Z', '123456Z'),
        metrics: { timer_rego_query_eval_ns: 8436166, timer_server_handler_ns: 8472125 },
      }),
    );
  }
  return lines;
}

/** `hubble observe -o json` flows: L3/L4 forwarded, policy drops and L7 HTTP. */
export function generateHubble(count: number): string[] {
  const random = createRandom(4);
  const lines: string[] = [];
  const endpoint = (ns: string, app: string) => ({
    ID: Math.floor(random() * 4000),
    identity: Math.floor(random() * 60000),
    namespace: ns,
    labels: [`k8s:app=${app}`, 'k8s:io.cilium.k8s.policy.cluster=default', `k8s:io.cilium.k8s.policy.serviceaccount=${app}`, `k8s:io.kubernetes.pod.namespace=${ns}`],
    pod_name: `${app}-v1-545db77b95-s6jb8`,
  });
  for (let i = 0; i < count; i++) {
    const time = new Date(BASE_TIME + i * 7).toISOString().replace('Z', '136834Z');
    const kind = random();
    const flow: Record<string, unknown> = {
      time,
      verdict: kind < 0.1 ? 'DROPPED' : 'FORWARDED',
      IP: { source: ip(random), destination: ip(random), ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000 + Math.floor(random() * 20000), destination_port: 9080, flags: { SYN: true } } },
      source: endpoint(pick(random, NAMESPACES), pick(random, SERVICES)),
      destination: endpoint(pick(random, NAMESPACES), pick(random, SERVICES)),
      Type: kind > 0.7 ? 'L7' : 'L3_L4',
      node_name: 'gke-node-1',
      event_type: { type: kind < 0.1 ? 1 : 4 },
      traffic_direction: 'EGRESS',
      is_reply: false,
    };
    if (kind < 0.1) flow.drop_reason_desc = 'POLICY_DENIED';
    if (kind > 0.7) {
      flow.l7 = {
        type: 'RESPONSE',
        latency_ns: String(Math.floor(random() * 1e9)),
        http: { code: pick(random, STATUS), method: 'GET', url: `http://10.0.0.1:9080${requestPath(random)}`, protocol: 'HTTP/1.1', headers: [{ key: 'X-Request-Id', value: uuid(random) }] },
      };
    }
    lines.push(JSON.stringify({ flow, node_name: 'gke-node-1', time }));
  }
  return lines;
}

/** ztunnel access lines as in fixtures/istio/ztunnel-access.log, with the time column. */
export function generateZtunnel(count: number): string[] {
  const random = createRandom(5);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const ns = pick(random, NAMESPACES);
    const src = pick(random, SERVICES);
    const dst = pick(random, SERVICES);
    const denied = random() < 0.1;
    lines.push(
      `${isoTime(BASE_TIME, i)}\t${denied ? 'error' : 'info'}\taccess\tconnection complete\tsrc.addr=${ip(random)}:42020 src.workload="${src}-v1-6584ddcf65-k78wz" src.namespace="${ns}" src.identity="spiffe://cluster.local/ns/${ns}/sa/${src}" dst.addr=${ip(random)}:15008 dst.hbone_addr=${ip(random)}:9080 dst.service="${dst}.${ns}.svc.cluster.local" dst.workload="${dst}-v1-d5789fdfb-c5w2c" dst.namespace="${ns}" dst.identity="spiffe://cluster.local/ns/${ns}/sa/${dst}" direction="inbound" bytes_sent=${Math.floor(random() * 9000)} bytes_recv=${Math.floor(random() * 900)} duration="${Math.floor(random() * 900)}ms"${denied ? ' error="connection closed due to policy rejection: allow policies exist, but none allowed"' : ''}`,
    );
  }
  return lines;
}

/**
 * Lines for the formats whose samples are few and irregular (Linkerd, identity-aware proxies,
 * Kubernetes audit): every record of the real fixture files that parses, repeated to `count`.
 */
export function repeatFixtureRecords(files: readonly string[], parser: Parser, count: number): string[] {
  const root = new URL('../../shared/fixtures/', import.meta.url);
  const usable: string[] = [];
  for (const file of files) {
    const { records } = splitRecords(readFileSync(new URL(file, root), 'utf8'), { maxLineBytes: 1024 * 1024 });
    for (const record of records) if (parser(record, Date.now()).ok) usable.push(record);
  }
  if (usable.length === 0) throw new Error(`no parseable records in ${files.join(', ')}`);
  return Array.from({ length: count }, (_, i) => usable[i % usable.length] as string);
}

/** Best-of-rounds lines per second of `run` over `lines`. `run` returns a value so work is not skipped. */
function measure(lines: readonly string[], run: (line: string) => unknown): number {
  let best = 0;
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < lines.length; i++) {
      if (run(lines[i] as string) !== undefined) sink++;
    }
    const used = process.cpuUsage(start);
    const seconds = (used.user + used.system) / 1e6;
    best = Math.max(best, lines.length / seconds);
  }
  if (sink === 0) throw new Error('benchmark did no work');
  return best;
}

interface FormatBench {
  readonly name: string;
  readonly parser: Parser;
  /** Builds the lines just before they are measured: only one format's lines are alive at a time. */
  readonly makeLines: () => string[];
  /** True when every line is JSON, so the ratio to `JSON.parse` means something. */
  readonly json: boolean | ((lines: readonly string[]) => boolean);
}

interface BenchRow {
  readonly format: string;
  readonly lines: number;
  readonly avgBytes: number;
  readonly eventsPerSecond: number;
  readonly jsonParsePerSecond: number | undefined;
  readonly rejected: number;
}

function benchFormat(bench: FormatBench): BenchRow {
  const observed = Date.now();
  const { parser } = bench;
  // Each format's lines are built here and dropped after: lines kept for other formats would be
  // a large live heap that every full GC marks, charging allocation-heavy parsers for the harness.
  const lines = bench.makeLines();
  const json = typeof bench.json === 'function' ? bench.json(lines) : bench.json;
  let rejected = 0;
  for (const line of lines) if (!parser(line, observed).ok) rejected++;
  // Warm-up: both code paths reach their optimized tiers before timing.
  const warm = lines.slice(0, Math.min(lines.length, 50_000));
  measure(warm, (line) => parser(line, observed));
  if (json) measure(warm, (line) => JSON.parse(line));
  // Alternate the two measurements so both see the same machine conditions.
  let eventsPerSecond = 0;
  let jsonParsePerSecond: number | undefined;
  for (let pass = 0; pass < PASSES; pass++) {
    eventsPerSecond = Math.max(eventsPerSecond, measure(lines, (line) => parser(line, observed)));
    if (json) jsonParsePerSecond = Math.max(jsonParsePerSecond ?? 0, measure(lines, (line) => JSON.parse(line)));
  }
  const avgBytes = Math.round(lines.reduce((n, l) => n + l.length, 0) / lines.length);
  return { format: bench.name, lines: lines.length, avgBytes, eventsPerSecond, jsonParsePerSecond, rejected };
}

function formatRate(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Runs the parser benchmark and prints one row per format. */
export async function runParserBench(linesPerFormat = DEFAULT_LINES): Promise<void> {
  const get = (name: string): Parser => {
    const entry = PARSERS[name];
    if (!entry) throw new Error(`parser ${name} is not registered`);
    return entry.parse;
  };
  const benches: FormatBench[] = [
    { name: 'envoy (JSON)', parser: get('envoy'), makeLines: () => generateEnvoyJson(linesPerFormat), json: true },
    { name: 'envoy (text)', parser: get('envoy'), makeLines: () => generateEnvoyText(linesPerFormat), json: false },
    { name: 'opa', parser: get('opa'), makeLines: () => generateOpa(Math.ceil(linesPerFormat / 2)), json: true },
    { name: 'hubble', parser: get('hubble'), makeLines: () => generateHubble(Math.ceil(linesPerFormat / 2)), json: true },
    { name: 'ztunnel', parser: get('ztunnel'), makeLines: () => generateZtunnel(Math.ceil(linesPerFormat / 2)), json: false },
  ];
  const fromFixtures: Array<[name: string, parser: string, files: string[]]> = [
    ['linkerd', 'linkerd', ['linkerd/proxy-authz-deny.log', 'linkerd/tap-output.golden.json-stream', 'linkerd/tap-output-wide.golden.txt']],
    ['oauth2-proxy', 'oauth2-proxy', ['iap/oauth2-proxy.log', 'iap/oauth2-proxy-test-expected.log']],
    ['pomerium', 'pomerium', ['iap/pomerium-authorize.ndjson']],
    ['k8s-audit', 'k8s-audit', ['k8s-audit/allowed.ndjson', 'k8s-audit/forbidden-403.json']],
  ];
  for (const [name, parserName, files] of fromFixtures) {
    const parser = get(parserName);
    const makeLines = () => repeatFixtureRecords(files, parser, Math.ceil(linesPerFormat / 4));
    // The JSON ratio only means something when every line is JSON.
    benches.push({ name: `${name}*`, parser, makeLines, json: (lines) => lines.every((l) => l.startsWith('{')) });
  }
  console.log(`parser benchmark: one core, best of ${ROUNDS} rounds × ${PASSES} passes, Node ${process.version}`);
  console.log('(* = real fixture records from ../shared/fixtures, repeated; the others are generated in their shape)');
  console.log('format        | lines   | bytes/line | events/s per core | JSON.parse lines/s | ratio | target');
  console.log('------------- | ------- | ---------- | ----------------- | ------------------ | ----- | ------');
  for (const bench of benches) {
    const row = benchFormat(bench);
    if (row.rejected > 0) throw new Error(`${row.format}: ${row.rejected} generated lines were rejected`);
    const ratio = row.jsonParsePerSecond === undefined ? undefined : row.eventsPerSecond / row.jsonParsePerSecond;
    console.log(
      [
        row.format.padEnd(13),
        String(row.lines).padEnd(7),
        String(row.avgBytes).padEnd(10),
        formatRate(row.eventsPerSecond).padEnd(17),
        (row.jsonParsePerSecond === undefined ? '—' : formatRate(row.jsonParsePerSecond)).padEnd(18),
        (ratio === undefined ? '—' : ratio.toFixed(2)).padEnd(5),
        ratio === undefined ? '—' : ratio >= 0.6 ? 'ok (≥ 0.6)' : 'BELOW 0.6',
      ].join(' | '),
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const lines = Number(process.argv[2] ?? DEFAULT_LINES);
  await runParserBench(Number.isFinite(lines) && lines > 0 ? lines : DEFAULT_LINES);
}
