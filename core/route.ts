// Route templating, part of the event model (the `route` column of every event): turns request
// paths into a low-cardinality template so that dashboards, detectors and rollups group
// `/users/1234/orders/9f1c…` and `/users/77/orders/ab12…` together as `/users/{id}/orders/{id}`.
// A character scan, no regular expressions: paths are hostile input.

/** The placeholder that replaces an identifier-like path segment. */
export const ROUTE_ID = '{id}';

/** Longest template kept, in characters; longer paths are cut and end with `/…`. */
export const MAX_ROUTE_CHARS = 256;

const MIN_HEX_ID_CHARS = 12;
const MIN_TOKEN_ID_CHARS = 16;

// Character classes as bit flags, OR-ed over a segment.
const DIGIT = 1;
const HEX = 2;
const ALPHA = 4;
const TOKEN = 8;
const OTHER = 16;
const PUNCT = 32;

// Class of each ASCII character; everything else (non-ASCII, controls) is OTHER.
const CLASSES = new Uint8Array(128).fill(OTHER);
for (let c = 48; c <= 57; c++) CLASSES[c] = DIGIT;
for (let c = 97; c <= 122; c++) CLASSES[c] = c <= 102 ? HEX : ALPHA;
for (let c = 65; c <= 90; c++) CLASSES[c] = c <= 70 ? HEX : ALPHA;
// Characters of base64/base64url and common token alphabets.
for (const c of '-_=+~') CLASSES[c.charCodeAt(0)] = TOKEN;
for (const c of '.,:') CLASSES[c.charCodeAt(0)] = PUNCT;

function classify(c: number): number {
  return c < 128 ? (CLASSES[c] as number) : OTHER;
}

function isUuid(path: string, start: number, end: number): boolean {
  if (end - start !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = path.charCodeAt(start + i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/**
 * True when a path segment names one object rather than a kind of resource: all digits
 * (optionally with `.,:-_` as in dates and versions of ids), a UUID, a hex string of 12+
 * characters with a digit, a 16+ character token mixing letters and digits (base64, ULIDs,
 * opaque keys), or an e-mail address.
 */
export function isIdSegment(path: string, start: number, end: number): boolean {
  if (end <= start) return false;
  let kinds = 0;
  let hasAt = false;
  for (let i = start; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 64 /* @ */) hasAt = true;
    kinds |= classify(c);
  }
  // A UUID passes as a token; only a UUID without a digit needs the exact check.
  return isIdKinds(path, start, end, kinds, hasAt) || isUuid(path, start, end);
}

/** The decision of isIdSegment once the segment's character classes are known. */
function isIdKinds(path: string, start: number, end: number, kinds: number, hasAt: boolean): boolean {
  const length = end - start;
  if (hasAt && length >= 3) return true;
  if ((kinds & DIGIT) === 0) return false;
  if ((kinds & ~(DIGIT | PUNCT | TOKEN)) === 0) return true;
  if ((kinds & ~(DIGIT | HEX)) === 0 && length >= MIN_HEX_ID_CHARS) return true;
  return (kinds & OTHER) === 0 && length >= MIN_TOKEN_ID_CHARS && (kinds & (HEX | ALPHA)) !== 0;
}

/** True when `path[start, end)` holds `@`. */
function hasAtSign(path: string, start: number, end: number): boolean {
  const at = path.indexOf('@', start);
  return at >= 0 && at < end;
}

/**
 * The route template of a request path: query and fragment dropped, identifier-like segments
 * replaced by `{id}`. Absolute URLs are reduced to their path first. `-`/'' give ''.
 * Examples: `/api/v1/users/1234?x=1` → `/api/v1/users/{id}`, `/status/418` → `/status/{id}`.
 */
export function templateRoute(path: string): string {
  const length = path.length;
  if (length === 0 || path === '-') return '';
  let start = 0;
  if (path.charCodeAt(0) !== 47 /* / */) {
    const scheme = path.indexOf('://');
    if (scheme > 0 && scheme < 16) {
      const slash = path.indexOf('/', scheme + 3);
      if (slash < 0) return '/';
      start = slash;
    }
  }
  // Boundaries come from indexOf, which scans natively: a character loop in JS costs several
  // times more per character. Characters are only classified in segments that could be ids.
  let end = path.indexOf('?', start);
  if (end < 0) end = length;
  const fragment = path.indexOf('#', start);
  if (fragment >= 0 && fragment < end) end = fragment;
  const at = path.indexOf('@', start);
  const mayHaveAt = at >= 0 && at < end;
  let out = '';
  let copied = start;
  for (let segStart = start; segStart <= end; ) {
    let segEnd = path.indexOf('/', segStart);
    if (segEnd < 0 || segEnd > end) segEnd = end;
    const segLength = segEnd - segStart;
    if (segLength > 0) {
      // A short segment starting with a letter (`users`, `v1`) is a name, unless it is an e-mail.
      const first = path.charCodeAt(segStart) | 0x20;
      const named = segLength < MIN_HEX_ID_CHARS && first >= 97 && first <= 122 && !(mayHaveAt && hasAtSign(path, segStart, segEnd));
      if (!named && isIdSegment(path, segStart, segEnd)) {
        out += path.slice(copied, segStart) + ROUTE_ID;
        copied = segEnd;
      }
    }
    segStart = segEnd + 1;
  }
  let route: string;
  if (copied === start) route = start === 0 && end === length ? path : path.slice(start, end);
  else route = out + path.slice(copied, end);
  return route.length <= MAX_ROUTE_CHARS ? route : route.slice(0, MAX_ROUTE_CHARS - 2) + '/…';
}
