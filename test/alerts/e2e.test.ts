// End to end on loopback with the real parts: a metrics endpoint built from core/metrics.ts (the
// metric set every ztwatch role exports) → real Prometheus evaluating the shipped rule files →
// real Alertmanager with the shipped routing and grouping → a webhook receiver here.
//
// Two things differ from production, both made programmatically and nothing else:
// - the rule files are loaded through copies whose `for:` is 2s instead of 30s–10m;
// - the Alertmanager config is a copy whose webhooks post to this test's receiver, with
//   group_wait 4s and group_interval 1s.
// Prometheus loads the rules once its first scrape succeeded (see startPrometheus).
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../core/metrics.ts';
import {
  ALERTMANAGER_CONFIG,
  RULE_FILES,
  RUNBOOKS_URL,
  listAlertmanagerAlerts,
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
import { DETECTOR_NAMES } from '../../detectors/registry.ts';


// One incident that escalates (denials first, then the scan that explains them), the scan's own
// per-anomaly series (evidence, never paged), and a detector that stopped.
const SCANNER = 'spiffe://cluster.local/ns/shop/sa/cart';
const FANOUT = { detector: 'fanout', severity: 'high', subject: SCANNER } as const;
const INCIDENT = 'inc-0123456789abcdef0123';
const TITLE_BEFORE = 'Denial spike of an unidentified source (no actor can be named from the evidence) at vault.';
const TITLE_AFTER = `Scan or lateral movement by ${SCANNER} reaching 12 destinations (vault, ledger, cart and 9 more).`;
/** Longest wait for one delivery; a run takes about 10 s in all on 2 cores. */
const WAIT_MS = 30_000;
const STALLED_DETECTOR = 'volume';
const HEALTHY_DETECTORS = DETECTOR_NAMES.filter((name) => name !== STALLED_DETECTOR);
const TEST_TIMEOUT_MS = 5 * WAIT_MS;

describe('alerts end to end: metrics → Prometheus → Alertmanager → webhook', () => {
  let dir: string;
  let metrics: Metrics;
  let metricsServer: Server;
  let receiver: WebhookReceiver;
  let alertmanager: RunningServer | undefined;
  let prometheus: RunningServer | undefined;

  const details = (): string =>
    `received: ${JSON.stringify(receiver.alerts().map((a) => ({ receiver: a.receiver, status: a.status, alertname: a.labels.alertname, subject: a.labels.subject })))}\n` +
    `prometheus log:\n${prometheus?.logs() ?? ''}\nalertmanager log:\n${alertmanager?.logs() ?? ''}`;

  /** Waits for `alertname` to reach the webhook with `status`; on time-out, says what did arrive. */
  const waitForDelivery = (alertname: string, status: ReceivedAlert['status']): Promise<ReceivedAlert> =>
    receiver
      .waitForAlert((a) => a.labels.alertname === alertname && a.status === status, WAIT_MS, `${alertname} ${status}`)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${details()}`);
      });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ztwatch-alerts-e2e-'));

    // The scraped process: the same metric set ztwatch roles export, in a healthy pipeline state
    // (events received, detectors succeeding) except for the anomalies and the stalled detector
    // that the test sets.
    metrics = createMetrics();
    metrics.stage('collector').received(500);
    metrics.detectorLastRun.set({ detector: STALLED_DETECTOR }, Date.now() / 1000 - 3600);
    metricsServer = createServer((_req, res) => {
      // Keep the success timestamps of healthy detectors fresh, as the detector role does.
      for (const detector of HEALTHY_DETECTORS) metrics.detectorLastRun.set({ detector }, Date.now() / 1000);
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((r) => metricsServer.listen(0, '127.0.0.1', r));
    const address = metricsServer.address();
    const metricsPort = typeof address === 'object' && address !== null ? address.port : 0;

    receiver = await startWebhookReceiver();
    const amConfig = await writeTestAlertmanagerConfig(ALERTMANAGER_CONFIG, dir, receiver.url, { groupWait: '4s' });
    alertmanager = await startAlertmanager({ dir: join(dir, 'alertmanager'), configFile: amConfig });
    const rules = await writeTestRuleFiles(RULE_FILES, dir, '2s');
    prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      ruleFiles: rules,
      scrapeTargets: [`127.0.0.1:${metricsPort}`],
      jobName: 'ztwatch-e2e',
      alertmanager: new URL(alertmanager.url).host,
    });
  });

  afterAll(async () => {
    await prometheus?.close();
    await alertmanager?.close();
    await receiver?.close();
    await new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads every shipped rule into the real Prometheus', async () => {
    const res = await fetch(`${prometheus?.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { name: string; rules: { name: string; health: string }[] }[] } };
    const loaded = body.data.groups.flatMap((g) => g.rules);
    expect(body.data.groups.map((g) => g.name).sort()).toEqual(['ztwatch-detectors', 'ztwatch-incidents', 'ztwatch-pipeline']);
    expect(loaded).toHaveLength(16);
    for (const rule of loaded) expect(rule.health, rule.name).not.toBe('err');
  });

  it('pages an incident once: its escalation updates the same alert in one notification group, re-notifies once on critical, then it resolves', async () => {
    // The incidents stage's series for one incident, medium, plus the per-anomaly evidence series.
    metrics.incidentFiring.set({ incident: INCIDENT }, 2);
    metrics.incidentInfo.set({ incident: INCIDENT, title: TITLE_BEFORE, kind: 'denials' }, 1);
    metrics.anomalyFiring.set(FANOUT, 42);

    const fired = await waitForDelivery('ZtwatchIncident', 'firing');
    expect(fired.receiver).toBe('ztwatch-security-page');
    expect(fired.labels).toEqual({ alertname: 'ZtwatchIncident', incident: INCIDENT, team: 'security', notify: 'page' });
    expect(fired.annotations.summary).toBe(TITLE_BEFORE);
    expect(fired.annotations.severity).toBe('medium');
    expect(fired.annotations.kind).toBe('denials');
    expect(fired.annotations.description).toContain(`GET /v1/incidents/${INCIDENT}`);
    expect(fired.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchincident`);

    // A scan joined the incident: critical, new title and kind, same series identity.
    metrics.incidentFiring.set({ incident: INCIDENT }, 4);
    metrics.incidentInfo.remove({ incident: INCIDENT, title: TITLE_BEFORE, kind: 'denials' });
    metrics.incidentInfo.set({ incident: INCIDENT, title: TITLE_AFTER, kind: 'scan' }, 1);
    const escalated = await waitFor(
      async () => (await listAlertmanagerAlerts(alertmanager?.url ?? '')).find((a) => a.labels.alertname === 'ZtwatchIncident' && a.annotations.severity === 'critical'),
      { timeoutMs: WAIT_MS, what: 'ZtwatchIncident updated to critical in Alertmanager', details },
    );
    expect(escalated.fingerprint).toBe(fired.fingerprint);
    expect(escalated.annotations.summary).toBe(TITLE_AFTER);
    expect(escalated.annotations.kind).toBe('scan');
    const incidentAlerts = (await listAlertmanagerAlerts(alertmanager?.url ?? '')).filter((a) => a.labels.alertname === 'ZtwatchIncident');
    expect(incidentAlerts.map((a) => a.fingerprint)).toEqual([fired.fingerprint]);

    // Critical now: the escalation alert joins the incident's group, and that sends the group again,
    // with the unchanged incident alert beside it.
    const critical = await waitForDelivery('ZtwatchIncidentCritical', 'firing');
    expect(critical.receiver).toBe('ztwatch-security-page');
    expect(critical.labels).toEqual({ alertname: 'ZtwatchIncidentCritical', incident: INCIDENT, team: 'security', notify: 'page', severity: 'critical' });
    expect(critical.annotations.summary).toBe(`Critical: ${TITLE_AFTER}`);
    const renotified = receiver.notifications.find((n) => n.alerts.some((a) => a.labels.alertname === 'ZtwatchIncidentCritical'));
    expect(renotified?.alerts.find((a) => a.labels.alertname === 'ZtwatchIncident')?.fingerprint).toBe(fired.fingerprint);

    // The per-anomaly alert reached Alertmanager as evidence, and was never sent anywhere.
    const evidence = await waitFor(
      async () => (await listAlertmanagerAlerts(alertmanager?.url ?? '')).find((a) => a.labels.alertname === 'ZtwatchLateralMovement'),
      { timeoutMs: WAIT_MS, what: 'ZtwatchLateralMovement in Alertmanager', details },
    );
    expect(evidence.status.state).toBe('active');

    metrics.incidentFiring.remove({ incident: INCIDENT });
    metrics.incidentInfo.remove({ incident: INCIDENT, title: TITLE_AFTER, kind: 'scan' });
    metrics.anomalyFiring.remove(FANOUT);
    const resolved = await waitForDelivery('ZtwatchIncident', 'resolved');
    expect(resolved.fingerprint).toBe(fired.fingerprint);
    expect(resolved.receiver).toBe('ztwatch-security-page');

    // One notification group for the whole life of the incident, holding its one incident alert and
    // the critical alert, never a second incident alert.
    const notifications = receiver.notifications.filter((n) => n.alerts.some((a) => a.labels.incident === INCIDENT));
    expect(new Set(notifications.map((n) => JSON.stringify(n.groupLabels)))).toEqual(new Set([JSON.stringify({ incident: INCIDENT })]));
    expect(new Set(notifications.flatMap((n) => n.alerts.map((a) => a.fingerprint)))).toEqual(new Set([fired.fingerprint, critical.fingerprint]));
    expect(receiver.alerts().filter((a) => a.labels.team === 'security' && a.labels.notify !== 'page')).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('delivers a pipeline alert through the platform route', async () => {
    const stalled = await waitForDelivery('ZtwatchDetectorStalled', 'firing');
    expect(stalled.receiver).toBe('ztwatch-platform-page');
    expect(stalled.labels).toEqual({ alertname: 'ZtwatchDetectorStalled', detector: STALLED_DETECTOR, severity: 'high', team: 'platform' });
    expect(stalled.annotations.summary).toBe('ztwatch detector volume stalled');
    expect(stalled.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchdetectorstalled`);
    // Healthy detectors and a receiving collector raise nothing.
    const noisy = receiver.alerts().filter((a) => ['ZtwatchIngestStopped', 'ZtwatchTargetDown'].includes(a.labels.alertname ?? '') || (a.labels.alertname === 'ZtwatchDetectorStalled' && a.labels.detector !== STALLED_DETECTOR));
    expect(noisy).toEqual([]);
  }, TEST_TIMEOUT_MS);
});
