// Splits a request or file body into records, whatever its framing: NDJSON, one JSON array (each
// element one record), pretty-printed JSON objects one after another, or plain text lines — and
// mixes of these. Blank lines are skipped. Bounded: a record longer than `maxLineBytes` comes back
// as a rejection (`record_too_long`) with a cut-down raw text, never as a giant string to parse.
// One pass over the text; no regular expressions; binary junk only produces rejections.

/** How the body is split. */
export interface SplitOptions {
  /** Longest record accepted, in UTF-8 bytes (`ingest.maxLineBytes`). */
  readonly maxLineBytes: number;
}

/** A piece of the body that is not handed to a parser, with the reason. */
export interface RejectedRecord {
  readonly raw: string;
  readonly reason: string;
}

export interface SplitResult {
  readonly records: string[];
  readonly rejected: RejectedRecord[];
}

/** Characters of a rejected record's raw text kept for the dead-letter path. */
export const REJECTED_RAW_CHARS = 4096;

const LF = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;
const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR || c === LF || c === 0xfeff;
}

/** UTF-8 length of `text` without encoding it when its UTF-16 length already decides. */
function exceedsBytes(text: string, start: number, end: number, maxBytes: number): boolean {
  const chars = end - start;
  if (chars > maxBytes) return true;
  if (chars * 3 <= maxBytes) return false;
  return Buffer.byteLength(text.slice(start, end), 'utf8') > maxBytes;
}

function cutRaw(text: string, start: number, end: number): string {
  if (end - start <= REJECTED_RAW_CHARS) return text.slice(start, end);
  return `${text.slice(start, start + REJECTED_RAW_CHARS)}…[truncated, ${end - start} characters in all]`;
}

/** Where a JSON value scan stopped. */
const SCAN_COMPLETE = 0;
/** The text ended (or a new top-level value started at column 0) before the value closed. */
const SCAN_TRUNCATED = 1;
/** The value ran past the character limit. */
const SCAN_TOO_LONG = 2;

// Result of the last scanValue call (the scanner is synchronous; no object per call).
let scanEnd = 0;
let scanStatus = SCAN_COMPLETE;

/**
 * Scans the JSON value starting at `start` (an object, array, string or scalar) and sets
 * `scanEnd` just past it. Brackets are counted outside strings only; a `{` or `[` at the start of
 * a line inside an unclosed object means the object was cut short and a new one begins there.
 */
function scanValue(text: string, start: number, limit: number): void {
  const len = text.length;
  const first = text.charCodeAt(start);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET && first !== QUOTE) {
    let i = start;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE || isBlank(c)) break;
      i++;
    }
    scanEnd = i;
    scanStatus = SCAN_COMPLETE;
    return;
  }
  let depth = 0;
  let inString = false;
  const stop = Math.min(len, start + limit);
  for (let i = start; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        if (depth === 0) {
          scanEnd = i + 1;
          scanStatus = SCAN_COMPLETE;
          return;
        }
      } else if (c === LF) {
        // JSON strings never hold a raw newline: this value is broken; resynchronise at the line.
        inString = false;
      }
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth > 0 && i > start && text.charCodeAt(i - 1) === LF) {
        scanEnd = i;
        scanStatus = SCAN_TRUNCATED;
        return;
      }
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth <= 0) {
        scanEnd = i + 1;
        scanStatus = SCAN_COMPLETE;
        return;
      }
    }
  }
  scanEnd = stop;
  scanStatus = stop < len ? SCAN_TOO_LONG : SCAN_TRUNCATED;
}

function nextNonBlank(text: string, from: number): number {
  let i = from;
  while (i < text.length && isBlank(text.charCodeAt(i))) i++;
  return i;
}

function lineEndFrom(text: string, from: number): number {
  const lf = text.indexOf('\n', from);
  return lf < 0 ? text.length : lf;
}

/**
 * Re-serializes one array element compactly (so every record is one line of JSON); an element
 * that is not valid JSON is passed on as written, for its parser to reject with its own reason.
 */
function compactElement(element: string): string {
  try {
    return JSON.stringify(JSON.parse(element)) ?? element;
  } catch {
    return element;
  }
}

/**
 * A pretty-printed object is compacted when valid (same form as NDJSON records); otherwise it is
 * passed on as written so the parser reports it.
 */
function compactObject(text: string): string {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? JSON.stringify(value) : text;
  } catch {
    return text;
  }
}

/** Splits `text` into records (see the file comment). Never throws. */
export function splitRecords(text: string, options: SplitOptions): SplitResult {
  const records: string[] = [];
  const rejected: RejectedRecord[] = [];
  createRecordSplitter(text, options).next(Number.POSITIVE_INFINITY, records, rejected);
  return { records, rejected };
}

/** Splits one text a few records at a time, so a caller can yield to other work in between. */
export interface RecordSplitter {
  /** True once the whole text is split. */
  readonly done: boolean;
  /** Appends at least one and about `maxItems` more records or rejections (fewer at the end). */
  next(maxItems: number, records: string[], rejected: RejectedRecord[]): void;
}

/** A splitter over `text`; `splitRecords` is one call of `next` with no limit. */
export function createRecordSplitter(text: string, options: SplitOptions): RecordSplitter {
  const maxBytes = Math.max(1, options.maxLineBytes);
  const len = text.length;
  let pos = 0;
  /** Inside a JSON array of objects whose elements are records. */
  let inArray = false;

  const step = (records: string[], rejected: RejectedRecord[]): void => {
    if (inArray) {
      pos = splitArrayElement(text, pos, maxBytes, records, rejected);
      inArray = !arrayEnded;
      return;
    }
    const lineEnd = lineEndFrom(text, pos);
    let s = pos;
    while (s < lineEnd && isBlank(text.charCodeAt(s))) s++;
    if (s >= lineEnd) {
      pos = lineEnd + 1;
      return;
    }
    const c = text.charCodeAt(s);

    if (c === OPEN_BRACKET) {
      const after = nextNonBlank(text, s + 1);
      const next = text.charCodeAt(after);
      if (next === OPEN_BRACE || next === CLOSE_BRACKET) {
        pos = s + 1;
        inArray = true;
        return;
      }
    } else if (c === OPEN_BRACE && startsMultiLineObject(text, s, lineEnd)) {
      scanValue(text, s, maxBytes);
      let end = scanEnd;
      if (scanStatus === SCAN_TOO_LONG) {
        // Find where the oversized object ends (or where the next record starts) and refuse it whole.
        scanValue(text, s, Number.POSITIVE_INFINITY);
        end = scanEnd;
        rejected.push({ raw: cutRaw(text, s, end), reason: 'record_too_long' });
      } else if (scanStatus === SCAN_TRUNCATED) {
        rejected.push({ raw: cutRaw(text, s, end), reason: 'truncated_json' });
      } else if (exceedsBytes(text, s, end, maxBytes)) {
        rejected.push({ raw: cutRaw(text, s, end), reason: 'record_too_long' });
      } else {
        records.push(compactObject(text.slice(s, end)));
      }
      pos = end;
      return;
    }

    let e = lineEnd;
    while (e > s && isBlank(text.charCodeAt(e - 1))) e--;
    if (exceedsBytes(text, s, e, maxBytes)) rejected.push({ raw: cutRaw(text, s, e), reason: 'record_too_long' });
    else records.push(s === pos && e === lineEnd ? text.slice(pos, lineEnd) : text.slice(s, e));
    pos = lineEnd + 1;
  };

  return {
    get done() {
      return pos >= len;
    },
    next(maxItems, records, rejected) {
      const stop = records.length + rejected.length + Math.max(1, maxItems);
      while (pos < len && records.length + rejected.length < stop) step(records, rejected);
    },
  };
}

/**
 * True when the `{` at `s` opens an object that continues on the next lines: the line ends
 * inside it (not with `}`), and the next non-blank line is indented or closes it. A one-line
 * object cut short (truncated NDJSON) stays a single record.
 */
function startsMultiLineObject(text: string, s: number, lineEnd: number): boolean {
  let e = lineEnd;
  while (e > s && isBlank(text.charCodeAt(e - 1))) e--;
  if (text.charCodeAt(e - 1) === CLOSE_BRACE) return false;
  if (e === s + 1) return true;
  const last = text.charCodeAt(e - 1);
  if (last !== COMMA && last !== OPEN_BRACE && last !== OPEN_BRACKET) return false;
  const nextLine = lineEnd + 1;
  if (nextLine >= text.length) return false;
  const n = text.charCodeAt(nextLine);
  return n === SPACE || n === TAB || n === CLOSE_BRACE;
}

/** Set by splitArrayElement: the array closed (or the text ended, or a truncated element stopped it). */
let arrayEnded = false;

/**
 * Takes the next element of the array being split (its `[` lies before `from`): one record or
 * rejection at most. Returns where scanning stopped; sets `arrayEnded` when the array is over.
 */
function splitArrayElement(text: string, from: number, maxBytes: number, records: string[], rejected: RejectedRecord[]): number {
  let i = from;
  const len = text.length;
  arrayEnded = false;
  while (i < len) {
    i = nextNonBlank(text, i);
    if (i >= len) break;
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACKET) {
      arrayEnded = true;
      return i + 1;
    }
    if (c === COMMA) {
      i++;
      continue;
    }
    scanValue(text, i, maxBytes);
    let end = scanEnd;
    if (scanStatus === SCAN_TOO_LONG) {
      // Refuse the oversized element whole and go on with its neighbours.
      scanValue(text, i, Number.POSITIVE_INFINITY);
      end = scanEnd;
      rejected.push({ raw: cutRaw(text, i, end), reason: 'record_too_long' });
      // scanValue sets scanStatus again; the cast stops TypeScript keeping the narrowing from above.
      if ((scanStatus as number) !== SCAN_COMPLETE) arrayEnded = true;
      return end;
    }
    if (scanStatus === SCAN_TRUNCATED) {
      rejected.push({ raw: cutRaw(text, i, end), reason: 'truncated_json' });
      arrayEnded = true;
      return end;
    }
    if (end === i) {
      // A stray closing brace: skip it rather than loop.
      rejected.push({ raw: cutRaw(text, i, i + 1), reason: 'bad_json_array' });
      return i + 1;
    }
    const element = compactElement(text.slice(i, end));
    if (exceedsBytes(element, 0, element.length, maxBytes)) rejected.push({ raw: cutRaw(element, 0, element.length), reason: 'record_too_long' });
    else records.push(element);
    return end;
  }
  // The array never closed after its last complete element: nothing received is lost.
  arrayEnded = true;
  return len;
}
