// Metric names and the stage-counter pattern (DESIGN §7): every stage counts received, sent,
// dropped{reason} and errors{code}. Names live here once; stages create them on an injected
// registry, so tests stay isolated and one process can host every role.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Stages that report the standard counters. */
export const STAGES = ['collector', 'bus', 'sink', 'detector', 'incidents', 'api'] as const;
export type Stage = (typeof STAGES)[number];

export const METRIC_NAMES = {
  received: 'ztwatch_stage_received_events_total',
  sent: 'ztwatch_stage_sent_events_total',
  dropped: 'ztwatch_stage_dropped_events_total',
  errors: 'ztwatch_stage_errors_total',
  deadLetters: 'ztwatch_deadletter_events_total',
  batchLatency: 'ztwatch_sink_batch_duration_seconds',
  batchRows: 'ztwatch_sink_batch_rows',
  consumerLag: 'ztwatch_consumer_lag_messages',
  freshness: 'ztwatch_sink_freshness_seconds',
  lastEventTime: 'ztwatch_sink_last_event_timestamp_seconds',
  busInFlight: 'ztwatch_bus_in_flight_messages',
  detectorRunSeconds: 'ztwatch_detector_run_duration_seconds',
  detectorLastRun: 'ztwatch_detector_last_success_timestamp_seconds',
  detectorWatermark: 'ztwatch_detector_watermark_timestamp_seconds',
  anomaliesOpened: 'ztwatch_anomalies_opened_total',
  anomaliesActive: 'ztwatch_anomalies_active',
  anomalyFiring: 'ztwatch_anomaly_firing',
  incidentsOpened: 'ztwatch_incidents_opened_total',
  incidentsPaged: 'ztwatch_incidents_paged_total',
  incidentsActive: 'ztwatch_incidents_active',
  incidentFiring: 'ztwatch_incident_firing',
  incidentInfo: 'ztwatch_incident_info',
} as const;

/** Standard counters for one stage, labelled by `stage`. */
export interface StageMetrics {
  received(count?: number): void;
  sent(count?: number): void;
  dropped(reason: string, count?: number): void;
  error(code: string, count?: number): void;
}

/** The process-wide metric set, created once on a registry. */
export interface Metrics {
  readonly registry: Registry;
  stage(stage: Stage): StageMetrics;
  readonly deadLetters: Counter<'source' | 'reason'>;
  readonly batchLatency: Histogram<'stage'>;
  readonly batchRows: Histogram<'stage'>;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly freshness: Histogram<never>;
  readonly lastEventTime: Gauge<never>;
  readonly busInFlight: Gauge<never>;
  readonly detectorRunSeconds: Histogram<'detector'>;
  readonly detectorLastRun: Gauge<'detector'>;
  readonly detectorWatermark: Gauge<never>;
  readonly anomaliesOpened: Counter<'detector' | 'severity'>;
  readonly anomaliesActive: Gauge<'detector' | 'severity'>;
  readonly anomalyFiring: Gauge<'detector' | 'severity' | 'subject'>;
  readonly incidentsOpened: Counter<'kind'>;
  readonly incidentsPaged: Counter<'kind'>;
  readonly incidentsActive: Gauge<'severity'>;
  /** One series per paging, firing incident; its identity is the incident id alone, the value its severity rank. */
  readonly incidentFiring: Gauge<'incident'>;
  readonly incidentInfo: Gauge<'incident' | 'title' | 'kind'>;
}

/** Creates every ztwatch metric on `registry` (a fresh one by default). */
export function createMetrics(registry: Registry = new Registry()): Metrics {
  const received = new Counter({ name: METRIC_NAMES.received, help: 'Events received by a stage.', labelNames: ['stage'], registers: [registry] });
  const sent = new Counter({ name: METRIC_NAMES.sent, help: 'Events a stage passed on.', labelNames: ['stage'], registers: [registry] });
  const dropped = new Counter({ name: METRIC_NAMES.dropped, help: 'Events a stage did not pass on, by reason.', labelNames: ['stage', 'reason'], registers: [registry] });
  const errors = new Counter({ name: METRIC_NAMES.errors, help: 'Errors in a stage, by code.', labelNames: ['stage', 'code'], registers: [registry] });
  const stages = new Map<Stage, StageMetrics>();
  const stage = (name: Stage): StageMetrics => {
    let m = stages.get(name);
    if (!m) {
      m = {
        received: (n = 1) => received.inc({ stage: name }, n),
        sent: (n = 1) => sent.inc({ stage: name }, n),
        dropped: (reason, n = 1) => dropped.inc({ stage: name, reason }, n),
        error: (code, n = 1) => errors.inc({ stage: name, code }, n),
      };
      stages.set(name, m);
    }
    return m;
  };
  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
  return {
    registry,
    stage,
    deadLetters: new Counter({ name: METRIC_NAMES.deadLetters, help: 'Records dead-lettered, by source and reason.', labelNames: ['source', 'reason'], registers: [registry] }),
    batchLatency: new Histogram({ name: METRIC_NAMES.batchLatency, help: 'Time to write one batch, in seconds.', labelNames: ['stage'], buckets: seconds, registers: [registry] }),
    batchRows: new Histogram({ name: METRIC_NAMES.batchRows, help: 'Rows per written batch.', labelNames: ['stage'], buckets: [1, 10, 100, 1000, 5000, 10_000, 20_000, 50_000, 100_000], registers: [registry] }),
    consumerLag: new Gauge({ name: METRIC_NAMES.consumerLag, help: 'Messages behind the end of the topic, per partition.', labelNames: ['topic', 'partition'], registers: [registry] }),
    freshness: new Histogram({ name: METRIC_NAMES.freshness, help: 'Time from ingest to queryable, in seconds.', buckets: seconds, registers: [registry] }),
    lastEventTime: new Gauge({ name: METRIC_NAMES.lastEventTime, help: 'Newest event time stored, Unix seconds.', registers: [registry] }),
    busInFlight: new Gauge({ name: METRIC_NAMES.busInFlight, help: 'Messages published but not yet acknowledged downstream.', registers: [registry] }),
    detectorRunSeconds: new Histogram({ name: METRIC_NAMES.detectorRunSeconds, help: 'Duration of one detector run, in seconds.', labelNames: ['detector'], buckets: seconds, registers: [registry] }),
    detectorLastRun: new Gauge({ name: METRIC_NAMES.detectorLastRun, help: 'Wall time of the last successful run, Unix seconds.', labelNames: ['detector'], registers: [registry] }),
    detectorWatermark: new Gauge({ name: METRIC_NAMES.detectorWatermark, help: 'Event time up to which detectors have evaluated, Unix seconds.', registers: [registry] }),
    anomaliesOpened: new Counter({ name: METRIC_NAMES.anomaliesOpened, help: 'Anomalies opened, by detector and severity.', labelNames: ['detector', 'severity'], registers: [registry] }),
    anomaliesActive: new Gauge({ name: METRIC_NAMES.anomaliesActive, help: 'Firing anomalies, by detector and severity.', labelNames: ['detector', 'severity'], registers: [registry] }),
    anomalyFiring: new Gauge({ name: METRIC_NAMES.anomalyFiring, help: 'One series per firing anomaly (capped, see README), value = score.', labelNames: ['detector', 'severity', 'subject'], registers: [registry] }),
    incidentsOpened: new Counter({ name: METRIC_NAMES.incidentsOpened, help: 'Incidents opened, by kind (scan, certificate, denials, ...).', labelNames: ['kind'], registers: [registry] }),
    incidentsPaged: new Counter({ name: METRIC_NAMES.incidentsPaged, help: 'Incidents that started to page, by kind.', labelNames: ['kind'], registers: [registry] }),
    incidentsActive: new Gauge({ name: METRIC_NAMES.incidentsActive, help: 'Firing incidents, by severity.', labelNames: ['severity'], registers: [registry] }),
    incidentFiring: new Gauge({
      name: METRIC_NAMES.incidentFiring,
      help: 'One series per firing incident that pages (capped, see README); value = severity rank (1 low, 2 medium, 3 high, 4 critical).',
      labelNames: ['incident'],
      registers: [registry],
    }),
    incidentInfo: new Gauge({ name: METRIC_NAMES.incidentInfo, help: 'Title and kind of each ztwatch_incident_firing series, value 1 (join on incident).', labelNames: ['incident', 'title', 'kind'], registers: [registry] }),
  };
}
