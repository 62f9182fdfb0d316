// Typed read queries for compliance: access history (who accessed what, when, with which decision
// and why) with keyset pagination on (time, event_id). Every value reaches SQL as a bound parameter.
// Rows of a request that OPA also decided (same `request_id`) carry that decision as `authz_*`.
// The service graph's edges are in graph-edge-queries.ts, the audit log in audit-queries.ts.
import { EVENT_FIELDS, NormalizedEventSchema, type Decision, type NormalizedEvent } from '../core/event.ts';
import type { QueryParams, Store } from './client.ts';
import { AUTHZ_BY_REQUEST_TABLE } from './migrations/compliance.ts';

/** Filters of an access-history query; every one optional, all combined with AND. */
export interface AccessFilters {
  /** Exact `src_identity`. */
  readonly identity?: string | undefined;
  /** `src_identity` starting with this text. */
  readonly identityPrefix?: string | undefined;
  /** Exact `dst_service`. */
  readonly service?: string | undefined;
  /** Exact `dst_namespace` (the namespace of the service accessed). */
  readonly namespace?: string | undefined;
  readonly decision?: Decision | undefined;
  /** Exact HTTP method, e.g. `GET`. */
  readonly method?: string | undefined;
  /** `path` starting with this text. */
  readonly pathPrefix?: string | undefined;
  /** Exact status code (0 = none). */
  readonly status?: number | undefined;
  /** Exact `request_id`: the rows of one request (e.g. an incident's sample request). */
  readonly requestId?: string | undefined;
  /** Inclusive lower bound of event time, ms since the epoch. */
  readonly fromMs?: number | undefined;
  /** Exclusive upper bound of event time, ms since the epoch. */
  readonly toMs?: number | undefined;
}

/** Newest first (`desc`) or oldest first (`asc`), always by (time, event_id). */
export type AccessOrder = 'asc' | 'desc';

/** A keyset position: the last row of the previous page. */
export interface AccessPosition {
  readonly timeMs: number;
  readonly eventId: string;
}

/** The OPA decision joined to a row of another source on the same `request_id`. */
export interface AuthzColumns {
  /** `decision_id` of the OPA decision on the same request (`request_id`); empty when none. */
  authz_decision_id: string;
  /** That OPA decision (`allow`, `deny`, …); empty when none. */
  authz_decision: string;
  /** That OPA decision's reason (the policy path); empty when none. */
  authz_reason: string;
}

/** One access-history row: the stored event (times in ms since the epoch), `raw` only when asked for. */
export type AccessRow = Omit<NormalizedEvent, 'raw'> & AuthzColumns & { raw?: string };

/**
 * Columns read from `events`, in output order: time and event_id first, then every other event
 * field in schema order, observed_time last (`raw` only on request).
 */
const STORED_COLUMNS: ReadonlyArray<Exclude<keyof NormalizedEvent, 'raw'>> = [
  'time',
  'event_id',
  ...EVENT_FIELDS.filter((f): f is Exclude<keyof NormalizedEvent, 'raw'> => f !== 'time' && f !== 'event_id' && f !== 'observed_time' && f !== 'raw'),
  'observed_time',
];

/** Columns joined from the OPA decision of the same request; last, so existing CSV positions hold. */
const AUTHZ_COLUMNS = ['authz_decision_id', 'authz_decision', 'authz_reason'] as const satisfies ReadonlyArray<keyof AuthzColumns>;

/** Columns of an access row, in output order (CSV header order). */
export const ACCESS_COLUMNS: ReadonlyArray<Exclude<keyof AccessRow, 'raw'>> = [...STORED_COLUMNS, ...AUTHZ_COLUMNS];

/** Event fields the schema types as numbers (ClickHouse returns 64-bit ones quoted). */
const NUMERIC_COLUMNS: ReadonlySet<string> = new Set(
  Object.entries(NormalizedEventSchema.properties)
    .filter(([, schema]) => schema.type === 'integer' || schema.type === 'number')
    .map(([field]) => field),
);

function selectList(includeRaw: boolean): string {
  const cols = STORED_COLUMNS.map((c): string => {
    // Aliases never reuse a column name: ClickHouse would apply them in WHERE and ORDER BY too.
    if (c === 'time' || c === 'observed_time') return `toUnixTimestamp64Milli(${c}) AS ${c}_ms`;
    // UInt64 comes back quoted in JSON; as Float64 it is a plain number (exact below 2^53).
    if (c === 'bytes_in' || c === 'bytes_out') return `toFloat64(${c}) AS ${c}_n`;
    return c;
  });
  if (includeRaw) cols.push('raw');
  return cols.join(', ');
}

const RENAMED: ReadonlyArray<readonly [alias: string, column: string]> = [
  ['time_ms', 'time'],
  ['observed_time_ms', 'observed_time'],
  ['bytes_in_n', 'bytes_in'],
  ['bytes_out_n', 'bytes_out'],
];

function toRow(record: Record<string, unknown>): AccessRow {
  for (const [alias, column] of RENAMED) {
    record[column] = record[alias];
    delete record[alias];
  }
  for (const key of NUMERIC_COLUMNS) record[key] = Number(record[key]);
  for (const key of AUTHZ_COLUMNS) record[key] = '';
  return record as unknown as AccessRow;
}

/** The OPA decision recorded for one request id. */
export interface AuthzDecision {
  readonly decisionId: string;
  readonly decision: string;
  readonly reason: string;
}

/**
 * Characters of request ids per lookup query: bound parameters travel in the URL to a server,
 * whose default limit is 1 MiB, and ids come from a header anyone can set to any length.
 */
const AUTHZ_LOOKUP_MAX_CHARS = 64 * 1024;

/** Splits `ids` into groups whose total length stays under the lookup budget (a longer id goes alone). */
function chunkIds(ids: readonly string[]): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const id of ids) {
    if (current.length > 0 && chars + id.length > AUTHZ_LOOKUP_MAX_CHARS) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(id);
    chars += id.length + 3;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * The latest OPA decision per request id, for the ids that have one. Reads `authz_by_request`
 * (ordered by request_id) with argMax rather than FINAL: parts may be unmerged, or on other shards.
 */
export async function queryAuthzDecisions(store: Store, requestIds: readonly string[]): Promise<Map<string, AuthzDecision>> {
  const found = new Map<string, AuthzDecision>();
  for (const ids of chunkIds([...new Set(requestIds)].filter((id) => id !== ''))) {
    // The key (time, decision_id) names one decision; rows equal in it are copies of that decision.
    const records = await store.query<{ request_id: string; id: string; d: string; reason: string }>(
      `SELECT request_id, argMax(decision_id, (time, decision_id)) AS id, argMax(decision, (time, decision_id)) AS d,
              argMax(decision_reason, (time, decision_id)) AS reason
       FROM ${store.database}.${AUTHZ_BY_REQUEST_TABLE} WHERE request_id IN {ids:Array(String)} GROUP BY request_id`,
      { ids },
    );
    for (const r of records) found.set(r.request_id, { decisionId: String(r.id), decision: String(r.d), reason: String(r.reason) });
  }
  return found;
}

/** Fills the `authz_*` fields of non-OPA rows from the OPA decision on the same request, in place. */
async function attachAuthzDecisions(store: Store, rows: AccessRow[]): Promise<void> {
  const wanted = rows.filter((r) => r.source !== 'opa' && r.request_id !== '');
  if (wanted.length === 0) return;
  const decisions = await queryAuthzDecisions(store, wanted.map((r) => r.request_id));
  for (const row of wanted) {
    const decision = decisions.get(row.request_id);
    if (!decision) continue;
    row.authz_decision_id = decision.decisionId;
    row.authz_decision = decision.decision;
    row.authz_reason = decision.reason;
  }
}

/** WHERE conditions and their parameters for `filters`. */
export function buildAccessWhere(filters: AccessFilters): { conditions: string[]; params: QueryParams } {
  const conditions: string[] = [];
  const params: QueryParams = {};
  const equal = (column: string, name: string, value: string | number | undefined, type: string) => {
    if (value === undefined) return;
    conditions.push(`${column} = {${name}:${type}}`);
    params[name] = value;
  };
  equal('src_identity', 'identity', filters.identity, 'String');
  if (filters.identityPrefix !== undefined) {
    conditions.push('startsWith(src_identity, {identity_prefix:String})');
    params.identity_prefix = filters.identityPrefix;
  }
  equal('dst_service', 'service', filters.service, 'String');
  equal('dst_namespace', 'namespace', filters.namespace, 'String');
  equal('decision', 'decision', filters.decision, 'String');
  equal('method', 'method', filters.method, 'String');
  if (filters.pathPrefix !== undefined) {
    conditions.push('startsWith(path, {path_prefix:String})');
    params.path_prefix = filters.pathPrefix;
  }
  equal('status', 'status', filters.status, 'UInt16');
  equal('request_id', 'request_id', filters.requestId, 'String');
  if (filters.fromMs !== undefined) {
    conditions.push("time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')");
    params.from_ms = filters.fromMs;
  }
  if (filters.toMs !== undefined) {
    conditions.push("time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')");
    params.to_ms = filters.toMs;
  }
  return { conditions, params };
}

export interface AccessPageOptions {
  /** Rows per page. */
  readonly limit: number;
  readonly order: AccessOrder;
  /** Continue after this row (exclusive). */
  readonly after?: AccessPosition | undefined;
  /** Include the original line (`raw`). */
  readonly includeRaw: boolean;
}

export interface AccessPage {
  readonly rows: AccessRow[];
  /** Position to continue from; undefined on the last page. */
  readonly next: AccessPosition | undefined;
}

/**
 * Time spans tried before the whole range, in order: a page of recent history is found in the
 * newest hour or day without reading every daily partition (`events` is partitioned by day and
 * ordered by (dst_service, time), so a time bound prunes partitions and a service's granules).
 * A probe that is not full proves nothing beyond its bound; the next one is widened by how many
 * rows it found (at least ×PROBE_MIN_GROWTH, at most ×PROBE_MAX_GROWTH), and after PROBE_LIMIT
 * probes the query runs over the whole range.
 */
export interface AccessProbePlan {
  /** Span of the first probe, in ms; 0 turns probing off. */
  readonly firstSpanMs: number;
  /** Probes at most before the whole range is read. */
  readonly maxProbes: number;
}

/** One hour first, then wider; at most three probes. */
export const DEFAULT_PROBE_PLAN: AccessProbePlan = { firstSpanMs: 3_600_000, maxProbes: 3 };
const PROBE_MIN_GROWTH = 4;
const PROBE_MAX_GROWTH = 24;

/**
 * One page of access history in (time, event_id) order, after `options.after`.
 *
 * Exact by construction: in newest-first order a probe adds `time >= anchor - span` (anchor: the
 * upper bound of the range, the cursor, or now), and when it returns more rows than the page holds,
 * every row it left out is older than all of them, so the page equals the unbounded query's;
 * otherwise a wider probe (and finally the whole range) is read. Oldest first works the same way
 * from the lower bound or the cursor (and is not probed when neither is given).
 */
export async function queryAccessPage(store: Store, filters: AccessFilters, options: AccessPageOptions, plan: AccessProbePlan = DEFAULT_PROBE_PLAN): Promise<AccessPage> {
  const { conditions, params } = buildAccessWhere(filters);
  if (options.after) {
    // `time <= t` on its own lets the primary key and partitions prune; the OR settles ties.
    const cmp = options.order === 'desc' ? '<' : '>';
    conditions.push(
      `time ${cmp}= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')`,
      `(time ${cmp} fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR event_id ${cmp} {after_id:String})`,
    );
    params.after_ms = options.after.timeMs;
    params.after_id = options.after.eventId;
  }
  const direction = options.order === 'desc' ? 'DESC' : 'ASC';
  params.limit = options.limit + 1;
  const run = (extra: string[]) =>
    store.query<Record<string, unknown>>(
      `SELECT ${selectList(options.includeRaw)} FROM ${store.database}.events` +
        (conditions.length + extra.length > 0 ? ` WHERE ${[...conditions, ...extra].join(' AND ')}` : '') +
        ` ORDER BY time ${direction}, event_id ${direction} LIMIT {limit:UInt32}`,
      params,
    );
  let records: Record<string, unknown>[] | undefined;
  // A request id names a handful of rows found through its index: nothing to gain from probes.
  if (plan.firstSpanMs > 0 && filters.requestId === undefined) {
    const desc = options.order === 'desc';
    const cursorMs = options.after?.timeMs;
    // The end of the range the page starts from, and the far end it may reach.
    const lower = [filters.fromMs, cursorMs].filter((ms): ms is number => ms !== undefined);
    const anchor = desc ? Math.min(filters.toMs ?? Date.now(), cursorMs ?? Number.POSITIVE_INFINITY) : lower.length > 0 ? Math.max(...lower) : Number.NaN;
    const far = desc ? filters.fromMs : filters.toMs;
    let span = plan.firstSpanMs;
    for (let probe = 0; probe < plan.maxProbes && Number.isFinite(anchor); probe++) {
      const bound = desc ? anchor - span : anchor + span;
      if (far !== undefined && (desc ? bound <= far : bound >= far)) break;
      params.probe_ms = bound;
      const found = await run([`time ${desc ? '>=' : '<'} fromUnixTimestamp64Milli({probe_ms:Int64}, 'UTC')`]);
      if (found.length > options.limit) {
        records = found;
        break;
      }
      const growth = found.length === 0 ? PROBE_MAX_GROWTH : Math.ceil((2 * (options.limit + 1)) / found.length);
      span *= Math.min(PROBE_MAX_GROWTH, Math.max(PROBE_MIN_GROWTH, growth));
    }
  }
  records ??= await run([]);
  const rows = records.slice(0, options.limit).map(toRow);
  await attachAuthzDecisions(store, rows);
  const last = rows[rows.length - 1];
  const next = records.length > options.limit && last ? { timeMs: last.time, eventId: last.event_id } : undefined;
  return { rows, next };
}

/** How many access rows match `filters`. */
export async function countAccess(store: Store, filters: AccessFilters): Promise<number> {
  const { conditions, params } = buildAccessWhere(filters);
  const sql = `SELECT count() AS n FROM ${store.database}.events` + (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '');
  const [row] = await store.query<{ n: string | number }>(sql, params);
  return Number(row?.n ?? 0);
}

export interface AccessIterateOptions {
  readonly order: AccessOrder;
  readonly includeRaw: boolean;
  /** Rows fetched per internal page. @default 10000 */
  readonly pageRows?: number;
  /** Stop after this many rows. */
  readonly maxRows?: number;
}

/**
 * Every matching row, page by page through the keyset, so months of history never sit in memory
 * at once: the next page is fetched only when the consumer asks for it.
 */
export async function* iterateAccess(store: Store, filters: AccessFilters, options: AccessIterateOptions): AsyncGenerator<AccessRow[]> {
  const pageRows = options.pageRows ?? 10_000;
  let remaining = options.maxRows ?? Number.POSITIVE_INFINITY;
  let after: AccessPosition | undefined;
  while (remaining > 0) {
    const page = await queryAccessPage(store, filters, { limit: Math.min(pageRows, remaining), order: options.order, after, includeRaw: options.includeRaw });
    if (page.rows.length > 0) yield page.rows;
    remaining -= page.rows.length;
    if (!page.next) return;
    after = page.next;
  }
}
