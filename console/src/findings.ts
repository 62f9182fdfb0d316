// What the console pages about: incidents (GET /v1/incidents), or anomalies where the API has no
// incidents (404). Both become one view model, so the list, the detail and the graph badges read
// the same fields either way.
import { ApiError, apiGet, type Params } from './api.ts';
import type { Anomaly, Incident, Page, Severity } from './types.ts';
import { SEVERITIES } from './types.ts';

export interface Finding {
  readonly kind: 'incident' | 'anomaly';
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  readonly status: 'firing' | 'resolved';
  readonly first_seen: string;
  readonly detected_at: string;
  readonly last_seen: string;
  /** Source identities, IPs or principals. */
  readonly actors: readonly string[];
  /** Destination services or workloads. */
  readonly targets: readonly string[];
  /** Member anomaly ids (an anomaly is its own only member). */
  readonly members: readonly string[];
  readonly timeline: ReadonlyArray<{ at: string; what: string; severity: Severity }>;
  readonly evidence: Record<string, unknown>;
}

export function rankSeverity(severity: string): number {
  return SEVERITIES.indexOf(severity as Severity);
}

/** An anomaly as a finding of its own. */
export function fromAnomaly(a: Anomaly): Finding {
  const detectedAt = typeof a.evidence.detected_at === 'string' ? a.evidence.detected_at : a.first_seen;
  const timeline = [
    { at: a.first_seen, what: `first evidence (${a.detector})`, severity: a.severity },
    { at: detectedAt, what: `detected: ${a.summary}`, severity: a.severity },
    ...(a.status === 'resolved' ? [{ at: a.last_seen, what: 'resolved', severity: a.severity }] : []),
  ];
  return {
    kind: 'anomaly',
    id: a.id,
    title: a.summary,
    severity: a.severity,
    status: a.status,
    first_seen: a.first_seen,
    detected_at: detectedAt,
    last_seen: a.last_seen,
    actors: a.src ? [a.src] : [],
    targets: a.dst ? [a.dst] : [],
    members: [a.id],
    timeline,
    evidence: { detector: a.detector, score: a.score, ...a.evidence },
  };
}

export function fromIncident(i: Incident): Finding {
  return {
    kind: 'incident',
    id: i.id,
    title: i.title,
    severity: i.severity,
    status: i.status,
    first_seen: i.first_seen,
    detected_at: i.detected_at,
    last_seen: i.last_seen,
    actors: i.actors,
    targets: i.targets,
    members: i.members,
    timeline: i.timeline.map((t) => ({ at: t.at, what: `${t.detector} ${t.change}: ${t.summary}`, severity: t.severity })),
    evidence: i.evidence,
  };
}

/** null until an answer of /v1/incidents tells whether this API serves incidents. */
let incidentsServed: boolean | null = null;

/**
 * What a failed /v1/incidents request says: a 404 means this API serves no incidents (anomalies
 * are its findings); any other error is an error.
 */
function learnFromIncidentsError(err: unknown): void {
  if (err instanceof ApiError && err.status === 404) incidentsServed = false;
  else throw err;
}

/** Whether findings are incidents (true) or anomalies (false); asks the API once. */
export async function detectIncidents(): Promise<boolean> {
  if (incidentsServed === null) {
    try {
      await apiGet('/v1/incidents', { limit: 1 });
      incidentsServed = true;
    } catch (err) {
      learnFromIncidentsError(err);
    }
  }
  return incidentsServed ?? false;
}

export interface FindingFilters {
  status?: 'firing' | 'resolved' | '';
  /** Lowest severity shown. */
  severity?: Severity | '';
  /** Text matched against title, actors and targets. */
  text?: string;
  /** Findings active at or after this ISO time. */
  since?: string;
}

/** Applies the filters the API may not know (every one is cheap on a page of findings). */
export function matchFinding(f: Finding, filters: FindingFilters): boolean {
  if (filters.status && f.status !== filters.status) return false;
  if (filters.severity && rankSeverity(f.severity) < rankSeverity(filters.severity)) return false;
  if (filters.since && Date.parse(f.last_seen) < Date.parse(filters.since)) return false;
  const text = filters.text?.trim().toLowerCase();
  if (text && ![f.title, ...f.actors, ...f.targets, f.id].some((s) => s.toLowerCase().includes(text))) return false;
  return true;
}

/**
 * Newest findings (up to `limit`), filtered; status and time go to the API, the rest is matched here.
 * Until the API has told whether it serves incidents, the incident list itself asks (a 404 means
 * anomalies), so a page's first load makes one request, not a probe and then the list.
 */
export async function loadFindings(filters: FindingFilters = {}, limit = 200): Promise<Finding[]> {
  let found: Finding[] | undefined;
  if (incidentsServed !== false) {
    try {
      const page = await apiGet<Page<Incident>>('/v1/incidents', { limit: Math.min(limit, 500), status: filters.status || undefined, since: filters.since });
      incidentsServed = true;
      found = page.items.map(fromIncident);
    } catch (err) {
      learnFromIncidentsError(err);
    }
  }
  if (found === undefined) {
    const params: Params = { since: filters.since, status: filters.status || undefined, limit: Math.min(limit, 500) };
    const page = await apiGet<Page<Anomaly>>('/v1/anomalies', params);
    found = page.items.map(fromAnomaly);
  }
  return found.filter((f) => matchFinding(f, filters));
}

/** One finding by id, with its member anomalies (GET /v1/incidents/{id} answers both). */
export async function loadFinding(id: string): Promise<{ finding: Finding; members: Anomaly[] }> {
  if (await detectIncidents()) {
    const detail = await apiGet<{ incident: Incident; anomalies: Anomaly[] }>(`/v1/incidents/${encodeURIComponent(id)}`);
    return { finding: fromIncident(detail.incident), members: detail.anomalies };
  }
  const anomaly = await apiGet<Anomaly>(`/v1/anomalies/${encodeURIComponent(id)}`);
  return { finding: fromAnomaly(anomaly), members: [anomaly] };
}
