// End to end on loopback with the real parts: a metrics endpoint built from core/metrics.ts (the
// metric set every ztwatch role exports) → real Prometheus evaluating the shipped rule files →
// real Alertmanager with the shipped routing, grouping and inhibition → a webhook receiver here.
//
// Two things differ from production, both made programmatically and nothing else:
// - the rule files are loaded through copies whose `for:` is 2s instead of 30s–10m;
// - the Alertmanager config is a copy whose webhooks post to this test's receiver, with
//   group_wait 4s (still longer than `for:`, as shipped) and group_interval 1s.
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


// One source caught scanning, the new edge it opened on the way, and a detector that stopped.
const SCANNER = 'spiffe://cluster.local/ns/shop/sa/cart';
const FANOUT = { detector: 'fanout', severity: 'high', subject: SCANNER } as const;
const NEW_EDGE = { detector: 'new_edge', severity: 'medium', subject: `${SCANNER} -> vault` } as const;
/** Longest wait for one delivery; a run takes about 10 s in all on 2 cores. */
const WAIT_MS = 30_000;
const STALLED_DETECTOR = 'volume';
const HEALTHY_DETECTORS = ['deny_spike', 'mtls_failure', 'plaintext', 'new_edge', 'fanout', 'authz_deny_burst'];
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
    // group_wait stays longer than the shortened `for:`, as in the shipped files (1m > 30s):
    // Alertmanager flushes a new group at once when an alert's startsAt (the start of its pending
    // period) is older than group_wait, which would notify the new edge before the fanout alert of
    // the same evaluation could inhibit it.
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
    expect(body.data.groups.map((g) => g.name).sort()).toEqual(['ztwatch-detectors', 'ztwatch-pipeline']);
    expect(loaded).toHaveLength(14);
    for (const rule of loaded) expect(rule.health, rule.name).not.toBe('err');
  });

  it('delivers an attack alert with its labels and annotations, holds back the inhibited one, then delivers the resolution', async () => {
    metrics.anomalyFiring.set(FANOUT, 42);
    metrics.anomalyFiring.set(NEW_EDGE, 4);

    const fired = await waitForDelivery('ZtwatchLateralMovement', 'firing');
    expect(fired.receiver).toBe('ztwatch-security-page');
    expect(fired.labels).toEqual({
      alertname: 'ZtwatchLateralMovement',
      detector: 'fanout',
      severity: 'high',
      subject: SCANNER,
      src: SCANNER,
      team: 'security',
    });
    expect(fired.annotations.summary).toBe(`Lateral movement suspected from ${SCANNER}`);
    expect(fired.annotations.description).toContain(`Detector fanout sees ${SCANNER} reaching many distinct`);
    expect(fired.annotations.description).toContain('score 42.00, severity high');
    expect(fired.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchlateralmovement`);

    // The new edge from the same source reached Alertmanager but is inhibited by the fanout alert.
    const held = await waitFor(
      async () => {
        const all = await listAlertmanagerAlerts(alertmanager?.url ?? '');
        return all.find((a) => a.labels.alertname === 'ZtwatchNewEdge' && a.status.inhibitedBy.length > 0);
      },
      { timeoutMs: WAIT_MS, what: 'ZtwatchNewEdge inhibited in Alertmanager', details },
    );
    expect(held.status.state).toBe('suppressed');
    expect(held.labels.src).toBe(SCANNER);
    expect(receiver.alerts().filter((a) => a.labels.alertname === 'ZtwatchNewEdge')).toEqual([]);

    // The detector resolves the fanout anomaly: its series disappears from /metrics.
    metrics.anomalyFiring.remove(FANOUT);
    const resolved = await waitForDelivery('ZtwatchLateralMovement', 'resolved');
    expect(resolved.receiver).toBe('ztwatch-security-page');
    expect(resolved.fingerprint).toBe(fired.fingerprint);
    expect(resolved.labels).toEqual(fired.labels);
    expect(Date.parse(resolved.endsAt)).toBeGreaterThan(Date.parse(fired.startsAt));

    // With the inhibiting alert gone, the new edge is delivered, through the medium-severity route.
    const edge = await waitForDelivery('ZtwatchNewEdge', 'firing');
    expect(edge.receiver).toBe('ztwatch-security-queue');
    expect(edge.labels).toMatchObject({ detector: 'new_edge', severity: 'medium', subject: NEW_EDGE.subject, src: SCANNER, dst: 'vault', team: 'security' });
    expect(edge.annotations.runbook_url).toBe(`${RUNBOOKS_URL}#ztwatchnewedge`);

    metrics.anomalyFiring.remove(NEW_EDGE);
    await waitForDelivery('ZtwatchNewEdge', 'resolved');
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
