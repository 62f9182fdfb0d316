// `ztwatch eval` (`npm run eval`): generates labelled scenarios with several seeds, mesh sizes,
// rates and times of day, backtests each in-process (ingest parsers → embedded store → detectors),
// and prints per attack class recall and median detection latency (event time), and overall
// precision and false alerts per hour — for ztwatch and, on the same stored events, for the two
// static rules of the seeds (`403 rate > 0 for 1m`, `TLS handshake errors > 0.1/s for 2m`).
import { buildConfig, loadConfig, type FrozenConfig } from '../../core/config.ts';
import { createError } from '../../core/errors.ts';
import type { Anomaly } from '../../core/anomaly.ts';
import { replayIntoStore, type ReplaySource } from '../../detectors/backtest.ts';
import {
  RULE_403,
  RULE_TLS,
  alertsFromAnomalies,
  evaluateStaticRule,
  medianLatency,
  mergeScores,
  scoreAlerts,
  type SystemScore,
} from '../../detectors/evaluation.ts';
import { writeFile } from 'node:fs/promises';
import { ATTACK_CLASSES, createScenario, type AttackClass, type Scenario, type ScenarioLabel } from '../../ingest/simulate/index.ts';
import { createStore } from '../../store/client.ts';
import { parseCommandArgs } from '../args.ts';
import { createRecordParser } from './backtest.ts';
import { parseAttackList } from './simulate.ts';

const USAGE = `usage: ztwatch eval [--quick] [--seeds 1,2,3,4] [--hours H] [--attacks all|CLASS,...] [--config FILE] [--show-false-alerts] [--out FILE]

Generates labelled scenarios (a different mesh size, rate and time of day per seed), backtests
them in-process and prints recall and median latency per attack class, precision and false alerts
per hour, for ztwatch and for the static rules '403 rate > 0 for 1m' and
'TLS handshake errors > 0.1/s for 2m' on the same events. --quick runs one small scenario.
--out writes every label and anomaly (with its seed) as NDJSON, for a closer look.`;

/** One scenario of an evaluation run. */
export interface EvalScenario {
  readonly seed: number;
  readonly services: number;
  readonly peakRps: number;
  /** UTC hour of day the trace starts at. */
  readonly startHour: number;
  readonly hours: number;
  readonly attacks: 'all' | readonly AttackClass[];
}

/** Mesh sizes, rates (peak requests/s per service) and start hours, chosen by seed (seed 1 → the first). */
const SHAPES: ReadonlyArray<{ services: number; rpsPerService: number; startHour: number }> = [
  { services: 10, rpsPerService: 2, startHour: 0 },
  { services: 16, rpsPerService: 1.5, startHour: 6 },
  { services: 24, rpsPerService: 1.25, startHour: 13 },
  { services: 32, rpsPerService: 1, startHour: 19 },
  { services: 14, rpsPerService: 2.5, startHour: 9 },
  { services: 40, rpsPerService: 0.8, startHour: 3 },
];

/** The scenarios `ztwatch eval` runs for these seeds. */
export function planScenarios(seeds: readonly number[], hours: number, attacks: 'all' | readonly AttackClass[]): EvalScenario[] {
  return seeds.map((seed) => {
    const shape = SHAPES[Math.abs(seed - 1) % SHAPES.length] as (typeof SHAPES)[number];
    return { seed, services: shape.services, peakRps: shape.services * shape.rpsPerService, startHour: shape.startHour, hours, attacks };
  });
}

/** Generated traffic as a replay source, in chunks of `chunkMs` of event time. */
export function createScenarioSource(scenario: Scenario, startMs: number, endMs: number, chunkMs = 120_000): ReplaySource {
  let cursor = startMs;
  return {
    name: 'scenario',
    async next() {
      if (cursor >= endMs) return undefined;
      const until = Math.min(endMs, cursor + chunkMs);
      const lines = scenario.generate(cursor, until);
      cursor = until;
      const groups = new Map<string, string[]>();
      for (const l of lines) {
        let list = groups.get(l.format);
        if (!list) groups.set(l.format, (list = []));
        list.push(l.line);
      }
      return { groups: [...groups].map(([format, records]) => ({ format, records })), rejected: [] };
    },
  };
}

/** What one scenario produced. */
export interface ScenarioResult {
  readonly scenario: EvalScenario;
  readonly events: number;
  readonly deadLetters: number;
  readonly wallSeconds: number;
  readonly anomalies: Anomaly[];
  readonly labels: readonly ScenarioLabel[];
  readonly scores: Record<string, SystemScore>;
}

/** System names in the printed table, ztwatch first. */
export const SYSTEMS = ['ztwatch', RULE_403.name, RULE_TLS.name, 'both static rules'] as const;

/** Generates, backtests and scores one scenario on an in-memory embedded store. */
export async function runScenario(plan: EvalScenario, baseConfig: FrozenConfig, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const day = Date.UTC(2026, 0, 5 + (plan.seed % 20));
  const startMs = day + plan.startHour * 3_600_000;
  const endMs = startMs + plan.hours * 3_600_000;
  const scenario = createScenario({ seed: plan.seed, services: plan.services, startMs, durationMs: endMs - startMs, attacks: plan.attacks, peakRps: plan.peakRps });
  const base = structuredClone(baseConfig) as unknown as Record<string, unknown>;
  const config = buildConfig({
    ...base,
    dataDir: ':memory:',
    clickhouse: { ...(base.clickhouse as Record<string, unknown>), url: '', cluster: '', database: `eval_${process.pid}_${plan.seed}_${Date.now().toString(36)}`, retentionDays: 20_000, anomalyRetentionDays: 20_000, deadLetterRetentionDays: 20_000 },
  });
  const store = createStore(config);
  await store.migrate();
  try {
    const result = await replayIntoStore({
      store,
      config,
      sources: [createScenarioSource(scenario, startMs, endMs)],
      parse: createRecordParser(config),
      onProgress: (p) => log(`eval: seed ${plan.seed} (${plan.services} services): ${Math.round(((p.eventTimeMs - startMs) / (endMs - startMs)) * 100)}% of ${plan.hours} h, ${p.events} events, ${Math.round(p.eventsPerSecond)}/s, ${p.anomalies} anomalies`),
    });
    const hours = plan.hours;
    const rule403 = await evaluateStaticRule(store, RULE_403, startMs, endMs);
    const ruleTls = await evaluateStaticRule(store, RULE_TLS, startMs, endMs);
    const scores: Record<string, SystemScore> = {
      ztwatch: scoreAlerts(alertsFromAnomalies(result.anomalies), scenario.labels, hours),
      [RULE_403.name]: scoreAlerts(rule403, scenario.labels, hours),
      [RULE_TLS.name]: scoreAlerts(ruleTls, scenario.labels, hours),
      'both static rules': scoreAlerts([...rule403, ...ruleTls], scenario.labels, hours),
    };
    return { scenario: plan, events: result.events, deadLetters: result.deadLetters, wallSeconds: result.wallSeconds, anomalies: result.anomalies, labels: scenario.labels, scores };
  } finally {
    await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
    await store.close();
  }
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function formatRecall(c: { labels: number; detected: number; latenciesSeconds: number[] } | undefined): string {
  if (!c || c.labels === 0) return '-';
  const median = medianLatency(c.latenciesSeconds);
  return `${(c.detected / c.labels).toFixed(2)} (${c.detected}/${c.labels})${median === undefined ? '' : ` ${Math.round(median)} s`}`;
}

/** The report table: per class recall (detected/labels) and median latency, then precision and false alerts per hour. */
export function formatReport(scores: Record<string, SystemScore>): string {
  const classes = ATTACK_CLASSES.filter((cls) => Object.values(scores).some((s) => (s.classes[cls]?.labels ?? 0) > 0));
  const width = 26;
  const lines: string[] = [];
  lines.push(`${pad('recall (detected/labels) median latency', 42)}${SYSTEMS.map((s) => pad(s, width)).join('')}`);
  for (const cls of classes) lines.push(`${pad(`  ${cls}`, 42)}${SYSTEMS.map((s) => pad(formatRecall(scores[s]?.classes[cls]), width)).join('')}`);
  const all = (s: SystemScore) => Object.values(s.classes).reduce((acc, c) => ({ labels: acc.labels + c.labels, detected: acc.detected + c.detected, latenciesSeconds: acc.latenciesSeconds.concat(c.latenciesSeconds) }), { labels: 0, detected: 0, latenciesSeconds: [] as number[] });
  lines.push(`${pad('  all classes', 42)}${SYSTEMS.map((s) => pad(scores[s] ? formatRecall(all(scores[s])) : '-', width)).join('')}`);
  lines.push(`${pad('precision (alerts matching an attack)', 42)}${SYSTEMS.map((s) => {
    const sc = scores[s];
    return pad(!sc ? '-' : sc.alerts === 0 ? 'n/a (0 alerts)' : `${(sc.matchedAlerts / sc.alerts).toFixed(2)} (${sc.matchedAlerts}/${sc.alerts})`, width);
  }).join('')}`);
  lines.push(`${pad('false alerts per hour', 42)}${SYSTEMS.map((s) => {
    const sc = scores[s];
    return pad(!sc ? '-' : `${((sc.alerts - sc.matchedAlerts) / Math.max(sc.hours, 1e-9)).toFixed(2)} (${sc.alerts - sc.matchedAlerts} in ${sc.hours} h)`, width);
  }).join('')}`);
  return lines.join('\n');
}

/** Runs the eval command; resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    { quick: { type: 'boolean' }, seeds: { type: 'string' }, hours: { type: 'string' }, attacks: { type: 'string' }, config: { type: 'string', short: 'c' }, 'show-false-alerts': { type: 'boolean' }, out: { type: 'string', short: 'o' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seeds = (values.seeds ?? (values.quick ? '1' : '1,2,3,4')).split(',').map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw createError('CLI_USAGE', `--seeds takes integers\n${USAGE}`);
  const hours = Number(values.hours ?? (values.quick ? 3 : 4));
  if (!Number.isFinite(hours) || hours < 1.5) throw createError('CLI_USAGE', `--hours must be at least 1.5 (attacks start after 75 minutes of learning)\n${USAGE}`);
  const attacks = parseAttackList(values.attacks);
  const config = loadConfig({ file: values.config });
  const plans = planScenarios(seeds, hours, attacks).map((p) => (values.quick ? { ...p, services: 10, peakRps: 20 } : p));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let lastLog = 0;
  const throttled = (line: string) => {
    if (Date.now() - lastLog >= 2000) {
      lastLog = Date.now();
      log(line);
    }
  };
  const started = performance.now();
  const results: ScenarioResult[] = [];
  for (const plan of plans) {
    log(`eval: seed ${plan.seed}: ${plan.services} services, ${plan.peakRps} req/s at peak, ${plan.hours} h from ${String(plan.startHour).padStart(2, '0')}:00 UTC`);
    const result = await runScenario(plan, config, throttled);
    results.push(result);
    log(`eval: seed ${plan.seed}: ${result.events} events in ${result.wallSeconds.toFixed(1)} s (${Math.round(result.events / result.wallSeconds)}/s), ${result.anomalies.length} anomalies, ${result.deadLetters} dead letters`);
  }
  const merged: Record<string, SystemScore> = {};
  for (const system of SYSTEMS) merged[system] = mergeScores(results.map((r) => r.scores[system] as SystemScore));
  const events = results.reduce((n, r) => n + r.events, 0);
  const out: string[] = [
    `ztwatch eval: ${results.length} scenario(s), seeds ${seeds.join(',')}, ${results.reduce((n, r) => n + r.scenario.hours, 0)} h of traffic, ${events} events, ${((performance.now() - started) / 1000).toFixed(0)} s`,
    `  (meshes of ${results.map((r) => r.scenario.services).join('/')} services; alerts = anomalies of severity low and above / static rule firing periods)`,
    '',
    formatReport(merged),
    '',
  ];
  if (values['show-false-alerts']) {
    for (const system of SYSTEMS) {
      const falseAlerts = merged[system]?.falseAlerts ?? [];
      if (falseAlerts.length === 0) continue;
      out.push(`false alerts of ${system}:`);
      for (const a of falseAlerts.slice(0, 30)) out.push(`  ${new Date(a.firedMs).toISOString()} ${a.detail}`);
      out.push('');
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (values.out) {
    const rows: string[] = [];
    for (const r of results) {
      for (const label of r.labels) rows.push(JSON.stringify({ seed: r.scenario.seed, type: 'label', ...label }));
      for (const anomaly of r.anomalies) rows.push(JSON.stringify({ seed: r.scenario.seed, type: 'anomaly', ...anomaly }));
    }
    await writeFile(values.out, `${rows.join('\n')}\n`);
  }
  return 0;
}
