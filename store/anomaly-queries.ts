// Typed read queries over `anomalies` (ReplacingMergeTree: every lifecycle update is a new row with
// a higher version, so reads use FINAL). Pages are keyed by (first_seen, id), which never change
// across an anomaly's updates, so paging stays stable while anomalies update and resolve.
import type { Anomaly } from '../core/anomaly.ts';
import type { QueryParams, Store } from './client.ts';

export interface AnomalyFilters {
  readonly detector?: string | undefined;
  readonly status?: string | undefined;
  readonly severity?: string | undefined;
  /** Anomalies still active at or after this time (last_seen >= since), ms. */
  readonly sinceMs?: number | undefined;
  /** Anomalies that opened before this time (first_seen < until), ms. */
  readonly untilMs?: number | undefined;
}

/** A keyset position: the last anomaly of the previous page. */
export interface AnomalyPosition {
  readonly firstSeenMs: number;
  readonly id: string;
}

const SELECT = `id, detector, severity, status, toUnixTimestamp64Milli(first_seen) AS first_seen_ms,
  toUnixTimestamp64Milli(detected_at) AS detected_at_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, src, dst, score, summary, evidence`;

function parseEvidence(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string' || text === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  } catch {
    // Stored evidence is written by detectors as JSON; anything else is shown as text, not dropped.
    return { text };
  }
}

function toAnomaly(r: Record<string, unknown>): Anomaly {
  return {
    id: String(r.id),
    detector: String(r.detector),
    severity: String(r.severity) as Anomaly['severity'],
    status: String(r.status) as Anomaly['status'],
    first_seen: new Date(Number(r.first_seen_ms)).toISOString(),
    detected_at: new Date(Number(r.detected_at_ms)).toISOString(),
    last_seen: new Date(Number(r.last_seen_ms)).toISOString(),
    src: r.src === null || r.src === undefined ? null : String(r.src),
    dst: r.dst === null || r.dst === undefined ? null : String(r.dst),
    score: Number(r.score),
    summary: String(r.summary),
    evidence: parseEvidence(r.evidence),
  };
}

/** One page of anomalies, newest opening first, after `after`. */
export async function queryAnomalies(
  store: Store,
  filters: AnomalyFilters,
  page: { readonly limit: number; readonly after?: AnomalyPosition | undefined },
): Promise<{ anomalies: Anomaly[]; next: AnomalyPosition | undefined }> {
  const conditions: string[] = [];
  const params: QueryParams = { limit: page.limit + 1 };
  for (const key of ['detector', 'status', 'severity'] as const) {
    const value = filters[key];
    if (value === undefined) continue;
    conditions.push(`${key} = {${key}:String}`);
    params[key] = value;
  }
  if (filters.sinceMs !== undefined) {
    conditions.push("last_seen >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')");
    params.since_ms = filters.sinceMs;
  }
  if (filters.untilMs !== undefined) {
    conditions.push("first_seen < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')");
    params.until_ms = filters.untilMs;
  }
  if (page.after) {
    conditions.push(
      "first_seen <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')",
      "(first_seen < fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id < {after_id:String})",
    );
    params.after_ms = page.after.firstSeenMs;
    params.after_id = page.after.id;
  }
  const records = await store.query<Record<string, unknown>>(
    `SELECT ${SELECT} FROM ${store.database}.anomalies FINAL` +
      (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
      ' ORDER BY first_seen DESC, id DESC LIMIT {limit:UInt32}',
    params,
  );
  const kept = records.slice(0, page.limit);
  const anomalies = kept.map(toAnomaly);
  const last = kept[kept.length - 1];
  const next = records.length > page.limit && last ? { firstSeenMs: Number(last.first_seen_ms), id: String(last.id) } : undefined;
  return { anomalies, next };
}

/** One anomaly in its latest version, or undefined. */
export async function getAnomaly(store: Store, id: string): Promise<Anomaly | undefined> {
  const [record] = await store.query<Record<string, unknown>>(`SELECT ${SELECT} FROM ${store.database}.anomalies FINAL WHERE id = {id:String} LIMIT 1`, { id });
  return record ? toAnomaly(record) : undefined;
}

/** Anomalies by id in their latest versions, in the order of `ids` (unknown ids are left out). */
export async function getAnomaliesByIds(store: Store, ids: readonly string[]): Promise<Anomaly[]> {
  if (ids.length === 0) return [];
  const records = await store.query<Record<string, unknown>>(`SELECT ${SELECT} FROM ${store.database}.anomalies FINAL WHERE id IN {ids:Array(String)}`, { ids: [...ids] });
  const byId = new Map(records.map((r) => [String(r.id), toAnomaly(r)]));
  return ids.map((id) => byId.get(id)).filter((a): a is Anomaly => a !== undefined);
}
