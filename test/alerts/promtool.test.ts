// The shipped alerting files, checked by the real tools: `promtool check rules` on every rule file,
// `promtool test rules` on every unit-test file, `amtool check-config` and `amtool config routes
// test` on alertmanager.yml. Each check has a negative control on a broken copy, so a tool that
// accepted anything would fail here. Also checks the conventions the docs promise: one alert per
// detector (evidence, never paging), one alert per incident (the page, with a stable identity),
// every alert unit-tested firing and not firing, every runbook link resolving.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DETECTOR_NAMES } from '../../detectors/registry.ts';
import { findPrometheusTools, runTool, type PrometheusTools } from '../helpers/prometheus.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ALERTS = join(ROOT, 'alerts');
const RUNBOOK_PREFIX = 'https://github.com/ztwatch/ztwatch/blob/main/docs/runbooks.md#';
/** Every registered detector has exactly one alert. */
const DETECTORS = DETECTOR_NAMES;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: unknown[];
}

const ruleFiles = (await readdir(ALERTS)).filter((f) => f.endsWith('.rules.yml')).sort();
const testFiles = (await readdir(join(ALERTS, 'tests'))).filter((f) => f.endsWith('.test.yml')).sort();

async function readRules(file: string): Promise<Rule[]> {
  const doc = parseYaml(await readFile(join(ALERTS, file), 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** GitHub's heading anchor: lower-case, punctuation dropped, spaces to dashes. */
function slugHeading(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

describe('alert rule files', () => {
  let tools: PrometheusTools;
  let scratch: string;

  beforeAll(async () => {
    tools = findPrometheusTools();
    scratch = await mkdtemp(join(tmpdir(), 'ztwatch-promtool-'));
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('ships the detector and pipeline rule files and their tests', () => {
    expect(ruleFiles).toEqual(['ztwatch-detectors.rules.yml', 'ztwatch-incidents.rules.yml', 'ztwatch-pipeline.rules.yml']);
    expect(testFiles.length).toBeGreaterThanOrEqual(3);
  });

  it.each(ruleFiles)('promtool check rules %s', async (file) => {
    const result = await runTool(tools.promtool, ['check', 'rules', join(ALERTS, file)]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('promtool check rules rejects a broken rule file (negative control)', async () => {
    const broken = join(scratch, 'broken.rules.yml');
    await writeFile(broken, 'groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(rate(ztwatch_stage_received_events_total[5m]) > \n');
    const result = await runTool(tools.promtool, ['check', 'rules', broken]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/FAILED|parse error/i);
  });

  it.each(testFiles)('promtool test rules %s', async (file) => {
    const result = await runTool(tools.promtool, ['test', 'rules', join(ALERTS, 'tests', file)]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('promtool test rules fails when an expected annotation is wrong (negative control)', async () => {
    const text = await readFile(join(ALERTS, 'tests', 'detectors.test.yml'), 'utf8');
    const altered = text
      .replace('../ztwatch-detectors.rules.yml', join(ALERTS, 'ztwatch-detectors.rules.yml'))
      .replace('(score 7.50, severity high)', '(score 7.51, severity high)');
    expect(altered).not.toBe(text);
    const copy = join(scratch, 'altered.test.yml');
    await writeFile(copy, altered);
    const result = await runTool(tools.promtool, ['test', 'rules', copy]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('FAILED');
  });

  it('has exactly one alert per detector class, with the severity taken from the anomaly', async () => {
    const rules = await readRules('ztwatch-detectors.rules.yml');
    const byDetector = new Map<string, string[]>();
    for (const rule of rules) {
      const selected = [...rule.expr.matchAll(/ztwatch_anomaly_firing\{detector="([a-z_]+)"/g)].map((m) => m[1] as string);
      expect(selected, rule.alert).toHaveLength(1);
      const detector = selected[0] as string;
      byDetector.set(detector, [...(byDetector.get(detector) ?? []), rule.alert]);
      expect(rule.labels?.severity, `${rule.alert} must keep the series' severity`).toBeUndefined();
      expect(rule.labels?.team).toBe('security');
      expect(rule.annotations?.description).toContain('{{ $labels.detector }}');
      expect(rule.annotations?.description).toContain('{{ $labels.subject }}');
      expect(rule.expr).toContain('severity!="info"');
    }
    expect([...byDetector.keys()].sort()).toEqual([...DETECTORS].sort());
    for (const [detector, alerts] of byDetector) expect(alerts, detector).toHaveLength(1);
  });

  it('fires one alert per incident whose only identifying label is the incident id', async () => {
    const [rule, critical, ...others] = await readRules('ztwatch-incidents.rules.yml');
    expect(others).toEqual([]);
    expect(rule?.alert).toBe('ZtwatchIncident');
    // The escalation alert reads the same series, by the same label, and adds only a fixed severity.
    expect(critical?.alert).toBe('ZtwatchIncidentCritical');
    expect(critical?.expr).toBe('max by (incident) (ztwatch_incident_firing) >= 4');
    expect(critical?.labels).toEqual({ team: 'security', notify: 'page', severity: 'critical' });
    // No severity (or any other changing value) in the labels: an escalation must not change identity.
    expect(rule?.expr).toMatch(/^max by \(incident\) \(ztwatch_incident_firing\)/);
    expect(rule?.labels).toEqual({ team: 'security', notify: 'page' });
    expect(rule?.annotations?.severity).toContain('$value');
    expect(rule?.annotations?.summary).toContain('ztwatch_incident_info');
  });

  it('gives every alert a summary, a description, a team and a runbook section that exists', async () => {
    const runbooks = await readFile(join(ROOT, 'docs', 'runbooks.md'), 'utf8');
    const anchors = new Set([...runbooks.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slugHeading(m[1] as string)));
    for (const file of ruleFiles) {
      for (const rule of await readRules(file)) {
        expect(rule.alert).toMatch(/^Ztwatch[A-Z][A-Za-z]+$/);
        expect(rule.annotations?.summary, rule.alert).toBeTruthy();
        expect(rule.annotations?.description, rule.alert).toBeTruthy();
        expect(rule.labels?.team, rule.alert).toMatch(/^(security|platform)$/);
        if (file.includes('pipeline')) expect(rule.labels?.severity, rule.alert).toMatch(/^(low|medium|high|critical)$/);
        const url = rule.annotations?.runbook_url ?? '';
        expect(url.startsWith(RUNBOOK_PREFIX), `${rule.alert}: ${url}`).toBe(true);
        const anchor = url.slice(RUNBOOK_PREFIX.length);
        expect(anchor).toBe(rule.alert.toLowerCase());
        expect(anchors.has(anchor), `docs/runbooks.md has no section #${anchor}`).toBe(true);
      }
    }
  });

  it('unit-tests every alert both firing and not firing', async () => {
    const firing = new Set<string>();
    const quiet = new Set<string>();
    for (const file of testFiles) {
      const doc = parseYaml(await readFile(join(ALERTS, 'tests', file), 'utf8')) as { tests: { alert_rule_test?: AlertTest[] }[] };
      for (const test of doc.tests) {
        for (const case_ of test.alert_rule_test ?? []) {
          (case_.exp_alerts.length > 0 ? firing : quiet).add(case_.alertname);
        }
      }
    }
    const alerts = (await Promise.all(ruleFiles.map(readRules))).flat().map((r) => r.alert);
    // Two incident alerts, seven pipeline alerts, one alert per registered detector.
    expect(alerts).toHaveLength(2 + 7 + DETECTORS.length);
    for (const alert of alerts) {
      expect(firing.has(alert), `${alert} has no firing test case`).toBe(true);
      expect(quiet.has(alert), `${alert} has no not-firing test case`).toBe(true);
    }
  });
});

describe('alertmanager.yml', () => {
  let tools: PrometheusTools;
  let scratch: string;
  const config = join(ALERTS, 'alertmanager.yml');

  beforeAll(async () => {
    tools = findPrometheusTools();
    scratch = await mkdtemp(join(tmpdir(), 'ztwatch-amtool-'));
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes amtool check-config', async () => {
    const result = await runTool(tools.amtool, ['check-config', config]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
    expect(result.stdout).toMatch(/2 inhibit rules/);
  });

  it('amtool check-config rejects a route to an undefined receiver (negative control)', async () => {
    const text = await readFile(config, 'utf8');
    const broken = text.replace('receiver: ztwatch-security-page', 'receiver: ztwatch-nobody');
    expect(broken).not.toBe(text);
    const copy = join(scratch, 'alertmanager.yml');
    await writeFile(copy, broken);
    const result = await runTool(tools.amtool, ['check-config', copy]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/undefined receiver/);
  });

  // Labels as the rules produce them → the receiver the routing tree must pick.
  const routes: [labels: string[], receiver: string][] = [
    [['alertname=ZtwatchIncident', 'team=security', 'notify=page', 'incident=inc-1'], 'ztwatch-security-page'],
    [['alertname=ZtwatchIncidentCritical', 'team=security', 'notify=page', 'severity=critical', 'incident=inc-1'], 'ztwatch-security-page'],
    [['alertname=ZtwatchLateralMovement', 'team=security', 'severity=critical', 'subject=a'], 'ztwatch-security-evidence'],
    [['alertname=ZtwatchDenySpike', 'team=security', 'severity=high', 'subject=a -> b'], 'ztwatch-security-evidence'],
    [['alertname=ZtwatchNewEdge', 'team=security', 'severity=medium', 'subject=a -> b'], 'ztwatch-security-evidence'],
    [['alertname=ZtwatchTargetDown', 'team=platform', 'severity=high'], 'ztwatch-platform-page'],
    [['alertname=ZtwatchDeadLettersRising', 'team=platform', 'severity=medium'], 'ztwatch-platform-queue'],
    [['alertname=SomethingElse', 'severity=critical'], 'ztwatch-default'],
  ];

  it.each(routes)('routes %j to %s', async (labels, receiver) => {
    const result = await runTool(tools.amtool, ['config', 'routes', 'test', `--config.file=${config}`, `--verify.receivers=${receiver}`, ...labels]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(receiver);
  });

  it('amtool routes test fails on a wrong expected receiver (negative control)', async () => {
    const result = await runTool(tools.amtool, ['config', 'routes', 'test', `--config.file=${config}`, '--verify.receivers=ztwatch-security-page', 'team=platform', 'severity=medium']);
    expect(result.code).not.toBe(0);
  });

  it('pages only incidents: every shipped alert reaches its receiver, per-anomaly alerts never a notifying one', async () => {
    for (const file of ruleFiles) {
      for (const rule of await readRules(file)) {
        const severities = rule.labels?.severity ? [rule.labels.severity] : ['low', 'medium', 'high', 'critical'];
        for (const severity of severities) {
          const labels = Object.entries(rule.labels ?? {}).map(([k, v]) => `${k}=${v}`);
          const result = await runTool(tools.amtool, ['config', 'routes', 'test', `--config.file=${config}`, `alertname=${rule.alert}`, ...labels, ...(rule.labels?.severity ? [] : [`severity=${severity}`])]);
          expect(result.code, result.stderr).toBe(0);
          const page = severity === 'high' || severity === 'critical';
          const expected = rule.labels?.notify === 'page' ? 'ztwatch-security-page' : rule.labels?.team === 'security' ? 'ztwatch-security-evidence' : `ztwatch-platform-${page ? 'page' : 'queue'}`;
          expect(result.stdout.trim(), `${rule.alert} ${severity}`).toBe(expected);
        }
      }
    }
    const doc = parseYaml(await readFile(config, 'utf8')) as { receivers: Array<Record<string, unknown>> };
    const evidence = doc.receivers.find((r) => r.name === 'ztwatch-security-evidence');
    expect(Object.keys(evidence ?? {})).toEqual(['name']);
  });

  it('groups incident alerts by incident, so one incident (and its escalation alert) is one notification group', async () => {
    const doc = parseYaml(await readFile(config, 'utf8')) as { route: { routes: Array<{ matchers: string[]; group_by?: string[] }> } };
    const route = doc.route.routes.find((r) => r.matchers.includes('alertname=~"ZtwatchIncident|ZtwatchIncidentCritical"'));
    expect(route?.group_by).toEqual(['incident']);
  });
});
