// The whole alert path with real parts on loopback: scenario traffic in wire formats → a ztwatch
// runtime with every role in one process (collector, memory bus, sink, embedded in-memory
// ClickHouse, live detectors, HTTP /metrics) → real Prometheus scraping it with the shipped rule
// files → real Alertmanager with the shipped routing → a webhook receiver here.
//
// Detectors run on event time, so the test drives event time faster than wall time: 40 minutes of
// normal mesh history, then the generator's policy misconfiguration (every caller of one service
// denied by RBAC for a couple of minutes), then quiet normal traffic until the anomaly resolves.
// The trace is placed so that it ends about now, where the TTL and Prometheus are at home.
//
// Differences from production, all made programmatically: rule copies with `for: 2s`, an
// Alertmanager copy posting to this receiver with group_wait 4s / group_interval 1s, the detector
// cycling every wall second and resolving after 120 s of quiet event time instead of 300 s.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnomalyChange } from '../../detectors/index.ts';
import type { Anomaly } from '../../core/anomaly.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { createActiveDetectors } from '../../detectors/engine.ts';
import { createScenario, groupByFormat, type Scenario, type ScenarioOptions } from '../../ingest/simulate/index.ts';
import { startRuntime, type Runtime } from '../../cli/runtime.ts';
import {
  ALERTMANAGER_CONFIG,
  RULE_FILES,
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

/** Reads every firing anomaly series and the detector watermark (seconds) from a /metrics page. */
function readDetectorMetrics(text: string): { firing: FiringSeries[]; watermarkSeconds: number } {
  const firing: FiringSeries[] = [];
  let watermarkSeconds = 0;
  for (const line of text.split('\n')) {
    const series = /^ztwatch_anomaly_firing\{(.*)\} \S+$/.exec(line);
    if (series) {
      const labels = parseLabels(series[1] as string);
      firing.push({ detector: labels.detector ?? '', severity: labels.severity ?? '', subject: labels.subject ?? '' });
      continue;
    }
    const watermark = /^ztwatch_detector_watermark_timestamp_seconds (\S+)$/.exec(line);
    if (watermark) watermarkSeconds = Number(watermark[1]);
  }
  return { firing, watermarkSeconds };
}

/** A deny-spike anomaly's subject: `src -> dst` for an edge, else the destination or the source alone. */
function formatSubject(anomaly: Anomaly): string {
  return anomaly.src !== null && anomaly.dst !== null ? `${anomaly.src} -> ${anomaly.dst}` : (anomaly.dst ?? anomaly.src ?? '');
}

/** The Alertmanager route the shipped config picks for a detector alert of this severity. */
function routeForSeverity(severity: string): string {
  return severity === 'critical' || severity === 'high' ? 'ztwatch-security-page' : 'ztwatch-security-queue';
}

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
  /** Deny-spike alerts delivered firing, keyed by subject; the resolution test checks each. */
  const fired = new Map<string, ReceivedAlert>();

  const fetchMetrics = async (): Promise<{ firing: FiringSeries[]; watermarkSeconds: number }> => {
    const res = await fetch(`${runtime?.url ?? ''}/metrics`);
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    return readDetectorMetrics(await res.text());
  };
  /**
   * Deny-spike series about the denied service: per calling edge (`src -> dst`), or the destination
   * alone when no single edge explains its denials. Other detectors may flag normal traffic too.
   */
  const denySpikesOn = (firing: readonly FiringSeries[]): FiringSeries[] =>
    firing.filter((s) => s.detector === 'deny_spike' && (s.subject === deniedService || s.subject.endsWith(` -> ${deniedService}`)));

  const details = (): string =>
    `anomaly changes: ${JSON.stringify(changes.map(({ change, anomaly }) => `${change} ${anomaly.detector} ${anomaly.severity} ${formatSubject(anomaly)} @${anomaly.last_seen}`))}\n` +
    `received: ${JSON.stringify((receiver?.alerts() ?? []).map((a) => ({ receiver: a.receiver, status: a.status, alertname: a.labels.alertname, subject: a.labels.subject, severity: a.labels.severity })))}\n` +
    `prometheus log:\n${prometheus?.logs() ?? ''}\nalertmanager log:\n${alertmanager?.logs() ?? ''}`;

  /** Waits until `find` returns an alert for every key (one deadline for all), and returns them by key. */
  const waitForEach = <K>(keys: readonly K[], find: (key: K) => ReceivedAlert | undefined, what: string): Promise<Map<K, ReceivedAlert>> =>
    waitFor(
      () => {
        const found = new Map<K, ReceivedAlert>();
        for (const key of keys) {
          const alert = find(key);
          if (!alert) return undefined;
          found.set(key, alert);
        }
        return found;
      },
      { timeoutMs: WAIT_MS, what, details },
    );

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

  /** Waits until the live detector has evaluated event time up to the newest stored event − lateness. */
  const waitForWatermark = (newestEventMs: number, what: string): Promise<FiringSeries[]> =>
    waitFor(
      async () => {
        const { firing, watermarkSeconds } = await fetchMetrics();
        return watermarkSeconds * 1000 >= newestEventMs - ALLOWED_LATENESS_SECONDS * 1000 - 1000 ? firing : undefined;
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

  it('raises ZtwatchDenySpike for every denied caller, with labels, annotations and route as shipped', async () => {
    // Nothing about the denied service fires on normal history.
    expect(denySpikesOn((await fetchMetrics()).firing)).toEqual([]);

    const newestMs = await feed(attackStartMs, attackEndMs);
    const firing = denySpikesOn(await waitForWatermark(newestMs, 'the detector to evaluate the attack'));
    expect(firing.length, details()).toBeGreaterThan(0);

    // Every open anomaly reaches the receiver as its own alert, through the route of its severity.
    const delivered = await waitForEach(
      firing,
      (series) => (receiver as WebhookReceiver).alerts().find((a) => a.status === 'firing' && a.labels.alertname === 'ZtwatchDenySpike' && a.labels.subject === series.subject && a.labels.severity === series.severity),
      'ZtwatchDenySpike firing for every open deny-spike anomaly',
    );
    for (const [series, alert] of delivered) {
      // The rule splits an edge subject into src and dst; a destination subject carries neither.
      const edge = /^(.+?) -> (.+)$/.exec(series.subject);
      expect(alert.labels).toEqual({
        alertname: 'ZtwatchDenySpike',
        detector: 'deny_spike',
        severity: series.severity,
        subject: series.subject,
        ...(edge ? { src: edge[1], dst: edge[2] } : {}),
        team: 'security',
      });
      expect(alert.receiver).toBe(routeForSeverity(series.severity));
      expect(alert.annotations.summary).toBe(`Deny spike: ${series.subject}`);
      expect(alert.annotations.description).toContain(`Detector deny_spike sees denials for ${series.subject} far above their own baseline`);
      expect(alert.annotations.description).toMatch(new RegExp(`\\(score \\d+\\.\\d{2}, severity ${series.severity}\\)`));
      expect(alert.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchdenyspike`);
      fired.set(series.subject, alert);
    }

    // The store holds the same open anomalies, and they stay open while event time stands still.
    const store = (runtime as Runtime).store;
    if (!store) throw new Error('runtime has no store');
    const stored = await store.query<{ subject: string }>(
      `SELECT subject FROM ${store.database}.anomalies FINAL WHERE detector = 'deny_spike' AND status = 'firing' AND dst = {dst:String}`,
      { dst: deniedService },
    );
    expect(stored.map((r) => r.subject).sort()).toEqual(firing.map((s) => s.subject).sort());
    expect(denySpikesOn((await fetchMetrics()).firing).map((s) => s.subject).sort()).toEqual(firing.map((s) => s.subject).sort());
  }, 2 * WAIT_MS);

  it('resolves the anomalies once quiet traffic moves event time on, and Alertmanager delivers the resolution', async () => {
    expect(fired.size, 'no deny-spike alert fired').toBeGreaterThan(0);
    const before = (receiver as WebhookReceiver).alerts().length;

    const newestMs = await feed(attackEndMs, attackEndMs + quietMs);
    const firing = denySpikesOn(await waitForWatermark(newestMs, 'the detector to evaluate the quiet traffic'));
    expect(firing, `still firing once the detector evaluated ${quietMs / 1000} s of quiet event time\n${details()}`).toEqual([]);

    // Each alert that fired comes back resolved: same fingerprint, labels and route.
    const resolutions = await waitForEach(
      [...fired],
      ([, firingAlert]) => (receiver as WebhookReceiver).alerts().slice(before).find((a) => a.status === 'resolved' && a.fingerprint === firingAlert.fingerprint),
      'ZtwatchDenySpike resolved for every alert that fired',
    );
    for (const [[subject, firingAlert], resolved] of resolutions) {
      expect(resolved.labels).toEqual(firingAlert.labels);
      expect(resolved.receiver).toBe(firingAlert.receiver);
      expect(resolved.annotations.summary).toBe(`Deny spike: ${subject}`);
      expect(resolved.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchdenyspike`);
      expect(Date.parse(resolved.endsAt)).toBeGreaterThan(Date.parse(firingAlert.startsAt));
      // The lifecycle behind it: last active while the attack's denials were inside the window.
      const change = changes.find((c) => c.change === 'resolved' && c.anomaly.detector === 'deny_spike' && formatSubject(c.anomaly) === subject);
      expect(change, `no resolved change for ${subject}\n${details()}`).toBeDefined();
      const lastSeenMs = Date.parse(change?.anomaly.last_seen ?? '');
      expect(lastSeenMs).toBeGreaterThan(attackStartMs);
      expect(lastSeenMs).toBeLessThanOrEqual(attackEndMs + denySpikeWindowMs + stepMs);
    }
  }, 2 * WAIT_MS);
});
