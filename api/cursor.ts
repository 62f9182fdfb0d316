// Opaque page cursors: a keyset position plus a fingerprint of the query it belongs to, as
// base64url JSON. A cursor that does not decode, or that was issued for other filters or another
// order, is refused with ZTW_API_BAD_CURSOR instead of silently returning the wrong rows.
import { createHash } from 'node:crypto';
import { createError } from '../core/errors.ts';

const VERSION = 1;

/** Fingerprint of the query a cursor belongs to: its filters and order, canonically ordered. */
export function fingerprintQuery(query: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(query)
    .filter((k) => query[k] !== undefined)
    .sort();
  const canonical = JSON.stringify(keys.map((k) => [k, query[k]]));
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** Encodes a keyset position for the query with `fingerprint`. */
export function encodeCursor(fingerprint: string, position: Readonly<Record<string, string | number>>): string {
  return Buffer.from(JSON.stringify({ v: VERSION, q: fingerprint, p: position }), 'utf8').toString('base64url');
}

/** Field types a position must have, e.g. `{ t: 'number', id: 'string' }`. */
export type PositionShape = Readonly<Record<string, 'string' | 'number'>>;

/** Decodes a cursor issued for `fingerprint`; throws ZTW_API_BAD_CURSOR on anything else. */
export function decodeCursor(cursor: string, fingerprint: string, shape: PositionShape): Record<string, string | number> {
  const bad = (why: string) => createError('API_BAD_CURSOR', why);
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad('not a cursor issued by this API');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a cursor issued by this API');
  }
  if (typeof value !== 'object' || value === null) throw bad('not a cursor issued by this API');
  const { v, q, p } = value as { v?: unknown; q?: unknown; p?: unknown };
  if (v !== VERSION || typeof p !== 'object' || p === null) throw bad('not a cursor issued by this API');
  if (q !== fingerprint) throw bad('the cursor belongs to a query with other filters or another order');
  const position: Record<string, string | number> = {};
  for (const [key, type] of Object.entries(shape)) {
    const field = (p as Record<string, unknown>)[key];
    if (type === 'number' ? !(typeof field === 'number' && Number.isSafeInteger(field) && field >= 0) : !(typeof field === 'string' && field.length <= 256)) {
      throw bad('the cursor is damaged');
    }
    position[key] = field as string | number;
  }
  return position;
}
