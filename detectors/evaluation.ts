// Detection quality, measured (DESIGN §6, §6b): pages — incidents that notify, and for comparison
// raw anomalies of severity low and above, and the firing periods of the static rules a team would
// otherwise run — are matched to labelled attacks. A page is true when it names the attack's source
// or target and overlaps its time. Per attack class: recall and median detection latency
// (detected_at − onset, event time); per system: pages per attack and false pages per hour. The
// static rules are evaluated on the same stored events, the way Prometheus would evaluate them on
// Istio/Envoy metrics.
import { medianSorted } from 'simple-statistics';
import { rankSeverity, type Anomaly } from '../core/anomaly.ts';
import type { Store } from '../store/client.ts';
import { DST_KEY_SQL, SRC_KEY_SQL } from './detector.ts';

/** A labelled attack (a line of labels.ndjson). */
export interface AttackLabel {
  readonly class: string;
  readonly src: string | null;
  readonly dst: string | null;
  /** ISO-8601, event time. */
  readonly start: string;
  readonly end: string;
}

/** A page (or alert) of any system, reduced to what matching needs. */
export interface EvalAlert {
  /** Detector name, `incident`, or `rule_403` / `rule_tls`. */
  readonly kind: string;
  /** Entities it names: identities, services, principals, IPs. */
  readonly entities: readonly string[];
  /** Event time it was raised (detected_at, or when the rule started firing), in ms. */
  readonly firedMs: number;
  /** Event time of its last evidence (or when the rule stopped firing), in ms. */
  readonly endMs: number;
  readonly detail: string;
}

/** One class's tally: attacks, attacks detected, latencies (s) of the detected ones. */
export interface ClassScore {
  labels: number;
  detected: number;
  latenciesSeconds: number[];
}

/** How one system did on one or more traces. */
export interface SystemScore {
  /** Pages raised. */
  readonly alerts: number;
  /** Pages matching at least one attack. */
  readonly matchedAlerts: number;
  readonly attacks: number;
  readonly classes: Record<string, ClassScore>;
  readonly hours: number;
  readonly falseAlerts: EvalAlert[];
}

/** A page may be raised this long before a label's start (window alignment) and still count, in ms. */
const EARLY_MS = 60_000;
/** A page whose evidence runs this long past a label's end is still its consequence, in ms. */
const LATE_MS = 5 * 60_000;

/** Raw anomalies as pages: severity low and above (info never notifies, see alerts/). */
export function alertsFromAnomalies(anomalies: readonly Anomaly[]): EvalAlert[] {
  return anomalies
    .filter((a) => rankSeverity(a.severity) >= rankSeverity('low'))
    .map((a) => {
      const detectedAt = Date.parse(a.detected_at);
      const actors = Array.isArray(a.evidence.actors) ? a.evidence.actors.map((x) => (typeof x === 'string' ? x : typeof x === 'object' && x !== null ? (x as { src?: unknown }).src : undefined)) : [];
      return {
        kind: a.detector,
        entities: [a.src, a.dst, ...actors].filter((e): e is string => typeof e === 'string' && e !== ''),
        firedMs: detectedAt,
        endMs: Math.max(detectedAt, Date.parse(a.last_seen)),
        detail: `${a.detector} ${a.severity} ${a.src ?? '-'} -> ${a.dst ?? '-'}: ${a.summary}`,
      };
    });
}

/** An incident as `alertsFromIncidents` needs it (core/incident.ts's record fits). */
export interface PagedIncident {
  readonly title: string;
  readonly severity: string;
  readonly detected_at: string;
  readonly last_seen: string;
  readonly actors: readonly string[];
  readonly targets: readonly string[];
  readonly notify: boolean;
  /** Member changes with the member's severity at that moment (when the incident reached critical). */
  readonly timeline?: ReadonlyArray<{ readonly at: string; readonly severity: string }>;
}

/**
 * A critical severity reached at most this long after the incident paged leaves in the same
 * notification (ZtwatchIncident and ZtwatchIncidentCritical fire together), in ms.
 */
export const SAME_NOTIFICATION_MS = 10_000;

/** Event time an incident first reached critical, from its timeline (undefined when it never did). */
export function criticalReachedMs(incident: PagedIncident): number | undefined {
  let first: number | undefined;
  for (const entry of incident.timeline ?? []) {
    if (entry.severity !== 'critical') continue;
    const at = Date.parse(entry.at);
    if (Number.isFinite(at) && (first === undefined || at < first)) first = at;
  }
  if (first === undefined && incident.severity === 'critical') return Date.parse(incident.detected_at);
  return first;
}

/**
 * Incidents as pages, as a human receives them: one page when an incident notifies, and a second
 * one when it reaches critical later than SAME_NOTIFICATION_MS after that (alerts/
 * ztwatch-incidents.rules.yml: ZtwatchIncidentCritical joins the incident's notification group,
 * which notifies again).
 */
export function alertsFromIncidents(incidents: readonly PagedIncident[]): EvalAlert[] {
  return incidents
    .filter((i) => i.notify)
    .flatMap((i) => {
      const detectedAt = Date.parse(i.detected_at);
      const entities = [...i.actors, ...i.targets];
      const endMs = Math.max(detectedAt, Date.parse(i.last_seen));
      const pages: EvalAlert[] = [{ kind: 'incident', entities, firedMs: detectedAt, endMs, detail: `incident ${i.severity}: ${i.title}` }];
      const criticalMs = criticalReachedMs(i);
      if (criticalMs !== undefined && criticalMs > detectedAt + SAME_NOTIFICATION_MS) {
        pages.push({ kind: 'incident_critical', entities, firedMs: criticalMs, endMs: Math.max(criticalMs, endMs), detail: `incident became critical: ${i.title}` });
      }
      return pages;
    });
}

/** True when the page names the label's source or target and overlaps its time (with slack). */
export function matchesLabel(alert: EvalAlert, label: AttackLabel): boolean {
  const start = Date.parse(label.start);
  const end = Date.parse(label.end);
  if (alert.firedMs > end + LATE_MS || alert.endMs < start - EARLY_MS) return false;
  const wanted = [label.src, label.dst].filter((e): e is string => !!e);
  return alert.entities.some((e) => wanted.includes(e));
}

/** Scores one system's pages against the labels of one trace of `hours`. */
export function scoreAlerts(alerts: readonly EvalAlert[], labels: readonly AttackLabel[], hours: number): SystemScore {
  const classes: SystemScore['classes'] = {};
  for (const label of labels) {
    const entry = (classes[label.class] ??= { labels: 0, detected: 0, latenciesSeconds: [] });
    entry.labels++;
    const hits = alerts.filter((a) => matchesLabel(a, label));
    if (hits.length === 0) continue;
    entry.detected++;
    const first = Math.min(...hits.map((a) => a.firedMs));
    entry.latenciesSeconds.push(Math.max(0, (first - Date.parse(label.start)) / 1000));
  }
  const falseAlerts = alerts.filter((a) => !labels.some((l) => matchesLabel(a, l)));
  return { alerts: alerts.length, matchedAlerts: alerts.length - falseAlerts.length, attacks: labels.length, classes, hours, falseAlerts };
}

/** Adds scores of several traces together. */
export function mergeScores(scores: readonly SystemScore[]): SystemScore {
  const classes: SystemScore['classes'] = {};
  for (const s of scores) {
    for (const [cls, c] of Object.entries(s.classes)) {
      const entry = (classes[cls] ??= { labels: 0, detected: 0, latenciesSeconds: [] });
      entry.labels += c.labels;
      entry.detected += c.detected;
      entry.latenciesSeconds.push(...c.latenciesSeconds);
    }
  }
  return {
    alerts: scores.reduce((n, s) => n + s.alerts, 0),
    matchedAlerts: scores.reduce((n, s) => n + s.matchedAlerts, 0),
    attacks: scores.reduce((n, s) => n + s.attacks, 0),
    classes,
    hours: scores.reduce((n, s) => n + s.hours, 0),
    falseAlerts: scores.flatMap((s) => s.falseAlerts),
  };
}

/** True pages per attack (a page matching two overlapping attacks counts once). */
export function computePagesPerAttack(score: SystemScore): number {
  return score.attacks === 0 ? 0 : score.matchedAlerts / score.attacks;
}

/** False pages per hour of traffic. */
export function computeFalsePagesPerHour(score: SystemScore): number {
  return (score.alerts - score.matchedAlerts) / Math.max(score.hours, 1e-9);
}

/** Median of latencies in seconds, or undefined when none. */
export function medianLatency(latenciesSeconds: readonly number[]): number | undefined {
  if (latenciesSeconds.length === 0) return undefined;
  return medianSorted([...latenciesSeconds].sort((a, b) => a - b));
}

/** A static Prometheus-style rule: `expr > threshold` over a rate window, held for `forSeconds`. */
export interface StaticRule {
  readonly name: string;
  /** Alert kind (`rule_403`, `rule_tls`). */
  readonly kind: string;
  /** SQL returning `ts` (Unix seconds, 15 s buckets), `key`, `src`, `dst` and `n` from `events` for [fromMs, toMs). */
  readonly sql: (database: string) => string;
  readonly rateWindowSeconds: number;
  /** The rule fires while events in the rate window exceed this count. */
  readonly minCount: number;
  readonly forSeconds: number;
}

const EVAL_STEP_SECONDS = 15;

/** The seeds' `UnauthorizedServiceCommunication`: 403 rate (destination reporter) > 0 over 5m, for 1m, by source and destination workload. */
export const RULE_403: StaticRule = {
  name: '403 rate > 0 for 1m',
  kind: 'rule_403',
  sql: (db) => `
    SELECT toUInt32(toStartOfInterval(time, INTERVAL ${EVAL_STEP_SECONDS} SECOND)) AS ts, concat(${SRC_KEY_SQL}, ' -> ', ${DST_KEY_SQL}) AS key,
           ${SRC_KEY_SQL} AS src, ${DST_KEY_SQL} AS dst, toFloat64(sum(count)) AS n
    FROM ${db}.events
    WHERE status = 403 AND reporter = 'inbound' AND time >= fromUnixTimestamp64Milli({fromMs:Int64}) AND time < fromUnixTimestamp64Milli({toMs:Int64})
    GROUP BY ts, key, src, dst`,
  rateWindowSeconds: 300,
  minCount: 0,
  forSeconds: 60,
};

/** The seeds' `MtlsHandshakeFailures`: TLS handshake errors > 0.1/s over 5m, for 2m, by reporting pod. */
export const RULE_TLS: StaticRule = {
  name: 'TLS handshake errors > 0.1/s for 2m',
  kind: 'rule_tls',
  sql: (db) => `
    SELECT toUInt32(toStartOfInterval(time, INTERVAL ${EVAL_STEP_SECONDS} SECOND)) AS ts,
           if(reporter = 'inbound', ${DST_KEY_SQL}, ${SRC_KEY_SQL}) AS key, key AS src, key AS dst, toFloat64(sum(count)) AS n
    FROM ${db}.events
    WHERE tls_failure != '' AND time >= fromUnixTimestamp64Milli({fromMs:Int64}) AND time < fromUnixTimestamp64Milli({toMs:Int64})
    GROUP BY ts, key`,
  rateWindowSeconds: 300,
  minCount: 0.1 * 300,
  forSeconds: 120,
};

/** Evaluates a static rule every 15 s of event time over [fromMs, toMs); each firing period is one alert. */
export async function evaluateStaticRule(store: Store, rule: StaticRule, fromMs: number, toMs: number): Promise<EvalAlert[]> {
  const rows = await store.query<{ ts: number; key: string; src: string; dst: string; n: number }>(rule.sql(store.database), { fromMs, toMs });
  const series = new Map<string, { src: string; dst: string; buckets: Map<number, number> }>();
  for (const row of rows) {
    let s = series.get(row.key);
    if (!s) series.set(row.key, (s = { src: row.src, dst: row.dst, buckets: new Map() }));
    s.buckets.set(Number(row.ts), Number(row.n));
  }
  const alerts: EvalAlert[] = [];
  const first = Math.floor(fromMs / 1000 / EVAL_STEP_SECONDS) * EVAL_STEP_SECONDS;
  const last = Math.ceil(toMs / 1000);
  const windowBuckets = rule.rateWindowSeconds / EVAL_STEP_SECONDS;
  for (const [key, s] of series) {
    const times = [...s.buckets.keys()].sort((a, b) => a - b);
    const startAt = Math.max(first, (times[0] ?? first) - EVAL_STEP_SECONDS);
    let sum = 0;
    let pendingSince: number | undefined;
    let firingSince: number | undefined;
    for (let t = startAt; t <= last + rule.rateWindowSeconds; t += EVAL_STEP_SECONDS) {
      // Sliding sum of the buckets in (t − window, t].
      sum += s.buckets.get(t) ?? 0;
      sum -= s.buckets.get(t - windowBuckets * EVAL_STEP_SECONDS) ?? 0;
      const active = sum > rule.minCount + 1e-9;
      if (active) {
        pendingSince ??= t;
        if (firingSince === undefined && t - pendingSince >= rule.forSeconds) firingSince = t;
      } else {
        if (firingSince !== undefined) alerts.push({ kind: rule.kind, entities: [s.src, s.dst, key], firedMs: firingSince * 1000, endMs: t * 1000, detail: `${rule.name} ${key}` });
        pendingSince = undefined;
        firingSince = undefined;
        if (t > (times[times.length - 1] ?? 0) + rule.rateWindowSeconds) break;
      }
    }
    if (firingSince !== undefined) alerts.push({ kind: rule.kind, entities: [s.src, s.dst, key], firedMs: firingSince * 1000, endMs: last * 1000, detail: `${rule.name} ${key}` });
  }
  return alerts;
}
