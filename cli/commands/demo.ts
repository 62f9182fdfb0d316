// `ztwatch demo` (what `npm start` runs): every role in one process on the embedded default, fed
// by a synthetic mesh. It backfills an hour of normal history so detectors have baselines, then
// streams live traffic with two scripted incidents — a deny spike and an expired certificate —
// and prints each incident as it opens, pages, grows, escalates and resolves, with the anomalies
// behind it.
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../core/config.ts';
import type { Anomaly } from '../../core/anomaly.ts';
import { rankSeverity } from '../../core/anomaly.ts';
import type { Incident } from '../../core/incident.ts';
import type { IncidentChange } from '../../incidents/correlator.ts';
import { createDemoScenario, groupByFormat } from '../../ingest/simulate/index.ts';
import { parseCommandArgs } from '../args.ts';
import { ROLES, startRuntime, waitForShutdown, type Runtime } from '../runtime.ts';

const USAGE = 'usage: ztwatch demo [--config FILE] [--port N] [--seed N] [--history-minutes N]';

async function feed(runtime: Runtime, lines: ReadonlyArray<{ format: string; line: string }>): Promise<number> {
  let accepted = 0;
  const ingestor = runtime.ingestor;
  if (!ingestor) return 0;
  for (const [format, records] of groupByFormat(lines)) {
    for (let i = 0; i < records.length; i += 5000) {
      accepted += (await ingestor.ingest(format, records.slice(i, i + 5000))).accepted;
    }
  }
  return accepted;
}

function describeAnomaly(a: Anomaly, change: string): string {
  const who = [a.src, a.dst].filter(Boolean).join(' → ');
  return `  [${a.last_seen}] anomaly ${change} ${a.severity} ${a.detector}${who ? ` (${who})` : ''}: ${a.summary}`;
}

/**
 * One line for an incident change worth telling a human (opened, paged, escalated, grew, resolved), or
 * undefined; `previous` is the incident as last printed.
 */
export function describeIncidentChange(change: IncidentChange, previous: Incident | undefined): string | undefined {
  const i = change.incident;
  const head = (what: string, at: string) => `[${at}] INCIDENT ${what} ${i.severity} ${i.id}: ${i.title}`;
  if (change.change === 'resolved') return i.evidence.merged_into === undefined ? head('RESOLVED', i.last_seen) : `[${i.last_seen}] INCIDENT MERGED ${i.id} into ${String(i.evidence.merged_into)}`;
  const page = i.notify ? ' (paging)' : '';
  if (!previous) return head('OPENED', i.detected_at) + page;
  if (i.notify && !previous.notify) return head('PAGED', i.detected_at);
  if (rankSeverity(i.severity) > rankSeverity(previous.severity)) return `[${i.last_seen}] INCIDENT ESCALATED ${previous.severity} → ${i.severity} ${i.id}: ${i.title}`;
  if (previous.status === 'resolved' && i.status === 'firing') return head('REOPENED', i.last_seen);
  if (i.members.length > previous.members.length) return `${head('GREW', i.last_seen)} (${i.members.length} anomalies)`;
  return undefined;
}

/** Runs the demo until SIGINT/SIGTERM. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    { config: { type: 'string' }, port: { type: 'string' }, seed: { type: 'string' }, 'history-minutes': { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seed = Number(values.seed ?? 7);
  const historyMinutes = Number(values['history-minutes'] ?? 60);
  // Live cycles every few seconds so the scripted incidents show quickly; request logs would
  // drown the detections, so the demo logs warnings only.
  const config = loadConfig({
    file: values.config,
    overrides: { detectors: { intervalSeconds: 5 }, log: { level: 'warn' }, ...(values.port !== undefined ? { http: { port: values.port } } : {}) },
  });
  const token = randomBytes(24).toString('base64url');
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const printed = new Map<string, Incident>();
  const runtime = await startRuntime({
    config,
    roles: new Set(ROLES),
    extraTokens: [{ name: 'demo', role: 'admin', token }],
    onAnomaly: (a, change) => {
      if (change !== 'updated') out(describeAnomaly(a, change));
    },
    onIncident: (change) => {
      const line = describeIncidentChange(change, printed.get(change.incident.id));
      printed.set(change.incident.id, change.incident);
      if (line) out(line);
    },
  });

  const now = Date.now();
  const scenario = createDemoScenario({ seed, startMs: now });
  out(`ztwatch demo: backfilling ${historyMinutes} minutes of mesh traffic so detectors learn baselines…`);
  const backfilled = await feed(runtime, scenario.generate(now - historyMinutes * 60_000, now));
  out(`ztwatch demo: ${backfilled} historical events stored; streaming live traffic with a deny spike (~1 min) and an expired certificate (~2 min) ahead.`);
  out(`ztwatch demo: console on ${runtime.url}/ — sign in with the token ${token}`);
  out(`ztwatch demo: API on ${runtime.url} — try:\n  curl -H 'Authorization: Bearer ${token}' ${runtime.url}/v1/incidents\n  curl -H 'Authorization: Bearer ${token}' ${runtime.url}/v1/anomalies\n  metrics: ${runtime.url}/metrics   docs: ${runtime.url}/docs`);

  let cursor = now;
  let feeding = false;
  const timer = setInterval(() => {
    if (feeding) return;
    feeding = true;
    const until = Date.now();
    feed(runtime, scenario.generate(cursor, until))
      .then(() => {
        cursor = until;
      })
      .catch((err: unknown) => process.stderr.write(`ztwatch demo: feeding failed: ${(err as Error).message}\n`))
      .finally(() => {
        feeding = false;
      });
  }, 1000);
  const code = await waitForShutdown({
    ...runtime,
    close: async () => {
      clearInterval(timer);
      await runtime.close();
    },
  });
  return code;
}
