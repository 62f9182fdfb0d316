// Timestamps and durations as sources write them (RFC 3339 with or without fraction or zone,
// epoch seconds/ms/µs/ns, Go durations), read without regular expressions and never throwing.
import { parseDecimal } from './read-values.ts';

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
