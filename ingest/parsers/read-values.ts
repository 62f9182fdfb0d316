// Reading untrusted values out of parsed records: JSON objects, text, counts, statuses, ports,
// bounded text and trace ids. None of them throws; a value of the wrong kind reads as empty or 0.

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

/** Cuts `text` to at most `maxChars`, for fields that must stay bounded (reasons, routes). */
export function truncateText(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : text.slice(0, maxChars);
}

/** The first `trace-id` in a W3C `traceparent` header (`00-<32 hex>-<16 hex>-01`), or ''. */
export function traceIdFromTraceparent(header: string): string {
  if (header.length < 55 || header.charCodeAt(2) !== 45) return '';
  return header.slice(3, 35);
}
