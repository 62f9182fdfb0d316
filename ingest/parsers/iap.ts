// Identity-aware proxies: oauth2-proxy's request and auth logs, and Pomerium's authorize log. Both
// see humans: the identity is the user's e-mail or name, never a workload, and they carry no mTLS
// facts about the mesh behind them.
import { isIP } from 'node:net';
import { createEmptyEvent, type NormalizedEvent, type ParseResult } from '../../core/event.ts';
import { namespaceOfHost, serviceOfHost } from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { looksLikeIp, splitHostPort as splitAddress } from './addresses.ts';
import { isJsonObject } from './read-values.ts';
import { parseTimestampMs } from './timestamps.ts';
import type { FormatDeclaration } from './format.ts';

/** Reasons for records that are read correctly but describe no access (start-up and debug lines). */
export const IAP_SKIP_REASONS = ['oauth2_proxy_not_access_record', 'pomerium_not_authorize_check', 'oauth2_proxy_comment_line', 'pomerium_comment_line'] as const;

/** The `oauth2-proxy` format, as the registry, the pipeline and the docs know it. */
export const OAUTH2_PROXY_FORMAT: FormatDeclaration = {
  name: 'oauth2-proxy',
  source: 'oauth2_proxy',
  parse: parseOauth2Proxy,
  description: 'oauth2-proxy request and auth logs',
  skipReasons: IAP_SKIP_REASONS.filter((reason) => reason.startsWith('oauth2_proxy_')),
  envelope: 'records',
  howToSend: 'ship its request and auth logs',
  docs: 'docs/ingest-sources.md',
};

/** The `pomerium` format, as the registry, the pipeline and the docs know it. */
export const POMERIUM_FORMAT: FormatDeclaration = {
  name: 'pomerium',
  source: 'pomerium',
  parse: parsePomerium,
  description: 'Pomerium authorize logs ("authorize check")',
  skipReasons: IAP_SKIP_REASONS.filter((reason) => reason.startsWith('pomerium_')),
  envelope: 'records',
  howToSend: 'ship its authorize logs',
  docs: 'docs/ingest-sources.md',
};

// `{{.Client}} - {{.RequestID}} - {{.Username}} [{{.Timestamp}}] ` opens request and auth lines.
const HEAD = /^(\S+) - (\S+) - (\S+) \[([^\]]{1,40})\] /;
// Request: `{{.Host}} {{.RequestMethod}} {{.Upstream}} {{.RequestURI}} {{.Protocol}} {{.UserAgent}} {{.StatusCode}} {{.ResponseSize}} {{.RequestDuration}}`
const REQUEST_TAIL = /^(\S+) (\S+) (\S+) "((?:[^"\\]|\\.)*)" (\S+) "((?:[^"\\]|\\.)*)" (\d{1,3}) (\d+|-) (\d+(?:\.\d+)?|-)\s*$/;
// Auth: `[{{.Status}}] {{.Message}}`
const AUTH_TAIL = /^\[(AuthSuccess|AuthFailure|AuthError)\] ?(.*)$/s;
// Standard: `[{{.Timestamp}}] [{{.File}}] {{.Message}}`
const STANDARD = /^\[[^\]]{1,40}\] \[[^\]]{1,200}\] /;

/** True when `head` (leading blanks removed) looks like an oauth2-proxy request, auth or standard log line. */
export function looksLikeOauth2Proxy(head: string): boolean {
  return HEAD.test(head) || GO_STANDARD.test(head);
}

/** True when `head` (leading blanks removed) looks like a Pomerium authorize log entry. */
export function looksLikePomerium(head: string): boolean {
  return head.startsWith('{') && (head.includes('"authorize check"') || head.includes('"service":"authorize"'));
}

const GO_STANDARD = /^\[\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}\] \[[^\]\s]{1,200}\.go:\d{1,6}\] /;

/**
 * Parses one oauth2-proxy log line. Reads, for example:
 * `10.19.255.4 - 6b8ad3d13f383608814dd9ef99fe7c0c - - [2024/12/12 16:23:17] svc.int5.svc.cluster.local GET - "/oauth2/auth" HTTP/1.1 "" 401 13 0.000`
 * `127.0.0.6:51671 - b849e58b-… - lvcleef@mydomain.com [2025/02/21 02:31:30] [AuthSuccess] Authenticated via OAuth2: Session{email:… user:…}`
 */
export function parseOauth2Proxy(line: string, observedTimeMs: number): ParseResult {
  const text = line.trim();
  if (text === '') return fail('oauth2_proxy_empty');
  if (text.startsWith('#')) return fail('oauth2_proxy_comment_line');
  const head = HEAD.exec(text);
  if (!head) return fail(STANDARD.test(text) ? 'oauth2_proxy_not_access_record' : 'oauth2_proxy_unrecognized_line');
  const [, client = '', requestId = '', username = '', timeText = ''] = head;
  const time = parseOauth2ProxyTime(timeText);
  if (time === undefined) return fail('oauth2_proxy_bad_timestamp');
  const event = createEmptyEvent('oauth2_proxy', observedTimeMs);
  event.time = time;
  event.reporter = 'iap';
  const addr = splitHostPort(client);
  event.src_ip = addr.ip;
  event.src_port = addr.port;
  event.request_id = requestId === '-' ? '' : requestId;
  event.src_identity = username === '-' ? '' : username;
  event.raw = line;
  const tail = text.slice(head[0].length);
  const auth = AUTH_TAIL.exec(tail);
  if (auth) return finishAuth(event, auth[1] ?? '', auth[2] ?? '');
  const request = REQUEST_TAIL.exec(tail);
  if (request) return finishRequest(event, request);
  return fail('oauth2_proxy_unrecognized_line');
}

function finishAuth(event: NormalizedEvent, status: string, message: string): ParseResult {
  if (event.src_identity === '') {
    // The username column is empty when the session has only an e-mail or only a user.
    const session = /Session\{(.{0,4096})\}/.exec(message)?.[1] ?? '';
    event.src_identity = /(?:^|\s)email:(\S+)/.exec(session)?.[1] ?? /(?:^|\s)user:(\S+)/.exec(session)?.[1] ?? '';
  }
  if (status === 'AuthSuccess') {
    event.decision = 'allow';
    event.decision_reason = 'AuthSuccess';
  } else {
    event.decision = status === 'AuthFailure' ? 'deny' : 'error';
    // The message says why (e-mail domain, group, invalid token); session dumps are left to `raw`.
    event.decision_reason = `${status}: ${message.replace(/Session\{.*$/s, '').trim()}`.slice(0, 200).trim();
  }
  return { ok: true, event };
}

function finishRequest(event: NormalizedEvent, m: RegExpExecArray): ParseResult {
  const [, host = '', method = '', upstream = '', uri = '', protocol = '', , statusText = '', sizeText = '', durationText = ''] = m;
  const status = Number(statusText);
  event.method = method.toUpperCase();
  event.path = unquote(uri);
  event.route = templateRoute(event.path);
  event.authority = host;
  event.protocol = protocol;
  event.status = status;
  event.bytes_out = sizeText === '-' ? 0 : Math.min(Number(sizeText), Number.MAX_SAFE_INTEGER);
  event.duration_ms = durationText === '-' ? 0 : Math.round(Number(durationText) * 1000);
  setDestination(event, host, upstream);
  const selfAnswered = upstream === '-';
  if (status === 401 || status === 403) {
    event.decision = 'deny';
    event.decision_reason = status === 401 ? 'unauthenticated' : 'forbidden';
  } else if (status >= 500) {
    event.decision = 'error';
  } else if (status === 302 && selfAnswered && !event.path.startsWith('/oauth2/')) {
    // No upstream and a redirect: the proxy sent an anonymous visitor to sign in.
    event.decision = 'deny';
    event.decision_reason = 'login_redirect';
  } else if (status > 0) {
    event.decision = 'allow';
  }
  return { ok: true, event };
}

function setDestination(event: NormalizedEvent, host: string, upstream: string): void {
  const fromHost = splitHostPort(host);
  event.dst_port = fromHost.port;
  // Upstream is an upstream id, a URL, or `-` when the proxy answered itself.
  const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(upstream);
  if (url) {
    const target = splitHostPort(url[1] ?? '');
    if (target.ip !== '') {
      event.dst_ip = target.ip;
      event.dst_port = target.port;
    } else {
      setServiceFromHost(event, target.host);
      return;
    }
  } else if (upstream !== '-' && !upstream.startsWith('/') && upstream !== '') {
    event.dst_service = upstream;
    return;
  }
  if (fromHost.ip !== '') event.dst_ip = event.dst_ip || fromHost.ip;
  else setServiceFromHost(event, fromHost.host);
}

/** oauth2-proxy's default `2015/03/19 17:20:19` (UTC, as containers run) or Apache `19/Mar/2015:17:20:19 -0400`. */
function parseOauth2ProxyTime(text: string): number | undefined {
  if (/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$/.test(text)) return parseTimestampMs(text);
  const apache = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (apache) {
    const [, d, monthName = '', y, h, mi, s, sign, oh, om] = apache;
    const month = MONTHS.indexOf(monthName) + 1;
    if (month === 0) return undefined;
    const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
    return utc(Number(y), month, Number(d), Number(h), Number(mi), Number(s), 0, offsetMinutes);
  }
  return undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// --- Pomerium -------------------------------------------------------------------------------------

type Fields = Record<string, unknown>;

/**
 * Parses one Pomerium authorize log entry. Reads, for example:
 * `{"level":"info","service":"authorize","request-id":"…","method":"GET","path":"/","host":"verify.example.app","ip":"74.125.217.68","email":"","allow":false,"allow-why-false":["user-unauthenticated"],"deny":false,"time":"2025-10-22T20:13:33Z","message":"authorize check"}`
 */
export function parsePomerium(line: string, observedTimeMs: number): ParseResult {
  const text = line.trim();
  if (text === '') return fail('pomerium_empty');
  if (text.startsWith('#')) return fail('pomerium_comment_line');
  if (!text.startsWith('{')) return fail('pomerium_not_json');
  let value: unknown;
  try {
    // Old versions wrote `message` twice ("OK", then "authorize check"); the last one wins here.
    value = JSON.parse(text);
  } catch {
    return fail('pomerium_bad_json');
  }
  if (!isJsonObject(value)) return fail('pomerium_not_an_object');
  const isAuthorize = value.message === 'authorize check' || (value.service === 'authorize' && typeof value.allow === 'boolean');
  if (!isAuthorize) return fail('pomerium_not_authorize_check');
  const timeText = str(value.time);
  const time = timeText.length >= 19 ? parseTimestampMs(timeText) : undefined;
  if (time === undefined) return fail('pomerium_bad_timestamp');
  const event = createEmptyEvent('pomerium', observedTimeMs);
  event.time = time;
  event.reporter = 'iap';
  event.src_identity = str(value.email) || str(value.user);
  const client = splitHostPort(str(value.ip));
  event.src_ip = client.ip;
  event.method = str(value.method).toUpperCase();
  const path = str(value.path);
  const query = str(value.query);
  event.path = query === '' ? path : `${path}?${query}`;
  event.route = templateRoute(path);
  const host = str(value.host);
  event.authority = host;
  const target = splitHostPort(host);
  event.dst_port = target.port;
  if (target.ip !== '') event.dst_ip = target.ip;
  else setServiceFromHost(event, target.host);
  event.request_id = str(value['request-id']);
  const check = value['check-request-id'];
  event.decision_id = Array.isArray(check) ? str(check[0]) : str(check);
  const status = value.status;
  if (typeof status === 'number' && Number.isInteger(status) && status >= 0 && status <= 999) event.status = status;
  decidePomerium(event, value);
  event.raw = line;
  return { ok: true, event };
}

function decidePomerium(event: NormalizedEvent, value: Fields): void {
  if (typeof value.allow !== 'boolean') return;
  const denied = value.deny === true;
  if (value.allow && !denied) {
    event.decision = 'allow';
    event.decision_reason = reasons(value['allow-why-true'] ?? value['allowed-reasons']);
  } else {
    event.decision = 'deny';
    event.decision_reason = denied ? reasons(value['deny-why-true'] ?? value['denied-reasons']) : reasons(value['allow-why-false']);
  }
}

function reasons(value: unknown): string {
  if (typeof value === 'string') return value.slice(0, 256);
  if (!Array.isArray(value)) return '';
  // Usually one reason, or none: no intermediate arrays for those.
  if (value.length === 0) return '';
  if (value.length === 1) return typeof value[0] === 'string' ? value[0].slice(0, 256) : '';
  return value
    .filter((v): v is string => typeof v === 'string')
    .join(',')
    .slice(0, 256);
}

// --- small readers -------------------------------------------------------------------------------

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Go's %q quoting: `\"` and `\\` escapes are undone, others kept as written. */
function unquote(text: string): string {
  return text.includes('\\') ? text.replace(/\\(["\\])/g, '$1') : text;
}

function splitHostPort(addr: string): { ip: string; host: string; port: number } {
  const { host, port } = splitAddress(addr.trim());
  // The cheap shape test first: node's IPv6 pattern is costly on every host name.
  return { ip: looksLikeIp(host) && isIP(host) !== 0 ? host : '', host, port };
}

/** `grafana.monitoring.svc.cluster.local` → grafana in monitoring; public hosts stay whole. */
function setServiceFromHost(event: NormalizedEvent, host: string): void {
  let known = serviceCache.get(host);
  if (!known) {
    const lower = host.toLowerCase();
    known = { service: serviceOfHost(lower), namespace: namespaceOfHost(lower) };
    if (serviceCache.size >= SERVICE_CACHE_ENTRIES) serviceCache.clear();
    serviceCache.set(host, known);
  }
  event.dst_service = known.service;
  event.dst_namespace = known.namespace;
}

// A proxy fronts a handful of hosts: their reading is remembered, bounded.
const SERVICE_CACHE_ENTRIES = 4096;
const serviceCache = new Map<string, { service: string; namespace: string }>();

function utc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, offsetMinutes: number): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const time = Date.UTC(y, mo - 1, d, h, mi, s, ms) - offsetMinutes * 60_000;
  return Number.isFinite(time) && time >= 0 ? time : undefined;
}
