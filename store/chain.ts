// Tamper evidence: every batch the sink stores is chained by hash. A batch's hash is
// SHA-256(previous hash + rows digest), where the rows digest is SHA-256 over the batch's rows in
// event_id order, one `event_id \t time \t SHA-256(row content)` line each. `verifyChain` recomputes
// all of it from the `events` table and names what changed: a modified, deleted or added row (one
// that no batch lists, e.g. forged with a new event_id, or a copy), a deleted batch, a reordered or
// forked chain, an edited batch record. Rows past their retention (TTL) are expected to vanish and
// are not checked; the links between their batches still are.
//
// Two formats of the row content hash, told apart by the stored rows digest (and covered by the
// batch hash, so a format cannot be swapped unnoticed):
//   1  SHA-256 of JSON.stringify([every field's value, in schema order]); the digest is 64 hex.
//   2  SHA-256 of the row's canonical JSONEachRow text (store/insert-rows.ts), i.e. the very bytes
//      the sink handed to the engine, hashed in place; the digest is `v2:` + 64 hex.
// New batches are written in format 2; batches of format 1 keep verifying with format 1.
import { createHash, hash as sha } from 'node:crypto';
import { EVENT_FIELDS, NormalizedEventSchema, type NormalizedEvent } from '../core/event.ts';
import type { Store } from './client.ts';
import { encodeEventRows, serializeEventRow, type EncodedEventRows } from './insert-rows.ts';

/** The `prev_hash` of a chain's first batch. */
export const GENESIS_HASH = '0'.repeat(64);

/** Characters of each row's content hash kept in `batches.row_hashes` (to name a modified row). */
const ROW_HASH_PREFIX_CHARS = 16;

const DAY_MS = 86_400_000;
/** Rows this close to their retention end are left out of a batch: the TTL may remove them first. */
const RECORD_MARGIN_MS = DAY_MS;
/** Clock skew allowed between this process and ClickHouse when deciding a batch has expired. */
const VERIFY_MARGIN_MS = 3_600_000;

/** Recent dedup tokens remembered per chain, to ignore a redelivered batch. */
const RECENT_TOKENS = 1000;

const INTEGER_FIELDS = new Set<string>(
  EVENT_FIELDS.filter((f) => (NormalizedEventSchema.properties[f] as { type?: string }).type === 'integer'),
);

function canonicalValue(value: unknown): unknown {
  // ClickHouse stores bytes; a lone surrogate cannot survive UTF-8, so hash what can be read back.
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (Array.isArray(value)) return value.every((v) => typeof v !== 'string' || v.isWellFormed()) ? value : value.map(canonicalValue);
  return value;
}

/** Chain formats (see the file comment). */
export type ChainFormat = 1 | 2;
/** Prefix of a format-2 rows digest. */
const FORMAT_2_PREFIX = 'v2:';

/** The format a stored rows digest was written in. */
export function readChainFormat(rowsDigest: string): ChainFormat {
  return rowsDigest.startsWith(FORMAT_2_PREFIX) ? 2 : 1;
}

/** SHA-256 hex of one event's content in format 1: every field's value, in schema order. */
export function hashEventContent(event: NormalizedEvent): string {
  const record = event as unknown as Record<string, unknown>;
  const values = new Array<unknown>(EVENT_FIELDS.length);
  for (let i = 0; i < EVENT_FIELDS.length; i++) values[i] = canonicalValue(record[EVENT_FIELDS[i] as string]);
  return sha('sha256', JSON.stringify(values), 'hex');
}

/** SHA-256 hex of one event's content in format 2: its canonical row text. */
export function hashEventText(event: NormalizedEvent): string {
  return sha('sha256', serializeEventRow(event), 'hex');
}

/** The content hash of `format`. */
export function contentHasher(format: ChainFormat): (event: NormalizedEvent) => string {
  return format === 2 ? hashEventText : hashEventContent;
}

/** One row as the digest sees it. */
export interface DigestRow {
  readonly eventId: string;
  readonly timeMs: number;
  readonly contentHash: string;
}

/**
 * Orders event ids as ClickHouse orders Strings, by their UTF-8 bytes (which is code point order),
 * because `verify` digests the rows in the order the engine returns them. JavaScript's `<` compares
 * UTF-16 units, which puts characters above U+FFFF (surrogate pairs, 0xD800–0xDFFF) before
 * U+E000–U+FFFF; the two orders agree everywhere else, so only that case is remapped.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function compareIds(a: DigestRow, b: DigestRow): number {
  return compareUtf8(a.eventId, b.eventId);
}

/** JavaScript's own order, the same as compareUtf8's for strings without code units ≥ U+D800. */
function compareIdsNative(a: DigestRow, b: DigestRow): number {
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/** Code units where UTF-16 and UTF-8 orders can differ (see compareUtf8). */
const HIGH_UNITS = /[\ud800-\uffff]/;

/** SHA-256 hex over the rows in event_id order (sorts `rows` in place); format 2 adds its prefix. */
export function digestRows(rows: DigestRow[], format: ChainFormat = 1): string {
  // The ids are nearly always ASCII: then JavaScript's own string comparison orders them the same way,
  // at a fraction of compareUtf8's cost per comparison.
  rows.sort(rows.some((r) => HIGH_UNITS.test(r.eventId)) ? compareIds : compareIdsNative);
  const hash = createHash('sha256');
  // Lines in chunks: one update per row would cost more than the hashing itself.
  const CHUNK = 512;
  for (let from = 0; from < rows.length; from += CHUNK) {
    let text = '';
    for (let i = from; i < Math.min(rows.length, from + CHUNK); i++) {
      const r = rows[i] as DigestRow;
      text += `${r.eventId}\t${r.timeMs}\t${r.contentHash}\n`;
    }
    hash.update(text);
  }
  const hex = hash.digest('hex');
  return format === 2 ? `${FORMAT_2_PREFIX}${hex}` : hex;
}

/** SHA-256 hex of a batch: previous hash, then rows digest. */
export function hashBatch(prevHash: string, rowsDigest: string): string {
  return createHash('sha256').update(prevHash).update(rowsDigest).digest('hex');
}

/** Retention in days of `table` as its TTL says, or undefined when it has none. */
async function readTtlDays(store: Store, table: string, column: string): Promise<number | undefined> {
  const rows = await store.query<{ name: string; engine_full: string }>(
    'SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN ({local:String}, {plain:String})',
    { db: store.database, local: `${table}_local`, plain: table },
  );
  const pattern = new RegExp(`TTL toDateTime\\(${column}\\) \\+ toIntervalDay\\((\\d+)\\)`);
  for (const row of rows) {
    const match = pattern.exec(row.engine_full);
    if (match?.[1]) return Number(match[1]);
  }
  return undefined;
}

/** Records stored batches into the chain (plug into the sink's `afterInsert`). */
export interface BatchChain {
  /**
   * Appends one batch; a batch already recorded under `dedupToken` is ignored. `rows`, when given,
   * is the batch as it was inserted (encodeEventRows of exactly `events`): each row's hash is taken
   * over its bytes there instead of serializing the event again.
   */
  record(events: readonly NormalizedEvent[], dedupToken: string, rows?: EncodedEventRows): Promise<void>;
  /**
   * Hashes a batch ahead of its record, e.g. while the engine inserts it (it yields to the event
   * loop as it goes); `record` with the same `rows` then takes the result instead of hashing again.
   */
  prepare(events: readonly NormalizedEvent[], rows: EncodedEventRows): Promise<void>;
}

/** A batch's rows as the digest sees them. */
interface DigestedBatch {
  readonly rows: DigestRow[];
  readonly firstMs: number;
  readonly lastMs: number;
  readonly rowsDigest: string;
}

/** Rows hashed between two yields to the event loop. */
const DIGEST_CHUNK_ROWS = 2000;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface BatchChainOptions {
  /**
   * Name of this writer's chain. Each concurrent writer (sink process) needs its own, or two
   * writers would fork one chain. @default 'default'
   */
  readonly chainId?: string;
  /** Clock, ms. @default Date.now */
  readonly now?: () => number;
  /** Format of the batches written (1 only to test that old chains still verify). @default 2 */
  readonly format?: ChainFormat;
}

interface Head {
  seq: number;
  hash: string;
  recordedAtMs: number;
}

/** Loads the chain's head and returns a recorder that extends it, one batch at a time. */
export async function createBatchChain(store: Store, options: BatchChainOptions = {}): Promise<BatchChain> {
  const chain = options.chainId ?? 'default';
  const now = options.now ?? Date.now;
  const retentionDays = await readTtlDays(store, 'events', 'time');
  const recent = await store.query<{ seq_text: string; hash: string; recorded_ms: string; dedup_token: string }>(
    // seq_text, not seq: an alias named like the column would make ORDER BY sort text ("9" > "10").
    `SELECT toString(seq) AS seq_text, hash, toString(toUnixTimestamp64Milli(recorded_at)) AS recorded_ms, dedup_token
     FROM ${store.database}.batches WHERE chain = {chain:String} ORDER BY seq DESC LIMIT {n:UInt32}`,
    { chain, n: RECENT_TOKENS },
  );
  const top = recent[0];
  let head: Head = top ? { seq: Number(top.seq_text), hash: top.hash, recordedAtMs: Number(top.recorded_ms) } : { seq: 0, hash: GENESIS_HASH, recordedAtMs: 0 };
  const tokens = new Set(recent.map((r) => r.dedup_token));
  const tokenOrder = recent.map((r) => r.dedup_token).reverse();
  let queue: Promise<void> = Promise.resolve();

  const format = options.format ?? 2;
  /** Digests computed ahead of their record (see `prepare`), by the batch they were computed from. */
  const prepared = new WeakMap<EncodedEventRows, Promise<DigestedBatch | undefined>>();

  /** The batch's rows as the digest sees them, yielding to the event loop every DIGEST_CHUNK_ROWS rows. */
  const digestBatch = async (events: readonly NormalizedEvent[], encoded: EncodedEventRows | undefined): Promise<DigestedBatch | undefined> => {
    // Rows already past (or about to pass) retention are dropped by the TTL, not by tampering.
    const cutoffMs = retentionDays === undefined ? Number.NEGATIVE_INFINITY : now() - retentionDays * DAY_MS + RECORD_MARGIN_MS;
    const rows: DigestRow[] = [];
    let firstMs = Number.POSITIVE_INFINITY;
    let lastMs = Number.NEGATIVE_INFINITY;
    const { body, ends } = format === 1 ? { body: undefined, ends: undefined } : encoded && encoded.ends.length === events.length ? encoded : encodeEventRows(events);
    let start = 0;
    for (let i = 0; i < events.length; i++) {
      if (i > 0 && i % DIGEST_CHUNK_ROWS === 0) await yieldToEventLoop();
      const event = events[i] as NormalizedEvent;
      const end = ends?.[i] as number;
      if (event.time >= cutoffMs) {
        // One-shot hashing: about half the CPU of a Hash object per row.
        const contentHash = body ? sha('sha256', body.subarray(start, end), 'hex') : hashEventContent(event);
        rows.push({ eventId: event.event_id, timeMs: event.time, contentHash });
        if (event.time < firstMs) firstMs = event.time;
        if (event.time > lastMs) lastMs = event.time;
      }
      start = end + 1;
    }
    if (rows.length === 0) return undefined;
    return { rows, firstMs, lastMs, rowsDigest: digestRows(rows, format) };
  };

  const append = async (events: readonly NormalizedEvent[], dedupToken: string, encoded: EncodedEventRows | undefined): Promise<void> => {
    const early = encoded ? prepared.get(encoded) : undefined;
    if (encoded) prepared.delete(encoded);
    if (tokens.has(dedupToken)) return;
    const recordedAtMs = now();
    const digested = (await early) ?? (await digestBatch(events, encoded));
    if (!digested) return;
    const { rows, firstMs, lastMs, rowsDigest } = digested;
    const seq = head.seq + 1;
    const hash = hashBatch(head.hash, rowsDigest);
    await store.insertRows(
      'batches',
      [
        {
          chain,
          seq,
          dedup_token: dedupToken,
          recorded_at: recordedAtMs,
          prev_recorded_at: head.recordedAtMs,
          first_time: firstMs,
          last_time: lastMs,
          row_count: rows.length,
          rows_digest: rowsDigest,
          prev_hash: head.hash,
          hash,
          event_ids: rows.map((r) => r.eventId),
          row_hashes: rows.map((r) => r.contentHash.slice(0, ROW_HASH_PREFIX_CHARS)),
        },
      ],
      // A retry after an unclear failure re-sends the same seq and batch; ClickHouse keeps one copy.
      // The batch's own token (unique per bus run) keeps a reused seq from being taken for a retry.
      { insert_deduplication_token: `chain:${chain}:${seq}:${dedupToken}`, insert_deduplicate: 1 },
    );
    head = { seq, hash, recordedAtMs };
    tokens.add(dedupToken);
    tokenOrder.push(dedupToken);
    if (tokenOrder.length > RECENT_TOKENS) tokens.delete(tokenOrder.shift() as string);
  };

  return {
    prepare(events, rows) {
      const digest = digestBatch(events, rows);
      prepared.set(rows, digest);
      return digest.then(() => undefined);
    },
    record(events, dedupToken, rows) {
      const run = queue.then(() => append(events, dedupToken, rows));
      // The next batch waits for this one, whether it succeeded or not (the sink retries it).
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

/** What verification found wrong. */
export type ChainProblemKind =
  | 'row_modified'
  | 'row_missing'
  | 'row_added'
  | 'batch_missing'
  | 'chain_broken'
  | 'batch_modified'
  | 'fork';

export interface ChainProblem {
  readonly chain: string;
  readonly seq: number;
  readonly kind: ChainProblemKind;
  readonly detail: string;
}

export interface ChainSummary {
  readonly chain: string;
  readonly firstSeq: number;
  readonly headSeq: number;
  /** Hash of the newest batch: record it elsewhere to detect a truncated chain later. */
  readonly headHash: string;
  readonly batches: number;
}

export interface ChainReport {
  readonly ok: boolean;
  readonly chains: ChainSummary[];
  readonly batchesChecked: number;
  /** Batches whose rows are past retention: links checked, rows not. */
  readonly batchesExpired: number;
  readonly rowsChecked: number;
  /** The first problems found (at most 1000); `problemCount` counts all. */
  readonly problems: ChainProblem[];
  readonly problemCount: number;
}

export interface VerifyProgress {
  readonly batchesChecked: number;
  readonly batchesTotal: number;
  readonly rowsChecked: number;
}

interface BatchMeta {
  chain: string;
  seq: number;
  recordedMs: number;
  prevRecordedMs: number;
  firstMs: number;
  lastMs: number;
  rowCount: number;
  rowsDigest: string;
  prevHash: string;
  hash: string;
  format: ChainFormat;
}

/** Batches per metadata page. */
const META_PAGE = 2000;
/** Rows read per query at most: memory stays the same whatever the batch size. */
const ROWS_PER_PAGE = 5000;
const MAX_PROBLEMS = 1000;
const HOUR_MS = 3_600_000;
/** Event ids named per hour that holds rows no batch lists. */
const ADDED_IDS_SHOWN = 5;

// Aliases never reuse a column name: ClickHouse would apply them in WHERE and ORDER BY too.
const EVENT_SELECT = EVENT_FIELDS.map((f) => (f === 'time' || f === 'observed_time' ? `toUnixTimestamp64Milli(e.${f}) AS c_${f}` : `e.${f} AS c_${f}`)).join(', ');

function toEvent(record: Record<string, unknown>): NormalizedEvent {
  const event: Record<string, unknown> = {};
  for (const f of EVENT_FIELDS) event[f] = INTEGER_FIELDS.has(f) ? Number(record[`c_${f}`]) : record[`c_${f}`];
  return event as unknown as NormalizedEvent;
}

/** One batch's rows as they are read back, page by page (rows arrive in event_id order). */
interface BatchCheck {
  readonly meta: BatchMeta;
  readonly digest: ReturnType<typeof createHash>;
  found: number;
  modified: string[];
  modifiedCount: number;
}

/**
 * Recomputes every batch of every chain from the `events` table and reports each mismatch:
 * modified, missing and added rows, missing, reordered, forked or edited batches. Batches are
 * read in numeric order, their rows in pages of at most ROWS_PER_PAGE in (seq, event_id) order,
 * and each batch's digest is built as its rows stream past, so memory does not depend on the
 * batch size or the table size. Rows that no batch lists are counted per hour of event time.
 */
export async function verifyChain(store: Store, onProgress?: (progress: VerifyProgress) => void, options: { now?: () => number } = {}): Promise<ChainReport> {
  const nowMs = (options.now ?? Date.now)();
  const db = store.database;
  const retentionDays = await readTtlDays(store, 'events', 'time');
  const batchRetentionDays = await readTtlDays(store, 'batches', 'recorded_at');
  const expiredBeforeMs = retentionDays === undefined ? Number.NEGATIVE_INFINITY : nowMs - retentionDays * DAY_MS + VERIFY_MARGIN_MS;
  const batchExpiredBeforeMs = batchRetentionDays === undefined ? Number.NEGATIVE_INFINITY : nowMs - batchRetentionDays * DAY_MS + VERIFY_MARGIN_MS;
  const [totalRow] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${db}.batches`);
  const batchesTotal = Number(totalRow?.n ?? 0);

  const problems: ChainProblem[] = [];
  let problemCount = 0;
  const report = (chain: string, seq: number, kind: ChainProblemKind, detail: string) => {
    problemCount++;
    if (problems.length < MAX_PROBLEMS) problems.push({ chain, seq, kind, detail });
  };
  const chains: ChainSummary[] = [];
  let batchesChecked = 0;
  let batchesExpired = 0;
  let rowsChecked = 0;
  /** Rows found through a batch, per hour of event time (hour index → rows). */
  const chainedPerHour = new Map<number, number>();
  /** Rows older than this are not compared with the batches (retention, expired batches). */
  let addedCheckFromMs = Number.isFinite(expiredBeforeMs) ? expiredBeforeMs + RECORD_MARGIN_MS : Number.NEGATIVE_INFINITY;

  let current: { chain: string; firstSeq: number; batches: number; last: BatchMeta } | undefined;
  const closeChain = () => {
    if (current) chains.push({ chain: current.chain, firstSeq: current.firstSeq, headSeq: current.last.seq, headHash: current.last.hash, batches: current.batches });
  };

  const checkLinks = (b: BatchMeta) => {
    if (hashBatch(b.prevHash, b.rowsDigest) !== b.hash) report(b.chain, b.seq, 'batch_modified', 'stored hash does not match prev_hash + rows_digest');
    if (!current || current.chain !== b.chain) {
      closeChain();
      current = { chain: b.chain, firstSeq: b.seq, batches: 1, last: b };
      if (b.seq === 1) {
        if (b.prevHash !== GENESIS_HASH) report(b.chain, b.seq, 'chain_broken', 'first batch does not start from the genesis hash');
      } else if (b.prevRecordedMs >= batchExpiredBeforeMs) {
        report(b.chain, b.seq, 'batch_missing', `batches 1..${b.seq - 1} are gone but were not yet due to expire`);
      }
      return;
    }
    const prev = current.last;
    current.batches++;
    current.last = b;
    if (b.seq === prev.seq) {
      report(b.chain, b.seq, 'fork', 'two batches carry this sequence number');
      return;
    }
    if (b.seq !== prev.seq + 1) report(b.chain, b.seq, 'batch_missing', `batches ${prev.seq + 1}..${b.seq - 1} are missing`);
    else if (b.prevHash !== prev.hash) report(b.chain, b.seq, 'chain_broken', `prev_hash does not match the hash of batch ${prev.seq}`);
  };

  const finishBatch = (check: BatchCheck) => {
    const b = check.meta;
    rowsChecked += check.found;
    if (check.found < b.rowCount) report(b.chain, b.seq, 'row_missing', `${b.rowCount - check.found} of ${b.rowCount} rows are gone`);
    if (check.modifiedCount > 0) report(b.chain, b.seq, 'row_modified', `${check.modifiedCount} row(s) changed, e.g. event_id ${check.modified.join(', ')}`);
    else if (check.found === b.rowCount && `${b.format === 2 ? FORMAT_2_PREFIX : ''}${check.digest.digest('hex')}` !== b.rowsDigest) {
      report(b.chain, b.seq, 'row_modified', 'rows digest differs (an event time or id changed)');
    }
  };

  /**
   * Checks the rows of consecutive batches of one chain. Each page lists the next ROWS_PER_PAGE
   * (seq, event_id) pairs of the batches and reads exactly those rows from `events`.
   */
  const checkRows = async (group: BatchMeta[]) => {
    if (group.length === 0) return;
    const first = group[0] as BatchMeta;
    const last = group[group.length - 1] as BatchMeta;
    const bySeq = new Map(group.map((b) => [b.seq, b]));
    const fromMs = Math.min(...group.map((b) => b.firstMs));
    const toMs = Math.max(...group.map((b) => b.lastMs));
    // arrayResize: an edited row_hashes of another length must not fail the ARRAY JOIN.
    const listed = `SELECT seq AS batch_seq, pair.1 AS listed_id, pair.2 AS expected_hash
       FROM ${db}.batches ARRAY JOIN arrayZip(event_ids, arrayResize(row_hashes, length(event_ids), '')) AS pair
       WHERE chain = {chain:String} AND seq BETWEEN {first:UInt64} AND {last:UInt64}
         AND (seq, listed_id) > ({after_seq:UInt64}, {after_id:String})
       ORDER BY seq, listed_id LIMIT {n:UInt32}`;
    let check: BatchCheck | undefined;
    let after = { seq: first.seq - 1, id: '' };
    for (;;) {
      const params = { chain: first.chain, first: first.seq, last: last.seq, after_seq: after.seq, after_id: after.id, n: ROWS_PER_PAGE };
      const expected = await store.query<{ batch_seq: string; listed_id: string; expected_hash: string }>(
        `SELECT toString(batch_seq) AS batch_seq, listed_id, expected_hash FROM (${listed})`,
        params,
      );
      if (expected.length === 0) break;
      const records = await store.query<Record<string, unknown>>(
        `SELECT ${EVENT_SELECT} FROM ${db}.events AS e
         WHERE e.time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND e.time <= fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
           AND e.event_id IN (SELECT listed_id FROM (${listed}))`,
        { ...params, from_ms: fromMs, to_ms: toMs },
      );
      const stored = new Map<string, NormalizedEvent[]>();
      for (const record of records) {
        const event = toEvent(record);
        const copies = stored.get(event.event_id);
        if (copies) copies.push(event);
        else stored.set(event.event_id, [event]);
      }
      for (const row of expected) {
        const seq = Number(row.batch_seq);
        if (!check || check.meta.seq !== seq) {
          if (check) finishBatch(check);
          check = { meta: bySeq.get(seq) as BatchMeta, digest: createHash('sha256'), found: 0, modified: [], modifiedCount: 0 };
        }
        const copies = stored.get(row.listed_id);
        if (!copies) continue;
        const hashes = new Set(copies.map(contentHasher(check.meta.format)));
        const [contentHash] = hashes;
        const event = copies[0] as NormalizedEvent;
        check.found++;
        // One row per listed id: a second copy of a row shows up in its hour as an added one.
        const hour = Math.floor(event.time / HOUR_MS);
        chainedPerHour.set(hour, (chainedPerHour.get(hour) ?? 0) + 1);
        if (hashes.size > 1 || !(contentHash as string).startsWith(row.expected_hash)) {
          check.modifiedCount++;
          if (check.modified.length < 5) check.modified.push(row.listed_id);
        }
        check.digest.update(`${event.event_id}\t${event.time}\t${contentHash as string}\n`);
      }
      const tail = expected[expected.length - 1] as { batch_seq: string; listed_id: string };
      after = { seq: Number(tail.batch_seq), id: tail.listed_id };
      if (expected.length < ROWS_PER_PAGE) break;
    }
    if (check) finishBatch(check);
  };

  /** Rows in `events` that no batch lists (forged, or duplicated), hour by hour of event time. */
  const checkAdded = async () => {
    const hours = await store.query<{ hour: string; n: string }>(
      `SELECT toString(intDiv(toUnixTimestamp64Milli(time), ${HOUR_MS})) AS hour, toString(count()) AS n FROM ${db}.events
       WHERE time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') GROUP BY hour ORDER BY hour`,
      { from_ms: Number.isFinite(addedCheckFromMs) ? Math.max(0, Math.ceil(addedCheckFromMs / HOUR_MS) * HOUR_MS) : 0 },
    );
    for (const { hour, n } of hours) {
      const index = Number(hour);
      const surplus = Number(n) - (chainedPerHour.get(index) ?? 0);
      if (surplus <= 0) continue;
      const startMs = index * HOUR_MS;
      const ids = await store.query<{ event_id: string }>(
        `SELECT event_id FROM ${db}.events
         WHERE time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
           AND event_id NOT IN (SELECT arrayJoin(event_ids) FROM ${db}.batches
                                WHERE first_time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AND last_time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
         LIMIT {n:UInt32}`,
        { from_ms: startMs, to_ms: startMs + HOUR_MS, n: ADDED_IDS_SHOWN },
      );
      const named = ids.length > 0 ? `, e.g. event_id ${ids.map((r) => r.event_id).join(', ')}` : ' (duplicated rows)';
      report('', 0, 'row_added', `${surplus} row(s) between ${new Date(startMs).toISOString()} and ${new Date(startMs + HOUR_MS).toISOString()} are in no batch${named}`);
    }
  };

  let after: { chain: string; seq: number } | undefined;
  for (;;) {
    // seq_text, not seq: an alias named like the column would order and compare as text.
    const page = await store.query<Record<string, unknown>>(
      `SELECT chain, toString(seq) AS seq_text, toString(toUnixTimestamp64Milli(recorded_at)) AS recorded_ms,
              toString(toUnixTimestamp64Milli(prev_recorded_at)) AS prev_recorded_ms,
              toString(toUnixTimestamp64Milli(first_time)) AS first_ms, toString(toUnixTimestamp64Milli(last_time)) AS last_ms,
              row_count, length(event_ids) AS ids, length(row_hashes) AS hashes, rows_digest, prev_hash, hash
       FROM ${db}.batches` +
        (after ? ' WHERE (chain, seq) > ({after_chain:String}, {after_seq:UInt64})' : '') +
        ' ORDER BY chain, seq LIMIT {n:UInt32}',
      after ? { after_chain: after.chain, after_seq: after.seq, n: META_PAGE } : { n: META_PAGE },
    );
    if (page.length === 0) break;
    let group: BatchMeta[] = [];
    let groupRows = 0;
    for (const r of page) {
      const b: BatchMeta = {
        chain: String(r.chain),
        seq: Number(r.seq_text),
        recordedMs: Number(r.recorded_ms),
        prevRecordedMs: Number(r.prev_recorded_ms),
        firstMs: Number(r.first_ms),
        lastMs: Number(r.last_ms),
        rowCount: Number(r.row_count),
        rowsDigest: String(r.rows_digest),
        prevHash: String(r.prev_hash),
        hash: String(r.hash),
        format: readChainFormat(String(r.rows_digest)),
      };
      checkLinks(b);
      batchesChecked++;
      if (b.firstMs < expiredBeforeMs) {
        batchesExpired++;
        // Rows of a partly expired batch may remain; they are not compared with the batches.
        addedCheckFromMs = Math.max(addedCheckFromMs, b.lastMs + 1);
        continue;
      }
      const listedIds = Number(r.ids);
      if (listedIds !== b.rowCount) report(b.chain, b.seq, 'batch_modified', `row_count ${b.rowCount} disagrees with the ${listedIds} event ids listed`);
      if (Number(r.hashes) !== listedIds) report(b.chain, b.seq, 'batch_modified', `${Number(r.hashes)} row hashes for ${listedIds} event ids`);
      if (listedIds === 0) {
        if (b.rowCount > 0) report(b.chain, b.seq, 'row_missing', `${b.rowCount} of ${b.rowCount} rows are gone`);
        continue;
      }
      // A group is one chain's consecutive batches, read in pages of at most ROWS_PER_PAGE rows.
      if (group.length > 0 && ((group[0] as BatchMeta).chain !== b.chain || groupRows + b.rowCount > ROWS_PER_PAGE)) {
        await checkRows(group);
        group = [];
        groupRows = 0;
      }
      group.push(b);
      groupRows += b.rowCount;
    }
    await checkRows(group);
    const tail = page[page.length - 1] as Record<string, unknown>;
    after = { chain: String(tail.chain), seq: Number(tail.seq_text) };
    onProgress?.({ batchesChecked, batchesTotal, rowsChecked });
    if (page.length < META_PAGE) break;
  }
  closeChain();
  await checkAdded();
  return { ok: problemCount === 0, chains, batchesChecked, batchesExpired, rowsChecked, problems, problemCount };
}
