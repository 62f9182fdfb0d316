// Helpers every parser shares: timestamps, numbers, addresses, logfmt fields and TLS failure
// reasons. All of them take untrusted text, never throw, and avoid regular expressions on the hot
// path (no backtracking on hostile input, no per-call allocation beyond the result).

/** A JSON object as `JSON.parse` returns it, before any field is trusted. */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses `text` as JSON and returns it when it is an object; undefined for anything else. */
export function parseJsonObject(text: string): JsonObject | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isJsonObject(value) ? value : undefined;
}

/** Index of the first character that is not a space, tab, CR or BOM; `text.length` when none. */
export function skipSpace(text: string, from = 0): number {
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10 && c !== 0xfeff) break;
    i++;
  }
  return i;
}

/** A string value with Envoy's "unset" spellings (`-`, null, missing) as ''. */
export function readText(value: unknown): string {
  if (typeof value === 'string') return value === '-' ? '' : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return '';
}

/**
 * A non-negative integer from a number or a decimal string (`"56"`, `"1.5"` → 1); 0 for `-`,
 * null, negative or unreadable values. Values above `max` are clamped.
 */
export function readCount(value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') n = parseDecimal(value);
  else return 0;
  if (!(n > 0)) return 0;
  return n >= max ? max : Math.floor(n);
}

/**
 * `text.startsWith(prefix)` for short ASCII prefixes, as a character loop: on the per-line path
 * it costs less than the builtin's call.
 */
export function hasPrefix(text: string, prefix: string): boolean {
  if (text.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (text.charCodeAt(i) !== prefix.charCodeAt(i)) return false;
  return true;
}

/** Parses an unsigned decimal (optionally with a fraction); NaN when `text` is anything else. */
export function parseDecimal(text: string): number {
  const len = text.length;
  if (len === 0 || len > 32) return Number.NaN;
  let n = 0;
  let i = 0;
  let digits = 0;
  for (; i < len; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
    digits++;
  }
  if (i < len) {
    if (text.charCodeAt(i) !== 46 /* . */) return Number.NaN;
    let scale = 0.1;
    for (i++; i < len; i++) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return Number.NaN;
      n += c * scale;
      scale /= 10;
      digits++;
    }
  }
  return digits === 0 ? Number.NaN : n;
}

/** An HTTP status from a number or string; 0 (none) when absent, `-`, or outside 0–999. */
export function readStatus(value: unknown): number {
  const n = readCount(value, 1000);
  return n >= 1000 ? 0 : n;
}

/** A TCP/UDP port, 0 when absent or out of range. */
export function readPort(value: unknown): number {
  const n = readCount(value, 65536);
  return n > 65535 ? 0 : n;
}

// ---------------------------------------------------------------------------------------------
// Memo for derived values of repeating strings

/** Longest key a StringMemo keeps: names and identities are far shorter. */
export const MAX_MEMO_KEY_CHARS = 1024;

/** A bounded string-keyed memo (see createStringMemo). */
export interface StringMemo<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
}

/**
 * A memo for values derived from strings that repeat across lines (cluster names, SPIFFE IDs).
 * A Map hashes every character of each fresh key; here the bucket comes from the length and
 * eight characters spread over the key, and a lookup compares the key with the few entries of
 * its bucket. Names that differ in a few characters only (`reviews`, `ratings`) may share a
 * bucket: they cost one more comparison each, never a recomputation. Holds at most `capacity`
 * entries (rounded up to a power of two); when full it starts over. Keys longer than
 * MAX_MEMO_KEY_CHARS are not kept (get misses, set does nothing), so hostile input cannot fill
 * the memo with megabyte strings.
 */
export function createStringMemo<V>(capacity: number): StringMemo<V> {
  let size = 1;
  while (size < capacity) size <<= 1;
  const mask = size - 1;
  let keys: Array<string[] | undefined> = new Array<string[] | undefined>(size).fill(undefined);
  let values: Array<V[] | undefined> = new Array<V[] | undefined>(size).fill(undefined);
  let entries = 0;
  // Eight characters spread over the key: names that differ only in their middle (service and
  // namespace inside a cluster name or SPIFFE ID) mostly land in different buckets.
  const bucketOf = (key: string): number => {
    const n = key.length;
    if (n === 0) return 0;
    const e = n >> 3;
    let h = n;
    h = (h * 31 + key.charCodeAt(e)) | 0;
    h = (h * 31 + key.charCodeAt(e * 2)) | 0;
    h = (h * 31 + key.charCodeAt(e * 3)) | 0;
    h = (h * 31 + key.charCodeAt(e * 4)) | 0;
    h = (h * 31 + key.charCodeAt(e * 5)) | 0;
    h = (h * 31 + key.charCodeAt(e * 6)) | 0;
    h = (h * 31 + key.charCodeAt(e * 7)) | 0;
    h = (h * 31 + key.charCodeAt(n - 1)) | 0;
    return (h ^ (h >>> 11)) & mask;
  };
  return {
    get(key) {
      const bucket = bucketOf(key);
      const bucketKeys = keys[bucket];
      if (bucketKeys === undefined) return undefined;
      for (let i = 0; i < bucketKeys.length; i++) {
        if (bucketKeys[i] === key) return (values[bucket] as V[])[i];
      }
      return undefined;
    },
    set(key, value) {
      if (key.length > MAX_MEMO_KEY_CHARS) return;
      if (entries >= size) {
        keys = new Array<string[] | undefined>(size).fill(undefined);
        values = new Array<V[] | undefined>(size).fill(undefined);
        entries = 0;
      }
      const bucket = bucketOf(key);
      const bucketKeys = keys[bucket];
      if (bucketKeys === undefined) {
        keys[bucket] = [key];
        values[bucket] = [value];
        entries++;
        return;
      }
      const at = bucketKeys.indexOf(key);
      if (at >= 0) {
        (values[bucket] as V[])[at] = value;
      } else {
        bucketKeys.push(key);
        (values[bucket] as V[]).push(value);
        entries++;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Timestamps

function readDigits(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Milliseconds since the epoch (UTC) of an RFC 3339 / ISO 8601 timestamp: `2021-10-04T14:28:43.062066108Z`,
 * `2024-09-23T22:32:47+00:00`, `2024-09-26 11:40:13.329` (no zone = UTC), any number of fraction
 * digits (truncated to ms). Also accepts epoch numbers (seconds below 1e11, else milliseconds).
 * Undefined when the text is not a valid time; never throws.
 */
export function parseTimestampMs(value: unknown): number | undefined {
  if (typeof value === 'number') return epochToMs(value);
  if (typeof value !== 'string') return undefined;
  const text = value;
  const len = text.length;
  // The two most common shapes, `2016-04-15T20:17:00.310Z` (Envoy's %START_TIME%) and
  // `2016-04-15T20:17:00Z`, take a fast path.
  if ((len === 24 && text.charCodeAt(23) === 90 /* Z */ && text.charCodeAt(19) === 46 /* . */) || (len === 20 && text.charCodeAt(19) === 90)) {
    const fast = parseUtcTime(text, len === 24);
    if (fast >= 0) return fast;
  }
  if (len < 10 || len > 64) {
    return len > 0 && len < 10 ? epochToMs(parseDecimal(text)) : undefined;
  }
  if (text.charCodeAt(4) !== 45 /* - */ || text.charCodeAt(7) !== 45) {
    // `/` separated dates (2024/12/12 16:22:57) read the same way; anything else may be epoch.
    if (text.charCodeAt(4) === 47 && text.charCodeAt(7) === 47) return parseDateTime(text, len);
    return epochToMs(parseDecimal(text));
  }
  return parseDateTime(text, len);
}

// The day of the last `YYYY-MM-DD` seen by the fast path, and its epoch ms; likewise the last
// minute (`YYYY-MM-DDTHH:MM:`). Log lines arrive in time order, so most lines only read their
// seconds and milliseconds, and the calendar arithmetic runs about once a day.
let cachedDay = '';
let cachedDayMs = 0;
// The minute is kept as character codes, not as a slice of the line: reading a sliced string goes
// through its parent on every character.
const MINUTE_CHARS = 17;
const cachedMinute = new Uint8Array(MINUTE_CHARS);
let hasCachedMinute = false;
let cachedMinuteMs = 0;

/** True when `text` starts with the cached minute; compared from the end, where times differ. */
function isCachedMinute(text: string): boolean {
  for (let i = MINUTE_CHARS - 1; i >= 0; i--) if (text.charCodeAt(i) !== cachedMinute[i]) return false;
  return true;
}

/**
 * Fast path for `2016-04-15T20:17:00.310Z` (Envoy's `%START_TIME%` default; `withMillis`) and
 * `2016-04-15T20:17:00Z`; -1 when the text is not exactly in that shape (the general parser
 * then decides). The caller has checked the length, the `Z` and the `.`.
 */
function parseUtcTime(text: string, withMillis: boolean): number {
  let minuteMs: number;
  if (hasCachedMinute && isCachedMinute(text)) {
    minuteMs = cachedMinuteMs;
  } else {
    if (text.charCodeAt(4) !== 45 /* - */ || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 /* T */ || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return -1;
    let dayMs: number;
    if (cachedDay !== '' && text.startsWith(cachedDay)) {
      dayMs = cachedDayMs;
    } else {
      const day = parseDateTime(text.slice(0, 10), 10);
      if (day === undefined) return -1;
      cachedDay = text.slice(0, 10);
      cachedDayMs = dayMs = day;
    }
    const hour = readDigits(text, 11, 2);
    const minute = readDigits(text, 14, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return -1;
    minuteMs = dayMs + (hour * 60 + minute) * 60_000;
    // Every character of the minute was checked above (digits, `-`, `T`, `:`): all ASCII.
    for (let i = 0; i < MINUTE_CHARS; i++) cachedMinute[i] = text.charCodeAt(i);
    hasCachedMinute = true;
    cachedMinuteMs = minuteMs;
  }
  const second = readDigits(text, 17, 2);
  const millis = withMillis ? readDigits(text, 20, 3) : 0;
  if (second < 0 || second > 60 || millis < 0) return -1;
  return minuteMs + second * 1000 + millis;
}

function parseDateTime(text: string, len: number): number | undefined {
  const year = readDigits(text, 0, 4);
  const month = readDigits(text, 5, 2);
  const day = readDigits(text, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > (DAYS_IN_MONTH[month - 1] as number)) return undefined;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return undefined;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let millis = 0;
  let offsetMinutes = 0;
  let i = 10;
  if (i < len) {
    const sep = text.charCodeAt(i);
    if (sep !== 84 /* T */ && sep !== 116 /* t */ && sep !== 32) return undefined;
    if (len < 16 || text.charCodeAt(13) !== 58 /* : */) return undefined;
    hour = readDigits(text, 11, 2);
    minute = readDigits(text, 14, 2);
    i = 16;
    if (i < len && text.charCodeAt(i) === 58) {
      second = readDigits(text, 17, 2);
      i = 19;
    }
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60 || i > len) return undefined;
    if (i < len && (text.charCodeAt(i) === 46 /* . */ || text.charCodeAt(i) === 44 /* , */)) {
      i++;
      let scale = 100;
      const start = i;
      while (i < len) {
        const c = text.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        millis += c * scale;
        scale /= 10;
        i++;
      }
      if (i === start) return undefined;
      millis = Math.floor(millis);
    }
    if (i < len) {
      const z = text.charCodeAt(i);
      if (z === 90 /* Z */ || z === 122 /* z */) {
        i++;
      } else if (z === 43 /* + */ || z === 45 /* - */) {
        const oh = readDigits(text, i + 1, 2);
        let om = 0;
        let next = i + 3;
        if (next < len && text.charCodeAt(next) === 58) next++;
        if (next < len) {
          om = readDigits(text, next, 2);
          next += 2;
        }
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined;
        offsetMinutes = (z === 43 ? 1 : -1) * (oh * 60 + om);
        i = next;
      }
      if (i !== len) return undefined;
    }
  }
  const ms = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + millis;
  return ms >= 0 ? ms : undefined;
}

function epochToMs(n: number): number | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  // Seconds until year 5138; milliseconds after that point would be absurd as seconds anyway.
  return Math.floor(n < 1e11 ? n * 1000 : n);
}

/**
 * A duration such as `7571ms`, `1.5s`, `250us`, `3m` (Go/Rust duration spellings) in whole
 * milliseconds; a bare number counts as milliseconds. 0 when unreadable.
 */
export function parseDurationMs(text: string): number {
  const len = text.length;
  if (len === 0 || len > 40) return 0;
  let end = len;
  while (end > 0) {
    const c = text.charCodeAt(end - 1);
    if ((c >= 48 && c <= 57) || c === 46) break;
    end--;
  }
  const n = parseDecimal(text.slice(0, end));
  if (!(n >= 0)) return 0;
  const unit = text.slice(end);
  let ms: number;
  switch (unit) {
    case '':
    case 'ms':
      ms = n;
      break;
    case 's':
      ms = n * 1000;
      break;
    case 'us':
    case 'µs':
      ms = n / 1000;
      break;
    case 'ns':
      ms = n / 1e6;
      break;
    case 'm':
      ms = n * 60_000;
      break;
    default:
      return 0;
  }
  return Math.floor(ms);
}

// ---------------------------------------------------------------------------------------------
// Addresses

/**
 * Splits `10.0.0.1:8080`, `[fe80::1]:443`, `tcp://10.0.2.1:80` into ip and port. A bare IPv6
 * address or a host without a port keeps port 0. `-` and '' give empty parts.
 */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = portColon(address);
  return { host: hostBefore(address, colon), port: portAfter(address, colon) };
}

/**
 * Index of the `:` that separates the port in `address`, or -1: none, or a bare IPv6 address.
 * A `scheme://` prefix is allowed before the host.
 */
function portColon(address: string): number {
  // indexOf first: most hosts have no colon at all, and it scans faster than lastIndexOf.
  const first = address.indexOf(':');
  if (first < 0) return -1;
  const colon = address.lastIndexOf(':');
  if (colon === address.length - 1) return -1;
  if (first === colon) return colon;
  if (address.charCodeAt(colon - 1) === 93 /* ] */) return colon;
  // `tcp://host:port`: the only other colon is the scheme's.
  return address.startsWith('://', first) && address.indexOf(':', first + 3) === colon ? colon : -1;
}

/** The host part of an address (as splitHostPort), without allocating a pair: for hot paths. */
export function addressHost(address: string): string {
  return hostBefore(address, portColon(address));
}

function hostBefore(address: string, colon: number): string {
  if (address === '' || address === '-') return '';
  const scheme = address.indexOf('://');
  const from = scheme > 0 && scheme < 10 ? scheme + 3 : 0;
  let end = colon < 0 ? address.length : colon;
  let start = from;
  if (address.charCodeAt(start) === 91 /* [ */) {
    start++;
    if (address.charCodeAt(end - 1) === 93) end--;
  }
  return start === 0 && end === address.length ? address : address.slice(start, end);
}

/** The port of an address (as splitHostPort), without allocating a pair: for hot paths. */
export function addressPort(address: string): number {
  return portAfter(address, portColon(address));
}

function portAfter(address: string, colon: number): number {
  if (colon < 0 || address.length - colon > 6) return 0;
  let n = 0;
  for (let i = colon + 1; i < address.length; i++) {
    const c = address.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : 0;
}

/** True for dotted-quad IPv4 or anything holding a colon (IPv6); hostnames are false. */
export function looksLikeIp(host: string): boolean {
  if (host.indexOf(':') >= 0) return true;
  let dots = 0;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 46) dots++;
    else if (c < 48 || c > 57) return false;
  }
  return dots === 3;
}

// ---------------------------------------------------------------------------------------------
// logfmt-style `key=value key="quoted value"` fields (ztunnel, Envoy custom text formats)

/**
 * Calls `onField(key, value)` for each `key=value` pair of `text` from `from` on. Values may be
 * double-quoted with backslash escapes. Words without `=` are skipped. Linear in the input.
 */
export function scanLogfmt(text: string, from: number, onField: (key: string, value: string) => void): void {
  const len = text.length;
  let i = from;
  while (i < len) {
    while (i < len && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    const keyStart = i;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c === 61 /* = */ || c === 32 || c === 9) break;
      i++;
    }
    if (i >= len || text.charCodeAt(i) !== 61) {
      // A bare word: skip it (and a quoted run it may start, so its spaces don't split it).
      if (i < len && text.charCodeAt(keyStart) === 34) i = skipQuoted(text, keyStart);
      continue;
    }
    const key = text.slice(keyStart, i);
    i++;
    let value: string;
    if (i < len && text.charCodeAt(i) === 34 /* " */) {
      const end = skipQuoted(text, i);
      value = unescapeQuoted(text, i + 1, end - 1 > i ? end - 1 : i + 1);
      i = end;
    } else {
      const start = i;
      while (i < len && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
      value = text.slice(start, i);
    }
    if (key !== '') onField(key, value);
  }
}

/** Index just past the closing quote of the quoted run starting at `open` (or the end of text). */
function skipQuoted(text: string, open: number): number {
  let i = open + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) i += 2;
    else if (c === 34) return i + 1;
    else i++;
  }
  return text.length;
}

function unescapeQuoted(text: string, start: number, end: number): string {
  const body = text.slice(start, end);
  if (body.indexOf('\\') < 0) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '\\' && i + 1 < body.length) {
      const n = body[++i] as string;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TLS failures

/** Reasons from outside OpenSSL that still mean "the TLS handshake could not happen". */
const TLS_PHRASES: ReadonlyArray<readonly [string, string]> = [
  ['peer did not return a certificate', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
  ['secret is not supplied by sds', 'SECRET_NOT_SUPPLIED_BY_SDS'],
  // Envoy's certificate validator states the verification failure in prose.
  ['verify cert failed', 'CERTIFICATE_VERIFY_FAILED'],
  ['certificate verify failed', 'CERTIFICATE_VERIFY_FAILED'],
  // rustls wording (ztunnel): map onto the OpenSSL reasons a reader already knows.
  ['peer sent no certificates', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
  ['invalid peer certificate: expired', 'CERTIFICATE_EXPIRED'],
  ['invalid peer certificate: unknownissuer', 'CERTIFICATE_VERIFY_FAILED'],
  ['invalid peer certificate: notvalidforname', 'CERTIFICATE_VERIFY_FAILED'],
  ['invalid peer certificate: badsignature', 'CERTIFICATE_VERIFY_FAILED'],
  ['received fatal alert: unknownca', 'TLSV1_ALERT_UNKNOWN_CA'],
  ['received fatal alert: certificateexpired', 'SSLV3_ALERT_CERTIFICATE_EXPIRED'],
  ['received fatal alert: badcertificate', 'SSLV3_ALERT_BAD_CERTIFICATE'],
  ['received fatal alert: certificaterequired', 'TLSV13_ALERT_CERTIFICATE_REQUIRED'],
  ['received fatal alert: handshakefailure', 'SSLV3_ALERT_HANDSHAKE_FAILURE'],
];

const OPENSSL_MARK = 'OPENSSL_internal:';
const MAX_REASON_CHARS = 64;

/**
 * The OpenSSL/BoringSSL reason constant in an Envoy transport failure, in upper snake case:
 * both `TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end`
 * and `TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED` give
 * `CERTIFICATE_VERIFY_FAILED`; a bare constant is returned as is; `-`/'' and texts without a TLS
 * failure give ''. When several errors are queued, the first one wins (it is the root cause).
 */
export function normalizeTlsFailure(text: string): string {
  if (text.length < 3 || text === '-') return '';
  const mark = text.indexOf(OPENSSL_MARK);
  if (mark >= 0) return readReasonConstant(text, mark + OPENSSL_MARK.length);
  if (isReasonConstant(text)) return text;
  // Lower-casing is only paid for texts that already talk about TLS or certificates.
  const lower = text.length <= 2048 ? text.toLowerCase() : text.slice(0, 2048).toLowerCase();
  if (lower.indexOf('tls') < 0 && lower.indexOf('cert') < 0 && lower.indexOf('sds') < 0 && lower.indexOf('alert') < 0) return '';
  for (const [phrase, reason] of TLS_PHRASES) {
    if (lower.indexOf(phrase) >= 0) return reason;
  }
  return '';
}

/** Reads `[A-Za-z0-9_ ]` from `at` up to `:`/`}`/end and upper-snakes it (`Connection reset by peer`). */
function readReasonConstant(text: string, at: number): string {
  let end = at;
  const limit = Math.min(text.length, at + MAX_REASON_CHARS);
  while (end < limit) {
    const c = text.charCodeAt(end);
    const word = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 32;
    if (!word) break;
    end++;
  }
  let reason = text.slice(at, end).trim();
  // `CLIENTHELLO_TLSEXT 268435646:SSL routines:…` queues a second error after a space.
  const space = reason.indexOf(' ');
  if (space > 0 && isReasonConstant(reason.slice(0, space))) reason = reason.slice(0, space);
  return reason.replace(/ +/g, '_').toUpperCase();
}

function isReasonConstant(text: string): boolean {
  if (text.length < 5 || text.length > MAX_REASON_CHARS || text.indexOf('_') < 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95)) return false;
  }
  return true;
}

/** Cuts `text` to at most `maxChars`, for fields that must stay bounded (reasons, routes). */
export function truncateText(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : text.slice(0, maxChars);
}

/** The first `trace-id` in a W3C `traceparent` header (`00-<32 hex>-<16 hex>-01`), or ''. */
export function traceIdFromTraceparent(header: string): string {
  if (header.length < 55 || header.charCodeAt(2) !== 45) return '';
  return header.slice(3, 35);
}
