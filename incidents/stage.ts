// The live incidents stage: fed by the detector engine's anomaly changes (in event-time order), it
// runs the correlator, writes every incident change as a new row (higher version) in `incidents`,
// and keeps the per-incident metrics: `ztwatch_incident_firing{incident}` with the severity rank as
// value, so an incident whose severity rises keeps one series (one alert) instead of resolving one
// and firing another, and `ztwatch_incident_info{incident,title,kind}` for the alert's text.
// A restart takes back the incidents that were firing, so their members keep joining them.
import type { Anomaly } from '../core/anomaly.ts';
import { rankSeverity } from '../core/anomaly.ts';
import type { Incident } from '../core/incident.ts';
import { codeOf } from '../core/errors.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Store } from '../store/client.ts';
import { getAnomaliesByIds } from '../store/anomaly-queries.ts';
import { insertIncidents, loadFiringIncidents } from '../store/incident-queries.ts';
import { createIncidentCorrelator, type IncidentChange, type IncidentCorrelator, type IncidentOptions, type MemberChange } from './correlator.ts';

/** Most ztwatch_incident_firing series at once; beyond it incidents still page through the API and table, not Prometheus. */
export const MAX_INCIDENT_SERIES = 100;

export interface IncidentStageOptions {
  readonly store: Store;
  readonly metrics: Metrics;
  readonly correlation?: Partial<IncidentOptions>;
  /** Called for every incident change after its row is written. */
  readonly onIncident?: (change: IncidentChange) => void;
}

export interface IncidentStage {
  /** Takes back firing incidents from the table; call once, before the detectors start. */
  restore(): Promise<void>;
  /** Feeds one anomaly change (the engine's onAnomaly). Writes happen in order, in the background. */
  observe(anomaly: Anomaly, change: MemberChange): void;
  /** Moves event time on (the engine's watermark), so held incidents page on time. */
  advanceTo(watermarkMs: number): void;
  /** Resolves once every change so far is written. */
  flush(): Promise<void>;
  readonly correlator: IncidentCorrelator;
}

/** Kind of an incident, from its evidence; bounded by the correlator's kinds. */
const kindOf = (incident: Incident): string => (typeof incident.evidence.kind === 'string' ? incident.evidence.kind : 'other');

/** Creates the live stage over a migrated store. */
export function createIncidentStage(options: IncidentStageOptions): IncidentStage {
  const { store, metrics, onIncident } = options;
  // A live process runs for months: resolved incidents are forgotten once nothing can join them.
  const correlator = createIncidentCorrelator({ ...options.correlation, keepResolved: false });
  const stage = metrics.stage('incidents');
  const versions = new Map<string, number>();
  /** Label sets of each incident's series, while it has them. */
  const series = new Map<string, { title: string; kind: string }>();
  const firing = new Map<string, Incident>();
  let queue: Promise<void> = Promise.resolve();

  /** `restored`: taken back after a restart, already counted by the process that raised it. */
  function updateMetrics(change: IncidentChange, restored = false): void {
    const incident = change.incident;
    const kind = kindOf(incident);
    if (change.change === 'opened') metrics.incidentsOpened.inc({ kind });
    if (incident.status === 'firing') firing.set(incident.id, incident);
    else firing.delete(incident.id);
    const shown = series.get(incident.id);
    if (incident.status === 'firing' && incident.notify) {
      if (!shown && series.size >= MAX_INCIDENT_SERIES) return;
      // A reopened incident keeps its identity and was paged for already.
      if (!shown && !restored && incident.evidence.paged_before_reopen !== true) metrics.incidentsPaged.inc({ kind });
      if (shown && (shown.title !== incident.title || shown.kind !== kind)) metrics.incidentInfo.remove({ incident: incident.id, ...shown });
      series.set(incident.id, { title: incident.title, kind });
      // 1 low … 4 critical: the value carries the severity, the labels stay put.
      metrics.incidentFiring.set({ incident: incident.id }, rankSeverity(incident.severity));
      metrics.incidentInfo.set({ incident: incident.id, title: incident.title, kind }, 1);
    } else if (shown) {
      metrics.incidentFiring.remove({ incident: incident.id });
      metrics.incidentInfo.remove({ incident: incident.id, ...shown });
      series.delete(incident.id);
    }
  }

  function refreshActive(): void {
    metrics.incidentsActive.reset();
    const counts = new Map<string, number>();
    for (const i of firing.values()) counts.set(i.severity, (counts.get(i.severity) ?? 0) + 1);
    for (const [severity, n] of counts) metrics.incidentsActive.set({ severity }, n);
  }

  function enqueue(changes: IncidentChange[]): void {
    if (changes.length === 0) return;
    const rows = changes.map((c) => {
      const version = (versions.get(c.incident.id) ?? 0) + 1;
      versions.set(c.incident.id, version);
      return { incident: c.incident, version };
    });
    queue = queue.then(async () => {
      try {
        await insertIncidents(store, rows);
        stage.sent(rows.length);
      } catch (err) {
        // The correlator's state stands; the next change of each incident writes it whole again.
        stage.error(codeOf(err, 'ZTW_STORE_QUERY_FAILED'));
      }
      for (const c of changes) {
        updateMetrics(c);
        onIncident?.(c);
      }
      refreshActive();
    });
  }

  return {
    correlator,
    async restore() {
      const stored = await loadFiringIncidents(store);
      correlator.restore(stored.map((s) => s.incident));
      for (const s of stored) {
        versions.set(s.incident.id, s.version);
        updateMetrics({ incident: s.incident, change: 'updated' }, true);
      }
      refreshActive();
      // A member that resolved after its incident's last row was written (a stop in between) is
      // not restored by the detectors, so nothing would resolve it here: catch up from the table.
      const firingMembers = new Set<string>();
      for (const { incident } of stored) {
        const facts = incident.evidence.member_facts as Record<string, { status?: unknown }> | undefined;
        for (const id of incident.members) if (facts?.[id]?.status !== 'resolved') firingMembers.add(id);
      }
      const members = await getAnomaliesByIds(store, [...firingMembers]);
      for (const anomaly of members) if (anomaly.status === 'resolved') enqueue(correlator.observe(anomaly, 'resolved'));
      await queue;
    },
    observe(anomaly, change) {
      stage.received();
      enqueue(correlator.observe(anomaly, change));
    },
    advanceTo(watermarkMs) {
      enqueue(correlator.advanceTo(watermarkMs));
    },
    flush: () => queue,
  };
}
