// The audit log: every compliance or admin query (who, when, with which filters, how many rows,
// the outcome) written and read back with bound parameters.
import { randomUUID } from 'node:crypto';
import type { QueryParams, Store } from './client.ts';

/** One audit-log entry: who ran which compliance or admin query, with what, and the outcome. */
export interface AuditRecord {
  readonly timeMs: number;
  /** Token name, SPIFFE ID, or `cli:<os user>`. */
  readonly actor: string;
  readonly role: string;
  /** e.g. `access.query`, `access.export`, `chain.verify`, `audit.query`. */
  readonly action: string;
  /** The filters as given, JSON. */
  readonly filters: Readonly<Record<string, unknown>>;
  readonly rows: number;
  /** HTTP status (CLI: 200 on success, 500 on failure). */
  readonly status: number;
  readonly remoteAddr: string;
}

/** Longest filters JSON kept per audit row, in characters (hostile callers send huge queries). */
export const AUDIT_FILTERS_MAX_CHARS = 8192;

/** Appends one entry to `audit_log`. */
export async function insertAuditRecord(store: Store, record: AuditRecord): Promise<void> {
  let filters = JSON.stringify(record.filters);
  if (filters.length > AUDIT_FILTERS_MAX_CHARS) filters = `${filters.slice(0, AUDIT_FILTERS_MAX_CHARS)}…`;
  await store.insertRows('audit_log', [
    {
      time: record.timeMs,
      actor: record.actor.slice(0, 512),
      role: record.role,
      action: record.action,
      filters,
      rows: record.rows,
      status: record.status,
      remote_addr: record.remoteAddr.slice(0, 128),
    },
  ],
    // Every audit entry is distinct, even two identical queries in the same millisecond.
    { insert_deduplication_token: randomUUID() },
  );
}

/** One audit-log row as read back; `time` in ms. */
export interface AuditRow {
  time: number;
  actor: string;
  role: string;
  action: string;
  filters: string;
  rows: number;
  status: number;
  remote_addr: string;
  /** Tie-breaker between rows of the same millisecond, part of the keyset. */
  row_key: string;
}

/** Filters and page of an audit-log query. */
export interface AuditQuery {
  readonly fromMs?: number | undefined;
  readonly toMs?: number | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  readonly limit: number;
  /** Continue after this row (newest first). */
  readonly after?: { readonly timeMs: number; readonly rowKey: string } | undefined;
}

const AUDIT_ROW_KEY = 'toString(id)';

/** Audit-log rows, newest first, one page after `query.after`. */
export async function queryAuditLog(store: Store, query: AuditQuery): Promise<{ rows: AuditRow[]; next: { timeMs: number; rowKey: string } | undefined }> {
  const conditions: string[] = [];
  const params: QueryParams = { limit: query.limit + 1 };
  if (query.fromMs !== undefined) {
    conditions.push("time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')");
    params.from_ms = query.fromMs;
  }
  if (query.toMs !== undefined) {
    conditions.push("time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')");
    params.to_ms = query.toMs;
  }
  if (query.actor !== undefined) {
    conditions.push('actor = {actor:String}');
    params.actor = query.actor;
  }
  if (query.action !== undefined) {
    conditions.push('action = {action:String}');
    params.action = query.action;
  }
  if (query.after) {
    conditions.push(
      "time <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')",
      `(time < fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR ${AUDIT_ROW_KEY} < {after_key:String})`,
    );
    params.after_ms = query.after.timeMs;
    params.after_key = query.after.rowKey;
  }
  const records = await store.query<Record<string, unknown>>(
    `SELECT toUnixTimestamp64Milli(time) AS time_ms, actor, role, action, filters, toFloat64(rows) AS row_count, status, remote_addr, ${AUDIT_ROW_KEY} AS row_key
     FROM ${store.database}.audit_log` +
      (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
      ` ORDER BY time DESC, row_key DESC LIMIT {limit:UInt32}`,
    params,
  );
  const rows = records.slice(0, query.limit).map((r) => ({
    time: Number(r.time_ms),
    actor: String(r.actor),
    role: String(r.role),
    action: String(r.action),
    filters: String(r.filters),
    rows: Number(r.row_count),
    status: Number(r.status),
    remote_addr: String(r.remote_addr),
    row_key: String(r.row_key),
  }));
  const last = rows[rows.length - 1];
  return { rows, next: records.length > query.limit && last ? { timeMs: last.time, rowKey: last.row_key } : undefined };
}
