// Linkerd: the proxy's HTTP access log (`config.linkerd.io/access-log: json | apache`), the
// proxy's "Request denied" authorization log lines, and `linkerd viz tap` output. Linkerd names
// workloads `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`; those are
// mapped to SPIFFE form so one identity reads the same whatever the mesh.
import { isIP } from 'node:net';
import { createEmptyEvent, type NormalizedEvent, type ParseResult } from '../../core/event.ts';
import { buildSpiffeId, canonicalizeIdentity, namespaceOfHost, serviceOfHost, workloadOfPod } from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { looksLikeIp, splitHostPort as splitAddress } from './addresses.ts';
import { parseTimestampMs } from './timestamps.ts';
import type { FormatDeclaration } from './format.ts';

/**
 * Reasons for records that are read correctly but stand for no request of their own; callers may
 * count them without treating them as damage.
 */
export const LINKERD_SKIP_REASONS = ['linkerd_deny_followup', 'linkerd_tap_not_request', 'linkerd_not_access_record', 'linkerd_comment_line'] as const;

/** The `linkerd` format, as the registry, the pipeline and the docs know it. */
export const LINKERD_FORMAT: FormatDeclaration = {
  name: 'linkerd',
  source: 'linkerd',
  parse: parseLinkerd,
  description: 'Linkerd proxy access logs (json, apache), "Request denied" authorization lines, `linkerd viz tap` requests',
  skipReasons: LINKERD_SKIP_REASONS,
  envelope: 'records',
  howToSend: '`config.linkerd.io/access-log: json`',
  docs: 'docs/ingest-sources.md',
};

/** A Linkerd identity split into its parts. */
export interface LinkerdIdentity {
  /** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` */
  readonly uri: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly trustDomain: string;
}

const IDENTITY_MARK = '.serviceaccount.identity.';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Splits `web.emojivoto.serviceaccount.identity.linkerd.cluster.local` into its parts; undefined
 * when the name is not a Linkerd workload identity.
 */
export function parseLinkerdIdentity(name: string): LinkerdIdentity | undefined {
  // A mesh has few identities and every request repeats one: remember the answers.
  const known = identityCache.get(name);
  if (known !== undefined || identityCache.has(name)) return known;
  const parsed = splitLinkerdIdentity(name);
  if (identityCache.size >= IDENTITY_CACHE_ENTRIES) identityCache.clear();
  identityCache.set(name, parsed);
  return parsed;
}

const IDENTITY_CACHE_ENTRIES = 4096;
const identityCache = new Map<string, LinkerdIdentity | undefined>();

function splitLinkerdIdentity(name: string): LinkerdIdentity | undefined {
  const mark = name.indexOf(IDENTITY_MARK);
  if (mark <= 0 || name.length > 512) return undefined;
  const left = name.slice(0, mark);
  const right = name.slice(mark + IDENTITY_MARK.length);
  // Namespaces are single DNS labels, service-account names may hold dots: split at the last dot.
  const dot = left.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const serviceAccount = left.slice(0, dot);
  const namespace = left.slice(dot + 1);
  // The first label after the mark is the control plane's namespace (usually `linkerd`).
  const controlDot = right.indexOf('.');
  if (controlDot <= 0) return undefined;
  const trustDomain = right.slice(controlDot + 1);
  if (!DNS_LABEL.test(namespace) || trustDomain === '' || /[\s/]/.test(serviceAccount + trustDomain)) return undefined;
  return { uri: buildSpiffeId(namespace, serviceAccount, trustDomain), namespace, serviceAccount, trustDomain };
}

/**
 * Canonical form of an identity as Linkerd reports it: SPIFFE URI when it is a Linkerd workload
 * name, unchanged when it is already a URI or some other name, '' for none (`-`, empty).
 */
export function canonicalLinkerdIdentity(name: string): string {
  const trimmed = name.trim();
  return parseLinkerdIdentity(trimmed)?.uri ?? canonicalizeIdentity(trimmed);
}

/**
 * Parses one Linkerd record. Reads, for example:
 * `{"client.addr":"10.42.0.70:32996","client.id":"traffic.booksapp.serviceaccount.identity.linkerd.cluster.local","host":"webapp:7000","method":"GET","status":200,"timestamp":"2022-08-23T20:33:42.321746212Z","total_ns":"14441135","uri":"http://webapp:7000/",…}`
 * `10.42.0.63:51160 traffic.booksapp.serviceaccount.identity.linkerd.cluster.local - [2022-08-23T20:28:20.071809491Z] "GET http://webapp:7000/ HTTP/2.0" 200`
 * `[ 524.425112s] INFO ThreadId(01) inbound:server{port=8085}: linkerd_app_inbound::policy::authorize::http: Request denied server=metrics-api tls=None(NoClientHello) client=192.168.1.253:37900`
 * `req id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls=true :method=GET :authority=localhost :path=/some/path`
 */
export function parseLinkerd(line: string, observedTimeMs: number): ParseResult {
  const text = line.trim();
  if (text === '') return fail('linkerd_empty');
  if (text.startsWith('#')) return fail('linkerd_comment_line');
  if (text.startsWith('{')) return parseJsonRecord(line, text, observedTimeMs);
  if (text.startsWith('req id=')) return parseTapWide(line, text, observedTimeMs);
  if (/^(rsp|end) id=/.test(text)) return fail('linkerd_tap_not_request');
  const denied = text.indexOf('Request denied');
  if (denied >= 0) return parseDenyLine(line, text, denied, observedTimeMs);
  if (/request failed error=unauthorized/i.test(text)) return fail('linkerd_deny_followup');
  if (PROXY_LOG_HEAD.test(text)) return fail('linkerd_not_access_record');
  if (isVizTableLine(text)) return fail('linkerd_viz_output_not_a_log');
  if (PROM_SAMPLE.test(text)) return fail('linkerd_metrics_not_a_log');
  const apache = APACHE_LINE.exec(text);
  if (apache) return parseApacheLine(line, apache, observedTimeMs);
  return fail('linkerd_unrecognized_line');
}

/**
 * True when `head` (a record's first characters, leading blanks removed) looks like a Linkerd
 * access log entry, proxy log line or tap event; used by format detection.
 */
export function looksLikeLinkerd(head: string): boolean {
  if (head.startsWith('{')) {
    return (
      head.includes('"requestInitEvent"') ||
      head.includes('"responseInitEvent"') ||
      head.includes('"responseEndEvent"') ||
      (head.includes('"client.addr"') && head.includes('"total_ns"')) ||
      head.includes('"target":"linkerd')
    );
  }
  return TAP_WIDE_HEAD.test(head) || PROXY_LOG_HEAD.test(head) || APACHE_LINE.test(head.trimEnd());
}

const TAP_WIDE_HEAD = /^(req|rsp|end) id=\d+:\d+ proxy=/;

type Fields = Record<string, unknown>;

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonRecord(raw: string, text: string, observedTimeMs: number): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('linkerd_bad_json');
  }
  if (!isObject(value)) return fail('linkerd_not_an_object');
  if ('requestInitEvent' in value) return parseTapJson(raw, value, observedTimeMs);
  if ('responseInitEvent' in value || 'responseEndEvent' in value) return fail('linkerd_tap_not_request');
  const fields = value.fields;
  if (isObject(fields) && typeof fields.message === 'string') return parseJsonProxyLog(raw, value, fields, observedTimeMs);
  if ('client.addr' in value || ('uri' in value && 'status' in value)) return parseAccessJson(raw, value, observedTimeMs);
  return fail('linkerd_unknown_json');
}

// --- access log -----------------------------------------------------------------------------

function parseAccessJson(raw: string, record: Fields, observedTimeMs: number): ParseResult {
  const time = parseTimestampString(str(record.timestamp));
  if (time === undefined) return fail('linkerd_bad_timestamp');
  const status = toInt(record.status);
  if (status === undefined || status > 999) return fail('linkerd_bad_status');
  const event = createEmptyEvent('linkerd', observedTimeMs);
  event.time = time;
  event.reporter = 'inbound';
  setClient(event, str(record['client.addr']), str(record['client.id']));
  setRequest(event, str(record.method), str(record.uri), str(record.host), str(record.version));
  setOutcome(event, status);
  event.bytes_in = toInt(record.request_bytes) ?? 0;
  event.bytes_out = toInt(record.response_bytes) ?? 0;
  event.duration_ms = Math.round((toInt(record.total_ns) ?? 0) / 1e6);
  event.trace_id = str(record.trace_id);
  event.raw = raw;
  return { ok: true, event };
}

// `<client addr> <client id> <user> [<time>] "<method> <uri> <version>" <status> [<bytes>]`
const APACHE_LINE = /^(\S+) (\S+) (\S+) \[([^\]]{1,64})\] "([A-Z]{1,16}) (\S+) (HTTP\/[0-9.]{1,4})" (\d{1,3})(?: (\d+|-))?\s*$/;

function parseApacheLine(raw: string, match: RegExpExecArray, observedTimeMs: number): ParseResult {
  const [, addr = '', id = '', , timeText = '', method = '', uri = '', version = '', statusText = '', bytes = ''] = match;
  const time = parseTimestampString(timeText);
  if (time === undefined) return fail('linkerd_bad_timestamp');
  const event = createEmptyEvent('linkerd', observedTimeMs);
  event.time = time;
  event.reporter = 'inbound';
  setClient(event, addr, id);
  setRequest(event, method, uri, '', version);
  setOutcome(event, Number(statusText));
  event.bytes_out = toInt(bytes) ?? 0;
  event.raw = raw;
  return { ok: true, event };
}

function setClient(event: NormalizedEvent, addr: string, id: string): void {
  const client = splitHostPort(addr);
  event.src_ip = client.ip;
  event.src_port = client.port;
  const identity = id === '-' ? undefined : parseLinkerdIdentity(id);
  event.src_identity = identity?.uri ?? canonicalLinkerdIdentity(id);
  event.src_namespace = identity?.namespace ?? '';
  // The inbound proxy logs the client's identity only when the connection was Linkerd mTLS.
  event.mtls = event.src_identity === '' ? 'no' : 'yes';
}

function setRequest(event: NormalizedEvent, method: string, uri: string, host: string, version: string): void {
  event.method = method.toUpperCase();
  let authority = host;
  let path = uri;
  // HTTP/2 requests are logged in absolute form (`http://webapp:7000/authors`).
  const absolute = uri.charCodeAt(0) === 47 /* / */ ? null : /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/i.exec(uri);
  if (absolute) {
    authority = authority || (absolute[1] ?? '');
    path = absolute[2] || '/';
  }
  event.path = path;
  event.route = templateRoute(path);
  event.authority = authority;
  event.protocol = version;
  setDestinationFromAuthority(event, authority);
}

interface Destination {
  readonly ip: string;
  readonly port: number;
  readonly service: string;
  readonly namespace: string;
}

// A proxy serves a handful of authorities: their reading is remembered, bounded.
const DESTINATION_CACHE_ENTRIES = 4096;
const destinationCache = new Map<string, Destination>();

function readDestination(authority: string): Destination {
  const known = destinationCache.get(authority);
  if (known) return known;
  const { ip, host, port } = splitHostPort(authority);
  const destination = ip !== '' ? { ip, port, service: '', namespace: '' } : { ip: '', port, service: serviceOfHost(host), namespace: namespaceOfHost(host) };
  if (destinationCache.size >= DESTINATION_CACHE_ENTRIES) destinationCache.clear();
  destinationCache.set(authority, destination);
  return destination;
}

function setDestinationFromAuthority(event: NormalizedEvent, authority: string): void {
  const destination = readDestination(authority);
  event.dst_port = destination.port;
  if (destination.ip !== '') {
    event.dst_ip = destination.ip;
    return;
  }
  event.dst_service = destination.service;
  event.dst_namespace = event.dst_namespace || destination.namespace;
}

function setOutcome(event: NormalizedEvent, status: number): void {
  event.status = status;
  if (status === 401 || status === 403) {
    event.decision = 'deny';
    event.decision_reason = `http_${status}`;
  } else if (status >= 500 || status === 0) {
    event.decision = status === 0 ? 'unknown' : 'error';
  } else {
    event.decision = 'allow';
  }
}

// --- authorization denials --------------------------------------------------------------------

// `[ 524.425112s]` is time since the proxy started, not wall time: the event keeps observed time.
const PROXY_LOG_HEAD = /^(?:(\S+) (\S+) )?\[\s*\d+(?:\.\d+)?s\]\s+([A-Z]+)\s/;

function parseDenyLine(raw: string, text: string, deniedAt: number, observedTimeMs: number): ParseResult {
  const head = PROXY_LOG_HEAD.exec(text);
  if (!head) return fail('linkerd_unrecognized_line');
  const fields = parseKeyValues(text.slice(deniedAt + 'Request denied'.length));
  const spans = text.slice(head[0].length, deniedAt);
  const port = /\{port=(\d+)\}/.exec(spans)?.[1] ?? /listen\.addr=([^\s}]+)/.exec(spans)?.[1] ?? '';
  return buildDenyEvent(raw, fields, port, head[1] ?? '', observedTimeMs);
}

// `LINKERD2_PROXY_LOG_FORMAT=json`: the same fields, under `fields`, with spans as objects.
function parseJsonProxyLog(raw: string, record: Fields, fields: Fields, observedTimeMs: number): ParseResult {
  const message = str(fields.message);
  if (/^request failed$/i.test(message) && /unauthorized/i.test(str(fields.error))) return fail('linkerd_deny_followup');
  if (message !== 'Request denied') return fail('linkerd_not_access_record');
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) flat[key] = str(value);
  let port = '';
  if (Array.isArray(record.spans)) {
    for (const span of record.spans) {
      if (!isObject(span)) continue;
      port = port || str(span.port) || str(span['listen.addr']);
    }
  }
  return buildDenyEvent(raw, flat, port, '', observedTimeMs);
}

function buildDenyEvent(raw: string, fields: Record<string, string>, portOrAddr: string, pod: string, observedTimeMs: number): ParseResult {
  const event = createEmptyEvent('linkerd', observedTimeMs);
  event.reporter = 'inbound';
  event.decision = 'deny';
  event.status = 403;
  const client = splitHostPort(fields.client ?? fields['client.addr'] ?? fields['client.ip'] ?? '');
  event.src_ip = client.ip;
  event.src_port = client.port;
  const tls = fields.tls ?? fields['client.tls'] ?? '';
  if (tls.startsWith('None')) event.mtls = 'no';
  else if (tls.startsWith('Some')) event.mtls = 'yes';
  const clientId = /Name\("([^"]{1,512})"\)/.exec(tls)?.[1] ?? fields['client.id'] ?? '';
  const identity = parseLinkerdIdentity(clientId);
  event.src_identity = identity?.uri ?? canonicalLinkerdIdentity(clientId);
  event.src_namespace = identity?.namespace ?? '';
  const addr = splitHostPort(portOrAddr.includes(':') ? portOrAddr : `0.0.0.0:${portOrAddr}`);
  event.dst_port = addr.port;
  if (pod !== '') event.dst_service = workloadOfPod(pod);
  event.decision_reason = describeDenial(fields).slice(0, 256);
  event.raw = raw;
  return { ok: true, event };
}

function describeDenial(fields: Record<string, string>): string {
  if (fields.server !== undefined) return `server=${fields.server}`;
  const server = joinKindName(fields['server.kind'], fields['server.name']);
  const route = joinKindName(fields['route.kind'], fields['route.name']);
  const parts = [server && `server=${server}`, route && `route=${route}`].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : 'unauthorized';
}

function joinKindName(kind: string | undefined, name: string | undefined): string {
  if (!name) return '';
  return kind ? `${kind}:${name}` : name;
}

/**
 * Reads `key=value` pairs; a value runs to the next space outside brackets and quotes, so
 * `tls=Some(Established { client_id: … })` stays whole.
 */
function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const n = Math.min(text.length, 8192);
  let i = 0;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    const keyStart = i;
    while (i < n && /[\w.:-]/.test(text[i] as string)) i++;
    const key = text.slice(keyStart, i);
    if (text[i] !== '=' || key === '') {
      // Not a pair: skip the word.
      while (i < n && text[i] !== ' ') i++;
      continue;
    }
    i++;
    const valueStart = i;
    let depth = 0;
    let quoted = false;
    for (; i < n; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '\\') i++;
        else if (c === '"') quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === '(' || c === '{' || c === '[') depth++;
      else if (c === ')' || c === '}' || c === ']') depth = Math.max(0, depth - 1);
      else if (c === ' ' && depth === 0) break;
    }
    out[key] = text.slice(valueStart, i);
  }
  return out;
}

// --- tap ------------------------------------------------------------------------------------------

function parseTapJson(raw: string, record: Fields, observedTimeMs: number): ParseResult {
  const init = record.requestInitEvent;
  if (!isObject(init)) return fail('linkerd_tap_bad_request');
  const source = isObject(record.source) ? record.source : {};
  const destination = isObject(record.destination) ? record.destination : {};
  const srcMeta = isObject(source.metadata) ? source.metadata : {};
  const dstMeta = isObject(destination.metadata) ? destination.metadata : {};
  const event = createEmptyEvent('linkerd', observedTimeMs);
  const direction = str(record.proxyDirection).toUpperCase();
  event.reporter = direction === 'INBOUND' ? 'inbound' : direction === 'OUTBOUND' ? 'outbound' : 'unknown';
  event.src_ip = tapIp(source.ip);
  event.src_port = toPort(source.port);
  event.dst_ip = tapIp(destination.ip);
  event.dst_port = toPort(destination.port);
  const method = isObject(init.method) ? str(init.method.registered) || str(init.method.unregistered) : str(init.method);
  const authority = str(init.authority);
  event.method = method.toUpperCase();
  event.path = str(init.path);
  event.route = templateRoute(event.path);
  event.authority = authority;
  const scheme = isObject(init.scheme) ? str(init.scheme.registered) : str(init.scheme);
  event.protocol = scheme.toLowerCase();
  applyTapMetadata(event, 'src', srcMeta);
  applyTapMetadata(event, 'dst', dstMeta);
  if (event.dst_service === '') setDestinationFromAuthority(event, authority);
  event.mtls = tapTls(event.reporter === 'inbound' ? [srcMeta.tls, dstMeta.tls] : [dstMeta.tls, srcMeta.tls]);
  event.raw = raw;
  return { ok: true, event };
}

// `req id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls=true :method=GET :authority=localhost :path=/some/path  dst_pod=my-pod dst_tls=true`
function parseTapWide(raw: string, text: string, observedTimeMs: number): ParseResult {
  const fields = parseKeyValues(text.slice(4));
  const event = createEmptyEvent('linkerd', observedTimeMs);
  event.reporter = fields.proxy === 'in' ? 'inbound' : fields.proxy === 'out' ? 'outbound' : 'unknown';
  const src = splitHostPort(fields.src ?? '');
  const dst = splitHostPort(fields.dst ?? '');
  event.src_ip = src.ip;
  event.src_port = src.port;
  event.dst_ip = dst.ip;
  event.dst_port = dst.port;
  event.method = (fields[':method'] ?? '').toUpperCase();
  event.path = fields[':path'] ?? '';
  event.route = templateRoute(event.path);
  event.authority = fields[':authority'] ?? '';
  const srcMeta: Fields = {};
  const dstMeta: Fields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key.startsWith('src_')) srcMeta[key.slice(4)] = value;
    else if (key.startsWith('dst_')) dstMeta[key.slice(4)] = value;
  }
  applyTapMetadata(event, 'src', srcMeta);
  applyTapMetadata(event, 'dst', dstMeta);
  if (event.dst_service === '') setDestinationFromAuthority(event, event.authority);
  event.mtls = tapTls([fields.tls, event.reporter === 'inbound' ? srcMeta.tls : dstMeta.tls]);
  event.raw = raw;
  return { ok: true, event };
}

function applyTapMetadata(event: NormalizedEvent, side: 'src' | 'dst', meta: Fields): void {
  const namespace = str(meta.namespace);
  const workload = str(meta.deployment) || str(meta.statefulset) || str(meta.daemonset) || workloadOfPod(str(meta.pod));
  if (side === 'src') {
    event.src_namespace = namespace;
    event.src_workload = workload;
    const id = canonicalLinkerdIdentity(str(meta.client_id));
    if (id !== '') event.src_identity = id;
  } else {
    event.dst_namespace = namespace;
    event.dst_service = str(meta.service) || workload;
    const id = canonicalLinkerdIdentity(str(meta.server_id));
    if (id !== '') event.dst_identity = id;
  }
}

function tapTls(values: readonly unknown[]): NormalizedEvent['mtls'] {
  for (const value of values) {
    const text = str(value);
    if (text === 'true') return 'yes';
    if (text !== '') return 'no';
  }
  return 'unknown';
}

function tapIp(value: unknown): string {
  if (typeof value === 'string') return isIP(value) ? value : '';
  // Older tap JSON carried `{ "ipv4": <uint32> }`.
  if (isObject(value) && typeof value.ipv4 === 'number' && Number.isInteger(value.ipv4) && value.ipv4 >= 0 && value.ipv4 <= 0xffffffff) {
    const n = value.ipv4;
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  return '';
}

// --- viz and metrics output that is not a log ------------------------------------------------------

const PROM_SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?\s+[-+]?(?:\d|NaN|Inf)\S*(?:\s+\d+)?$/;

function isVizTableLine(text: string): boolean {
  if (/^ROUTE\s+SERVER\s/.test(text) || /^NAME\s+.*\bRPS\b/.test(text)) return true;
  // Table rows: several columns separated by runs of spaces, one of them a rate.
  return /\s\d+(\.\d+)?rps\s/.test(` ${text} `) && /\S\s{2,}\S/.test(text);
}

// --- small readers -------------------------------------------------------------------------------------

function str(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return '';
}

function toInt(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 15) return undefined;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  return n;
}

function toPort(value: unknown): number {
  const n = toInt(value);
  return n !== undefined && n <= 65535 ? n : 0;
}

/** `10.0.0.1:80`, `[ff01::1]:0`, `host:port`, `host` → parts; ip '' when the host is not an IP. */
function splitHostPort(addr: string): { ip: string; host: string; port: number } {
  const { host, port } = splitAddress(addr.trim());
  // The cheap shape test first: node's IPv6 pattern is costly on every host name.
  return { ip: looksLikeIp(host) && isIP(host) !== 0 ? host : '', host, port };
}

/** Whole timestamps only: RFC 3339 with any number of fraction digits (Linkerd writes nanoseconds). */
function parseTimestampString(text: string): number | undefined {
  return text.length >= 19 ? parseTimestampMs(text) : undefined;
}
