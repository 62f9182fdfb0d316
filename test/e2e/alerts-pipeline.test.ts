// The whole alert path with real parts on loopback: scenario traffic in wire formats → a ztwatch
// runtime with every role in one process (collector, memory bus, sink, embedded in-memory
// ClickHouse, live detectors, HTTP /metrics) → real Prometheus scraping it with the shipped rule
// files → real Alertmanager with the shipped routing → a webhook receiver here.
//
// Detectors run on event time, so the test drives event time faster than wall time: 40 minutes of
// normal mesh history, then the generator's policy misconfiguration (every caller of one service
// denied by RBAC for a couple of minutes) in two parts, then quiet normal traffic until the
// anomalies resolve. The denials of all the callers are one incident, one alert and one page. In
// the second part one denied caller retries hard, its deny spike turns more severe, the incident's
// severity rises with it, and the same alert is updated in the same notification group. The trace is placed so that it ends about now, where the TTL and Prometheus
// are at home.
//
// Differences from production, all made programmatically: rule copies with `for: 2s`, an
// Alertmanager copy posting to this receiver with group_wait 4s / group_interval 1s, the detector
// cycling every wall second and resolving after 120 s of quiet event time instead of 300 s.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnomalyChange } from '../../detectors/index.ts';
import type { Anomaly } from '../../core/anomaly.ts';
import type { Incident } from '../../core/incident.ts';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { IncidentChange } from '../../incidents/correlator.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { createActiveDetectors } from '../../detectors/engine.ts';
import { createScenario, groupByFormat, type Scenario, type ScenarioOptions } from '../../ingest/simulate/index.ts';
import { startRuntime, type Runtime } from '../../cli/runtime.ts';
import {
  ALERTMANAGER_CONFIG,
  RULE_FILES,
  listAlertmanagerAlerts,
  RUNBOOKS_URL,
  startAlertmanager,
  startPrometheus,
  startWebhookReceiver,
  waitFor,
  writeTestAlertmanagerConfig,
  writeTestRuleFiles,
  type ReceivedAlert,
  type RunningServer,
  type WebhookReceiver,
} from '../helpers/prometheus.ts';
import { createTestConfig } from '../helpers/store.ts';


const MINUTE_MS = 60_000;
/**
 * One policy misconfiguration after the generator's 75 learning minutes. With 5 minutes between
 * the first attack slot and the last 10 minutes, the attack lasts about 2¼ minutes. Half the
 * default rate keeps the backfill short on a busy machine and still gives the denied service
 * callers with dozens of requests a minute.
 */
const SCENARIO: Omit<ScenarioOptions, 'startMs'> = {
  seed: 11,
  services: 10,
  durationMs: 90 * MINUTE_MS,
  attacks: ['policy_misconfiguration'],
  peakRps: 20,
};
/** Normal history before the attack; deny_spike judges an entity after 30 minutes of it. */
const HISTORY_MS = 40 * MINUTE_MS;
/** Slack on top of the quiet event time the engine needs, for step alignment. */
const QUIET_MARGIN_MS = MINUTE_MS;
/** The trace ends this long after it is planned; feeding it takes about as long in wall time. */
const TRACE_END_AHEAD_MS = 30_000;
const ALLOWED_LATENESS_SECONDS = 15;
const RESOLVE_AFTER_SECONDS = 120;
/** Records per ingest call. */
const INGEST_BATCH = 5000;
/** Denied retries per second of one caller in the second part of the attack (the escalation). */
const RETRIES_PER_SECOND = 2;
/** Event time of the attack fed before the escalation: detection, at a lower severity. */
const FIRST_PART_MS = 40_000;
/** Longest wait for one stage of the path (detector catch-up, one delivery). */
const WAIT_MS = 40_000;

/** One `ztwatch_anomaly_firing` series read from /metrics. */
interface FiringSeries {
  readonly detector: string;
  readonly severity: string;
  readonly subject: string;
}

/** Parses the label set of one exposition line, e.g. `{a="x",b="y"}`. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    labels[match[1] as string] = (match[2] as string).replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** What the detector role exports about anomalies and incidents, read from a /metrics page. */
interface DetectorMetrics {
  readonly firing: FiringSeries[];
  /** ztwatch_incident_firing: incident id → severity rank. */
  readonly incidents: Map<string, number>;
  readonly watermarkSeconds: number;
}

/** Reads every firing anomaly and incident series and the detector watermark (seconds) from a /metrics page. */
function readDetectorMetrics(text: string): DetectorMetrics {
  const firing: FiringSeries[] = [];
  const incidents = new Map<string, number>();
  let watermarkSeconds = 0;
  for (const line of text.split('\n')) {
    const series = /^ztwatch_anomaly_firing\{(.*)\} \S+$/.exec(line);
    if (series) {
      const labels = parseLabels(series[1] as string);
      firing.push({ detector: labels.detector ?? '', severity: labels.severity ?? '', subject: labels.subject ?? '' });
      continue;
    }
    const incident = /^ztwatch_incident_firing\{(.*)\} (\S+)$/.exec(line);
    if (incident) {
      incidents.set(parseLabels(incident[1] as string).incident ?? '', Number(incident[2]));
      continue;
    }
    const watermark = /^ztwatch_detector_watermark_timestamp_seconds (\S+)$/.exec(line);
    if (watermark) watermarkSeconds = Number(watermark[1]);
  }
  return { firing, incidents, watermarkSeconds };
}

/** Severity names by the rank ztwatch_incident_firing carries. */
const SEVERITY_BY_RANK = ['info', 'low', 'medium', 'high', 'critical'];

describe('alert path end to end: scenario traffic → ztwatch runtime → Prometheus → Alertmanager → webhook', () => {
  let dir: string | undefined;
  let runtime: Runtime | undefined;
  let receiver: WebhookReceiver | undefined;
  let alertmanager: RunningServer | undefined;
  let prometheus: RunningServer | undefined;
  let scenario: Scenario;
  /** The denied service and the event-time bounds of the attack, from the scenario's label. */
  let deniedService: string;
  let attackStartMs: number;
  let attackEndMs: number;
  /** Quiet event time after the attack until the deny-spike anomalies must have resolved. */
  let quietMs: number;
  /** deny_spike's longest window: denials keep an anomaly active this long after the attack. */
  let denySpikeWindowMs: number;
  let stepMs: number;
  const changes: Array<{ change: AnomalyChange; anomaly: Anomaly }> = [];
  const incidentChanges: IncidentChange[] = [];
  /** The incident of the denied service and its alert as first delivered; the later tests check them. */
  let incidentId = '';
  let firstAlert: ReceivedAlert | undefined;

  const fetchMetrics = async (): Promise<DetectorMetrics> => {
    const res = await fetch(`${runtime?.url ?? ''}/metrics`);
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    return readDetectorMetrics(await res.text());
  };
  /** Deny-spike anomalies about the denied service (per calling edge, or the destination alone). */
  const isDenialAtTarget = (a: Anomaly): boolean => a.detector === 'deny_spike' && a.dst === deniedService;
  /** Incidents (latest state of each) that hold a denial at the denied service. */
  const incidentsOfTarget = (): Incident[] => {
    const ids = new Set(changes.filter((c) => isDenialAtTarget(c.anomaly)).map((c) => c.anomaly.id));
    const latest = new Map<string, Incident>();
    for (const c of incidentChanges) latest.set(c.incident.id, c.incident);
    return [...latest.values()].filter((i) => i.evidence.merged_into === undefined && i.members.some((m) => ids.has(m)));
  };
  /** Every notification Alertmanager sent about the incident. */
  const notificationsOf = (id: string) => (receiver?.notifications ?? []).filter((n) => n.alerts.some((a) => a.labels.alertname === 'ZtwatchIncident' && a.labels.incident === id));
  const alertsOf = (id: string) => (receiver?.alerts() ?? []).filter((a) => a.labels.alertname === 'ZtwatchIncident' && a.labels.incident === id);

  const details = (): string =>
    `anomaly changes: ${JSON.stringify(changes.map(({ change, anomaly }) => `${change} ${anomaly.id} ${anomaly.detector} ${anomaly.severity} ${anomaly.src ?? '-'} -> ${anomaly.dst ?? '-'} @${anomaly.last_seen}`))}\n` +
    `incident changes: ${JSON.stringify(incidentChanges.map(({ change, incident }) => `${change} ${incident.id} ${incident.status} ${incident.severity} notify=${incident.notify} members=${incident.members.join(',')}`))}\n` +
    `received: ${JSON.stringify((receiver?.alerts() ?? []).map((a) => ({ receiver: a.receiver, status: a.status, labels: a.labels, severity: a.annotations.severity })))}\n` +
    `prometheus log:\n${prometheus?.logs() ?? ''}\nalertmanager log:\n${alertmanager?.logs() ?? ''}`;

  /** Ingests the scenario's records in [fromMs, toMs), waits until the sink stored them, returns the newest event time. */
  const feed = async (fromMs: number, toMs: number): Promise<number> => {
    const ingestor = runtime?.ingestor;
    if (!ingestor) throw new Error('runtime has no collector role');
    let newestMs = 0;
    // Five event-time minutes per step keeps memory flat; the bus keeps their order.
    for (let stepMs = fromMs; stepMs < toMs; stepMs += 5 * MINUTE_MS) {
      const lines = scenario.generate(stepMs, Math.min(toMs, stepMs + 5 * MINUTE_MS));
      for (const line of lines) newestMs = Math.max(newestMs, line.timeMs);
      for (const [format, records] of groupByFormat(lines)) {
        for (let i = 0; i < records.length; i += INGEST_BATCH) {
          const result = await ingestor.ingest(format, records.slice(i, i + INGEST_BATCH));
          // The generator writes valid records only: a rejection means a parser regressed.
          expect(result.rejected, `${format} rejections: ${JSON.stringify(result.errors)}`).toBe(0);
        }
      }
    }
    if (runtime?.bus instanceof MemoryBus) await runtime.bus.whenIdle();
    return newestMs;
  };

  /** Ingests `caller`'s denied retries to the denied service, RETRIES_PER_SECOND in [fromMs, toMs); returns the newest event time. */
  const retry = async (caller: string, fromMs: number, toMs: number): Promise<number> => {
    const ingestor = runtime?.ingestor;
    if (!ingestor) throw new Error('runtime has no collector role');
    const events: NormalizedEvent[] = [];
    for (let t = fromMs; t < toMs; t += 1000 / RETRIES_PER_SECOND) {
      events.push({
        ...createEmptyEvent('envoy', Date.now()),
        event_id: randomUUID(),
        time: Math.floor(t),
        reporter: 'inbound',
        src_identity: caller,
        dst_service: deniedService,
        method: 'GET',
        path: '/api/retry',
        route: '/api/retry',
        status: 403,
        decision: 'deny',
        decision_reason: 'RBAC: access denied',
        mtls: 'yes',
      });
    }
    const result = await ingestor.ingestEvents(events);
    expect(result.rejected).toBe(0);
    return events[events.length - 1]?.time ?? fromMs;
  };

  /** Waits until the live detector has evaluated event time up to the newest stored event − lateness. */
  const waitForWatermark = (newestEventMs: number, what: string): Promise<DetectorMetrics> =>
    waitFor(
      async () => {
        const metrics = await fetchMetrics();
        if (metrics.watermarkSeconds * 1000 < newestEventMs - ALLOWED_LATENESS_SECONDS * 1000 - 1000) return undefined;
        // Incident rows and series follow the engine's changes through the incidents stage's queue.
        await runtime?.incidents?.flush();
        return fetchMetrics();
      },
      { timeoutMs: WAIT_MS, intervalMs: 250, what, details },
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ztwatch-alerts-pipeline-'));

    const config = createTestConfig({
      http: { port: 0 },
      detectors: { intervalSeconds: 1, resolveAfterSeconds: RESOLVE_AFTER_SECONDS, allowedLatenessSeconds: ALLOWED_LATENESS_SECONDS },
      log: { level: 'silent' },
    });
    // An anomaly stays active while denials remain inside deny_spike's longest window, resolves
    // resolveAfterSeconds later, and the watermark trails the newest event by the lateness.
    const denySpike = createActiveDetectors(config, config.detectors.stepSeconds).find((d) => d.definition.name === 'deny_spike');
    if (!denySpike) throw new Error('deny_spike is not enabled');
    denySpikeWindowMs = denySpike.windowMs;
    stepMs = config.detectors.stepSeconds * 1000;
    quietMs = denySpikeWindowMs + RESOLVE_AFTER_SECONDS * 1000 + ALLOWED_LATENESS_SECONDS * 1000 + 2 * stepMs + QUIET_MARGIN_MS;

    // Place the trace so it ends about now: the attack's offsets from the scenario start depend on the seed only.
    const planned = createScenario({ ...SCENARIO, startMs: 0 }).labels[0];
    if (!planned) throw new Error('the scenario injected no attack');
    const startMs = Math.floor((Date.now() + TRACE_END_AHEAD_MS - quietMs - Date.parse(planned.end)) / 10_000) * 10_000;
    scenario = createScenario({ ...SCENARIO, startMs });
    const label = scenario.labels[0];
    if (!label?.dst) throw new Error('the policy misconfiguration names no service');
    deniedService = label.dst;
    attackStartMs = Date.parse(label.start);
    attackEndMs = Date.parse(label.end);

    runtime = await startRuntime({
      config,
      roles: new Set(['collector', 'sink', 'detector', 'api']),
      log: () => undefined,
      onAnomaly: (anomaly, change) => changes.push({ change, anomaly }),
      onIncident: (change) => incidentChanges.push(change),
    });
    const metricsHost = new URL(runtime.url).host;

    receiver = await startWebhookReceiver();
    const webhookUrl = receiver.url;
    const startAlerting = async (): Promise<void> => {
      const tmp = dir as string;
      const amConfig = await writeTestAlertmanagerConfig(ALERTMANAGER_CONFIG, tmp, webhookUrl, { groupWait: '4s', groupInterval: '1s' });
      alertmanager = await startAlertmanager({ dir: join(tmp, 'alertmanager'), configFile: amConfig });
      const rules = await writeTestRuleFiles(RULE_FILES, tmp, '2s');
      prometheus = await startPrometheus({
        dir: join(tmp, 'prometheus'),
        ruleFiles: rules,
        scrapeTargets: [metricsHost],
        jobName: 'ztwatch-e2e',
        alertmanager: new URL(alertmanager.url).host,
      });
    };
    // Prometheus and Alertmanager start while the history is backfilled.
    const [historyNewestMs] = await Promise.all([feed(attackStartMs - HISTORY_MS, attackStartMs), startAlerting()]);
    await waitForWatermark(historyNewestMs, 'the detector to learn the history');
  }, 120_000);

  afterAll(async () => {
    await prometheus?.close();
    await alertmanager?.close();
    await receiver?.close();
    await runtime?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('pages the denials of every caller of the broken service as one incident, with labels, annotations and route as shipped', async () => {
    // Nothing about the denied service fires on normal history.
    expect(incidentsOfTarget()).toEqual([]);

    // The first part of the attack: enough for the detectors, not yet for the higher severity.
    const firstPartEndMs = attackStartMs + FIRST_PART_MS;
    const newestMs = await feed(attackStartMs, firstPartEndMs);
    await waitForWatermark(newestMs, 'the detector to evaluate the start of the attack');
    const [incident, ...others] = incidentsOfTarget();
    expect(others, details()).toEqual([]);
    expect(incident, details()).toBeDefined();
    incidentId = (incident as Incident).id;
    expect(incident?.notify).toBe(true);
    expect(incident?.targets).toContain(deniedService);
    expect(incident?.title).toContain(deniedService);

    const alert = await waitFor(() => alertsOf(incidentId).find((a) => a.status === 'firing'), { timeoutMs: WAIT_MS, what: 'ZtwatchIncident firing for the incident', details });
    expect(alert.labels).toEqual({ alertname: 'ZtwatchIncident', incident: incidentId, team: 'security', notify: 'page' });
    expect(alert.receiver).toBe('ztwatch-security-page');
    const metrics = await fetchMetrics();
    expect(alert.annotations.severity).toBe(SEVERITY_BY_RANK[metrics.incidents.get(incidentId) ?? 0]);
    expect(alert.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchincident`);
    expect(alert.annotations.description).toContain(`GET /v1/incidents/${incidentId}`);
    firstAlert = alert;

    // The store holds it; the API lists it with its members.
    const store = (runtime as Runtime).store;
    if (!store) throw new Error('runtime has no store');
    const stored = await store.query<{ id: string; notify: boolean }>(`SELECT id, notify FROM ${store.database}.incidents FINAL WHERE id = {id:String}`, { id: incidentId });
    expect(stored).toEqual([{ id: incidentId, notify: true }]);
    // No per-anomaly alert was sent anywhere.
    expect((receiver as WebhookReceiver).alerts().filter((a) => a.labels.team === 'security' && a.labels.notify !== 'page')).toEqual([]);
  }, 2 * WAIT_MS);

  it('escalates the incident in place: the same alert, updated, in one notification group', async () => {
    expect(firstAlert, 'no incident alert fired').toBeDefined();
    const before = await fetchMetrics();
    const rankBefore = before.incidents.get(incidentId) ?? 0;

    // The rest of the attack, while the busiest denied caller retries hard: its denials per minute
    // cross the level at which deny_spike raises that edge's severity.
    // (A destination-level finding may come first and name no single source: skip it.)
    const caller = changes.find((c) => c.change === 'opened' && isDenialAtTarget(c.anomaly) && c.anomaly.src)?.anomaly.src;
    if (!caller) throw new Error(`no denied caller named\n${details()}`);
    const [scenarioNewestMs, retriesNewestMs] = await Promise.all([feed(attackStartMs + FIRST_PART_MS, attackEndMs), retry(caller, attackStartMs + FIRST_PART_MS, attackEndMs)]);
    if (runtime?.bus instanceof MemoryBus) await runtime.bus.whenIdle();
    await waitForWatermark(Math.max(scenarioNewestMs, retriesNewestMs), 'the detector to evaluate the rest of the attack');
    const [incident, ...others] = incidentsOfTarget();
    expect(others, details()).toEqual([]);
    expect(incident?.id).toBe(incidentId);
    const rankAfter = SEVERITY_BY_RANK.indexOf(incident?.severity ?? 'info');
    expect(rankAfter, `the incident did not escalate\n${details()}`).toBeGreaterThan(rankBefore);
    // More callers' denials joined it rather than opening incidents of their own.
    expect(incident?.members.filter((id) => changes.some((c) => c.anomaly.id === id && isDenialAtTarget(c.anomaly))).length).toBeGreaterThan(1);

    // Alertmanager holds one alert for it, updated to the new severity under the same fingerprint.
    const updated = await waitFor(
      async () => (await listAlertmanagerAlerts(alertmanager?.url ?? '')).find((a) => a.labels.alertname === 'ZtwatchIncident' && a.labels.incident === incidentId && a.annotations.severity === SEVERITY_BY_RANK[rankAfter]),
      { timeoutMs: WAIT_MS, what: `the incident alert updated to ${SEVERITY_BY_RANK[rankAfter]} in Alertmanager`, details },
    );
    expect(updated.fingerprint).toBe(firstAlert?.fingerprint);
    const held = (await listAlertmanagerAlerts(alertmanager?.url ?? '')).filter((a) => a.labels.alertname === 'ZtwatchIncident' && a.labels.incident === incidentId);
    expect(held.map((a) => a.fingerprint)).toEqual([firstAlert?.fingerprint]);

    // Every notification about the incident: one group, one incident alert, and no second firing
    // page. Only an escalation to critical adds ZtwatchIncidentCritical to that group.
    const notifications = notificationsOf(incidentId);
    expect(new Set(notifications.map((n) => JSON.stringify(n.groupLabels)))).toEqual(new Set([JSON.stringify({ incident: incidentId })]));
    expect(new Set(notifications.flatMap((n) => n.alerts.filter((a) => a.labels.alertname === 'ZtwatchIncident').map((a) => a.fingerprint)))).toEqual(new Set([firstAlert?.fingerprint]));
    const criticalAlerts = (await listAlertmanagerAlerts(alertmanager?.url ?? '')).filter((a) => a.labels.alertname === 'ZtwatchIncidentCritical' && a.labels.incident === incidentId);
    expect(criticalAlerts.length).toBe(SEVERITY_BY_RANK[rankAfter] === 'critical' ? 1 : 0);
    expect(alertsOf(incidentId).filter((a) => a.status === 'resolved')).toEqual([]);
  }, 2 * WAIT_MS);

  it('resolves the incident once quiet traffic moves event time on, and Alertmanager delivers the resolution in the same group', async () => {
    expect(firstAlert, 'no incident alert fired').toBeDefined();
    const newestMs = await feed(attackEndMs, attackEndMs + quietMs);
    await waitForWatermark(newestMs, 'the detector to evaluate the quiet traffic');
    const resolvedAlert = await waitFor(() => alertsOf(incidentId).find((a) => a.status === 'resolved'), { timeoutMs: WAIT_MS, what: 'ZtwatchIncident resolved', details });
    expect(resolvedAlert.fingerprint).toBe(firstAlert?.fingerprint);
    expect(resolvedAlert.labels).toEqual(firstAlert?.labels);
    expect(resolvedAlert.receiver).toBe('ztwatch-security-page');
    expect(Date.parse(resolvedAlert.endsAt)).toBeGreaterThan(Date.parse(firstAlert?.startsAt ?? ''));

    const [incident] = incidentsOfTarget();
    expect(incident?.status).toBe('resolved');
    // Last active while the attack's denials were inside deny_spike's window.
    const lastSeenMs = Date.parse(incident?.last_seen ?? '');
    expect(lastSeenMs).toBeGreaterThan(attackStartMs);
    expect(lastSeenMs).toBeLessThanOrEqual(attackEndMs + denySpikeWindowMs + stepMs);
    expect((await fetchMetrics()).incidents.has(incidentId)).toBe(false);
    const notifications = notificationsOf(incidentId);
    expect(new Set(notifications.map((n) => JSON.stringify(n.groupLabels))).size).toBe(1);
  }, 2 * WAIT_MS);
});
