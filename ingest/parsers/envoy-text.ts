// Envoy / Istio text access logs. Reads, for example (Istio's default format):
// [2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" "curl/7.73.0-DEV" "84961386-…" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 outbound_.8000_._.httpbin.foo.svc.cluster.local default
// Layouts recognised by their quoting pattern: Envoy's default format, Istio's 1.9+ default,
// Istio 1.3–1.8 (one quoted Mixer field after the flags), and `KEY=%OPERATOR%` custom formats;
// anything else keeps its head (time, request, status, flags) and is searched for TLS and RBAC
// details. A `kubectl logs`/stern/compose `<pod> <container> ` prefix before the time is skipped.
import type { ParseOptions, ParseResult, Source } from '../../core/event.ts';
import { scanLogfmt } from './logfmt.ts';
import { parseDecimal } from './read-values.ts';
import { buildEnvoyEvent } from './envoy-event.ts';
import { compileKeyTable, SLOT, type KeyTable } from './envoy-keys.ts';
import { EnvoyFields } from './envoy-record.ts';

/** Most tokens read from one line; later ones are ignored (no known layout has more than 22). */
const MAX_TOKENS = 40;
/** Longest prefix (pod, container, compose service) skipped before the `[time]`. */
const MAX_PREFIX_CHARS = 512;

// Reused between lines: parsing is synchronous, so one line at a time owns them.
const tokens: string[] = new Array<string>(MAX_TOKENS).fill('');
const quoted: boolean[] = new Array<boolean>(MAX_TOKENS).fill(false);
const fields = new EnvoyFields();

/** Splits `line` from `from` into space-separated tokens; `"…"` runs are one token. Returns the count. */
function tokenize(line: string, from: number): number {
  const len = line.length;
  let count = 0;
  let i = from;
  while (i < len && count < MAX_TOKENS) {
    while (i < len && line.charCodeAt(i) === 32) i++;
    if (i >= len) break;
    if (line.charCodeAt(i) === 34 /* " */) {
      // A quote closes at the next `"` followed by a space or the end of the line, so a value
      // holding a lone quote (user agents do) stays in one piece.
      let close = line.indexOf('"', i + 1);
      while (close >= 0 && close + 1 < len && line.charCodeAt(close + 1) !== 32) close = line.indexOf('"', close + 1);
      if (close < 0) close = len;
      tokens[count] = line.slice(i + 1, close);
      quoted[count] = true;
      i = close + 1;
    } else {
      const start = i;
      while (i < len && line.charCodeAt(i) !== 32) i++;
      tokens[count] = line.slice(start, i);
      quoted[count] = false;
    }
    count++;
  }
  return count;
}

function isNumber(text: string): boolean {
  return parseDecimal(text) >= 0;
}

function token(index: number, count: number): string {
  return index < count ? (tokens[index] as string) : '';
}

/** True when the line starts with `KEY=value` (an Envoy format written as `KEY=%OPERATOR%` pairs). */
function startsWithPair(line: string, from: number): boolean {
  for (let i = from; i < line.length && i < from + 128; i++) {
    const c = line.charCodeAt(i);
    if (c === 61 /* = */) return i > from;
    const word = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || (c >= 48 && c <= 57 && i > from);
    if (!word) return false;
  }
  return false;
}

/** Position of the `[` that opens the time after a short prefix, or -1. */
function findTimeBracket(line: string, from: number): number {
  const limit = Math.min(line.length, from + MAX_PREFIX_CHARS);
  let at = line.indexOf(' [', from);
  while (at >= 0 && at < limit) {
    const c = line.charCodeAt(at + 2);
    if (c >= 48 && c <= 57) {
      // The prefix is a few names, never a quoted request.
      return line.lastIndexOf('"', at) >= from ? -1 : at + 1;
    }
    at = line.indexOf(' [', at + 2);
  }
  return -1;
}

function readPairs(line: string, from: number, table: KeyTable, f: EnvoyFields): void {
  scanLogfmt(line, from, (key, value) => {
    const lower = key.toLowerCase();
    const slot = table.slots.get(key) ?? table.slots.get(lower);
    if (slot === undefined) return;
    if (slot === SLOT.override) {
      const field = table.overrides.get(key) ?? table.overrides.get(lower);
      if (field !== undefined) f.assignOverride(field, value);
    } else f.assign(slot, value);
  });
}

/** Fills the request line `METHOD PATH PROTOCOL` (`- - -` for TCP). */
function readRequest(request: string, f: EnvoyFields): void {
  const first = request.indexOf(' ');
  if (first < 0) {
    f.assign(SLOT.method, request);
    return;
  }
  const last = request.lastIndexOf(' ');
  f.assign(SLOT.method, request.slice(0, first));
  if (last > first) {
    f.assign(SLOT.path, request.slice(first + 1, last));
    f.assign(SLOT.protocol, request.slice(last + 1));
  } else {
    f.assign(SLOT.path, request.slice(first + 1));
  }
}

/** The fields after `"%UPSTREAM_HOST%"` in both Istio layouts, starting at token `at`. */
function readIstioTail(at: number, count: number, f: EnvoyFields): void {
  f.assign(SLOT.cluster, token(at, count));
  f.assign(SLOT.downstreamLocal, token(at + 2, count));
  f.assign(SLOT.downstreamRemote, token(at + 3, count));
  if (at + 4 < count) f.assign(SLOT.sni, token(at + 4, count));
}

/** Envoy's default: … flags rx tx duration upstream_ms "xff" "ua" "request_id" "authority" "upstream_host". */
function readCommonMiddle(at: number, count: number, f: EnvoyFields): void {
  f.assign(SLOT.bytesIn, token(at, count));
  f.assign(SLOT.bytesOut, token(at + 1, count));
  f.assign(SLOT.duration, token(at + 2, count));
  f.assign(SLOT.forwardedFor, token(at + 4, count));
  f.assign(SLOT.requestId, token(at + 6, count));
  f.assign(SLOT.authority, token(at + 7, count));
  f.assign(SLOT.upstreamHost, token(at + 8, count));
}

/** For lines in no known layout: pick up what can be recognised by its shape alone. */
function readLooseTail(from: number, count: number, f: EnvoyFields): void {
  for (let i = from; i < count; i++) {
    const t = tokens[i] as string;
    if (f.upstreamFailure === '' && (t.indexOf('TLS') >= 0 || t.indexOf('OPENSSL') >= 0)) f.assign(SLOT.upstreamFailure, t);
    else if (f.details === '' && t.indexOf('rbac_access_denied') >= 0) f.assign(SLOT.details, t);
    else if (f.cluster === '' && !quoted[i] && (t.startsWith('outbound|') || t.startsWith('inbound|'))) f.assign(SLOT.cluster, t);
  }
}

/**
 * Parses one Envoy/Istio text access-log line. `raw` is what the event keeps (the JSON reader
 * passes the whole wrapper when the text came inside `{"log": …}`).
 */
export function parseEnvoyText(line: string, observedTimeMs: number, options?: ParseOptions, source: Source = 'envoy', raw: string = line): ParseResult {
  const f = fields.reset();
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9 || line.charCodeAt(i) === 0xfeff)) i++;
  if (i >= line.length) return { ok: false, reason: 'envoy_empty' };
  const first = line.charCodeAt(i);
  if (first === 35 /* # */) return { ok: false, reason: 'envoy_comment' };

  if (first !== 91 /* [ */ && startsWithPair(line, i)) {
    readPairs(line, i, compileKeyTable(options?.fieldMap), f);
    return buildEnvoyEvent(f, raw, observedTimeMs, source);
  }
  let open = i;
  if (first !== 91) {
    open = findTimeBracket(line, i);
    if (open < 0) {
      // An access-log line whose time was cut off (or never there) cannot be placed in time.
      const looksLikeAccessLog = first === 34 || line.indexOf(' HTTP/') >= 0 || line.indexOf('HTTP/1') >= 0;
      return { ok: false, reason: looksLikeAccessLog ? 'envoy_bad_timestamp' : 'envoy_unrecognized' };
    }
  }
  const close = line.indexOf(']', open);
  if (close < 0 || close - open > 64) return { ok: false, reason: 'envoy_unrecognized' };
  // `[time][thread][level][logger]` is Envoy's application (debug) log, not an access log.
  if (line.charCodeAt(close + 1) === 91) return { ok: false, reason: 'envoy_app_log' };
  f.startTime = line.slice(open + 1, close);

  const count = tokenize(line, close + 1);
  if (count < 2 || !quoted[0]) return { ok: false, reason: 'envoy_unrecognized' };
  readRequest(tokens[0] as string, f);
  f.assign(SLOT.status, tokens[1]);
  f.assign(SLOT.flags, token(2, count));

  if (count >= 15 && !quoted[3] && !quoted[4] && quoted[5] && quoted[10]) {
    // Istio 1.9+: details term_details "transport_failure" rx tx dur ust "xff" "ua" "id" "authority" "upstream" cluster …
    f.assign(SLOT.details, tokens[3]);
    f.assign(SLOT.termDetails, tokens[4]);
    f.assign(SLOT.upstreamFailure, tokens[5]);
    readCommonMiddle(6, count, f);
    readIstioTail(15, count, f);
  } else if (count >= 13 && quoted[3] && !quoted[4] && quoted[8]) {
    // Istio 1.3–1.8: "mixer_status" rx tx dur ust "xff" "ua" "id" "authority" "upstream" cluster …
    readCommonMiddle(4, count, f);
    readIstioTail(13, count, f);
  } else if (count >= 12 && !quoted[3] && quoted[7] && isNumber(tokens[3] as string)) {
    readCommonMiddle(3, count, f);
    readLooseTail(12, count, f);
  } else {
    readLooseTail(3, count, f);
  }
  return buildEnvoyEvent(f, raw, observedTimeMs, source);
}
