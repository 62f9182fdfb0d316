// The text of an event batch as the engine reads it: one JSONEachRow line per event, written once
// into one buffer. The same bytes are what the tamper-evidence chain (format 2) hashes per row, so
// a row's text must be reproducible from what ClickHouse returns: the canonical text of an event is
// JSON.stringify of an object holding exactly the schema's fields in schema order (EVENT_FIELDS),
// with well-formed strings and integer numbers (what the sink's schema check and repairEvent
// guarantee). `verify` rebuilds that object from the stored columns and serializes it again.
import { EVENT_FIELDS, type NormalizedEvent } from '../core/event.ts';

/** A batch's JSONEachRow body and where each row ends in it. */
export interface EncodedEventRows {
  /** The rows, one per line, UTF-8, separated by `\n` (no newline after the last). */
  readonly body: Buffer;
  /** Byte offset just past row i (its newline excluded); row i starts after row i-1's newline. */
  readonly ends: Uint32Array;
}

/** True for what encodeEventRows returns (the store also takes a list of texts). */
export function isEncodedEventRows(value: unknown): value is EncodedEventRows {
  return typeof value === 'object' && value !== null && Buffer.isBuffer((value as { body?: unknown }).body) && (value as { ends?: unknown }).ends instanceof Uint32Array;
}

/** True when `value`'s own enumerable keys are exactly the event fields, in schema order. */
export function hasEventFieldOrder(value: object): boolean {
  let i = 0;
  for (const key in value) {
    if (key !== EVENT_FIELDS[i]) return false;
    i++;
  }
  return i === EVENT_FIELDS.length;
}

/**
 * The canonical text of an event (see the file comment). An event whose keys are already in
 * schema order (every parser starts from createEmptyEvent) is serialized as it is.
 */
export function serializeEventRow(event: NormalizedEvent): string {
  if (hasEventFieldOrder(event)) return JSON.stringify(event);
  const record = event as unknown as Record<string, unknown>;
  const ordered: Record<string, unknown> = {};
  for (const field of EVENT_FIELDS) ordered[field] = record[field];
  return JSON.stringify(ordered);
}

/**
 * One JSONEachRow body for a batch: row i is `texts[i]` when given (it must be the canonical text
 * of `events[i]`), else serialized here. Rows are written straight into one buffer, the only copy
 * handed to the engine, and their ends are kept so each row's bytes can be hashed in place.
 */
export function encodeEventRows(events: readonly NormalizedEvent[], texts?: ReadonlyArray<string | undefined>): EncodedEventRows {
  const count = events.length;
  const lines = new Array<string>(count);
  let chars = 0;
  for (let i = 0; i < count; i++) {
    const text = texts?.[i] ?? serializeEventRow(events[i] as NormalizedEvent);
    lines[i] = text;
    chars += text.length + 1;
  }
  // UTF-8 takes one byte per character for ASCII; the slack covers some wider text, and the
  // buffer grows (rarely) when a row does not fit.
  let body = Buffer.allocUnsafe(Math.max(1024, chars + (chars >> 3)));
  const ends = new Uint32Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const text = lines[i] as string;
    // A UTF-16 code unit takes at most 3 bytes; only near the end is the exact size needed.
    if (body.length - offset < text.length * 3 + 1) {
      const needed = offset + Buffer.byteLength(text, 'utf8') + 1;
      if (needed > body.length) {
        const grown = Buffer.allocUnsafe(Math.max(needed, body.length * 2));
        body.copy(grown, 0, 0, offset);
        body = grown;
      }
    }
    offset += body.write(text, offset, 'utf8');
    ends[i] = offset;
    if (i < count - 1) body[offset++] = 0x0a;
  }
  return { body: body.subarray(0, offset), ends };
}
