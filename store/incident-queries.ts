// Writes and typed reads of `incidents` (ReplacingMergeTree: every lifecycle change is a new row
// with a higher version, so reads use FINAL). Pages are keyed by (detected_at, id): detected_at is
// fixed once an incident pages, and the list is newest first.
import type { Anomaly } from '../core/anomaly.ts';
import type { Incident, IncidentTimelineEntry } from '../core/incident.ts';
import { getAnomaliesByIds } from './anomaly-queries.ts';
import type { QueryParams, Store } from './client.ts';

export interface IncidentFilters {
  readonly status?: string | undefined;
  readonly severity?: string | undefined;
  /** Incidents still active at or after this time (last_seen >= since), ms. */
  readonly sinceMs?: number | undefined;
  /** Incidents raised before this time (detected_at < until), ms. */
  readonly untilMs?: number | undefined;
  /** Only incidents that page (true) or that do not (false). */
  readonly notify?: boolean | undefined;
}

/** A keyset position: the last incident of the previous page. */
export interface IncidentPosition {
  readonly detectedAtMs: number;
  readonly id: string;
}

const SELECT = `id, title, severity, status, toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(detected_at) AS detected_at_ms,
  toUnixTimestamp64Milli(last_seen) AS last_seen_ms, actors, targets, members, timeline, evidence, notify, toFloat64(version) AS version`;

function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string' || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    // Written by the incidents stage as JSON; a damaged row keeps its other fields.
    return fallback;
  }
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

function toIncident(r: Record<string, unknown>): Incident {
  const evidence = parseJson<unknown>(r.evidence, {});
  return {
    id: String(r.id),
    title: String(r.title),
    severity: String(r.severity) as Incident['severity'],
    status: String(r.status) as Incident['status'],
    first_seen: new Date(Number(r.first_seen_ms)).toISOString(),
    detected_at: new Date(Number(r.detected_at_ms)).toISOString(),
    last_seen: new Date(Number(r.last_seen_ms)).toISOString(),
    actors: strings(r.actors),
    targets: strings(r.targets),
    members: strings(r.members),
    timeline: parseJson<IncidentTimelineEntry[]>(r.timeline, []),
    evidence: typeof evidence === 'object' && evidence !== null && !Array.isArray(evidence) ? (evidence as Record<string, unknown>) : {},
    notify: r.notify === true || r.notify === 1 || r.notify === '1' || r.notify === 'true',
  };
}

/** The row of one incident change; `version` must rise with every change of one incident. */
export function toIncidentRow(incident: Incident, version: number): Record<string, unknown> {
  return {
    id: incident.id,
    title: incident.title,
    severity: incident.severity,
    status: incident.status,
    first_seen: Date.parse(incident.first_seen),
    detected_at: Date.parse(incident.detected_at),
    last_seen: Date.parse(incident.last_seen),
    actors: incident.actors,
    targets: incident.targets,
    members: incident.members,
    timeline: JSON.stringify(incident.timeline),
    evidence: JSON.stringify(incident.evidence),
    notify: incident.notify,
    version,
  };
}

/** Writes incident changes as new rows. */
export async function insertIncidents(store: Store, rows: ReadonlyArray<{ incident: Incident; version: number }>): Promise<void> {
  await store.insertRows(
    'incidents',
    rows.map((r) => toIncidentRow(r.incident, r.version)),
  );
}

/** Incidents still firing, with their latest version (a live restart takes them back). */
export async function loadFiringIncidents(store: Store): Promise<Array<{ incident: Incident; version: number }>> {
  const rows = await store.query<Record<string, unknown>>(`SELECT ${SELECT} FROM ${store.database}.incidents FINAL WHERE status = 'firing'`);
  return rows.map((r) => ({ incident: toIncident(r), version: Number(r.version) }));
}

/** One page of incidents, most recently raised first, after `after`. */
export async function queryIncidents(
  store: Store,
  filters: IncidentFilters,
  page: { readonly limit: number; readonly after?: IncidentPosition | undefined },
): Promise<{ incidents: Incident[]; next: IncidentPosition | undefined }> {
  const conditions: string[] = [];
  const params: QueryParams = { limit: page.limit + 1 };
  for (const key of ['status', 'severity'] as const) {
    const value = filters[key];
    if (value === undefined) continue;
    conditions.push(`${key} = {${key}:String}`);
    params[key] = value;
  }
  if (filters.notify !== undefined) {
    conditions.push('notify = {notify:Bool}');
    params.notify = filters.notify;
  }
  if (filters.sinceMs !== undefined) {
    conditions.push("last_seen >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')");
    params.since_ms = filters.sinceMs;
  }
  if (filters.untilMs !== undefined) {
    conditions.push("detected_at < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')");
    params.until_ms = filters.untilMs;
  }
  if (page.after) {
    conditions.push(
      "detected_at <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')",
      "(detected_at < fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id < {after_id:String})",
    );
    params.after_ms = page.after.detectedAtMs;
    params.after_id = page.after.id;
  }
  const records = await store.query<Record<string, unknown>>(
    `SELECT ${SELECT} FROM ${store.database}.incidents FINAL` +
      (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
      ' ORDER BY detected_at DESC, id DESC LIMIT {limit:UInt32}',
    params,
  );
  const kept = records.slice(0, page.limit);
  const last = kept[kept.length - 1];
  const next = records.length > page.limit && last ? { detectedAtMs: Number(last.detected_at_ms), id: String(last.id) } : undefined;
  return { incidents: kept.map(toIncident), next };
}

/** One incident in its latest version with its member anomalies (latest versions), or undefined. */
export async function getIncident(store: Store, id: string): Promise<{ incident: Incident; anomalies: Anomaly[] } | undefined> {
  const [record] = await store.query<Record<string, unknown>>(`SELECT ${SELECT} FROM ${store.database}.incidents FINAL WHERE id = {id:String} LIMIT 1`, { id });
  if (!record) return undefined;
  const incident = toIncident(record);
  const anomalies = await getAnomaliesByIds(store, incident.members);
  return { incident, anomalies };
}
