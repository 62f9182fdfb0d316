// Opaque page cursors: a keyset position plus a fingerprint of the query it belongs to, as
// base64url JSON, signed with HMAC-SHA256 under this installation's cursor key. A cursor that does
// not decode, whose signature does not match (built or altered by a client), or that was issued
// for other filters or another order, is refused with ZTW_API_BAD_CURSOR instead of silently
// returning the wrong rows.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';

/** Name of the file under `dataDir` that holds the generated cursor key. */
export const CURSOR_KEY_FILE = 'cursor.key';

// Until configured, a key of this process only: cursors then last as long as the process.
let cursorKey: Buffer = randomBytes(32);

/** Signs cursors from now on with `key` (see resolveCursorKey). */
export function configureCursorKey(key: Buffer): void {
  cursorKey = key;
}

/**
 * The installation's cursor key: `http.cursorSecret` when set; otherwise a random key generated
 * once and kept in `<dataDir>/cursor.key` (mode 0600), so cursors survive restarts; undefined for
 * an in-memory data dir (the process key stays).
 */
export function resolveCursorKey(config: FrozenConfig): Buffer | undefined {
  if (config.http.cursorSecret !== '') return createHash('sha256').update(config.http.cursorSecret).digest();
  if (config.dataDir === ':memory:') return undefined;
  const file = join(config.dataDir, CURSOR_KEY_FILE);
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(text)) return Buffer.from(text, 'hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}

function sign(payload: string): Buffer {
  return createHmac('sha256', cursorKey).update(payload).digest();
}

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
  const payload = Buffer.from(JSON.stringify({ v: VERSION, q: fingerprint, p: position }), 'utf8').toString('base64url');
  return `${payload}.${sign(payload).toString('base64url')}`;
}

/** Field types a position must have, e.g. `{ t: 'number', id: 'string' }`. */
export type PositionShape = Readonly<Record<string, 'string' | 'number'>>;

/** Decodes a cursor issued for `fingerprint`; throws ZTW_API_BAD_CURSOR on anything else. */
export function decodeCursor(cursor: string, fingerprint: string, shape: PositionShape): Record<string, string | number> {
  const bad = (why: string) => createError('API_BAD_CURSOR', why);
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(cursor);
  if (!match) throw bad('not a cursor issued by this API');
  const payload = match[1] as string;
  const signature = Buffer.from(match[2] as string, 'base64url');
  if (signature.length !== 32 || !timingSafeEqual(signature, sign(payload))) throw bad('not a cursor issued by this API (bad signature)');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
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
