// `ztwatch simulate --seed N --services N --hours H --out DIR`: writes labelled scenario traffic in
// real wire formats, one file per format (envoy.log, opa.ndjson, hubble.ndjson), plus
// labels.ndjson naming every injected attack. The files replay with `ztwatch backtest`.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createError } from '../../core/errors.ts';
import { ATTACK_CLASSES, createScenario, type AttackClass } from '../../ingest/simulate/index.ts';
import { parseCommandArgs } from '../args.ts';

const USAGE = `usage: ztwatch simulate --out DIR [--seed N] [--services N] [--hours H] [--start ISO] [--peak-rps R] [--attacks all|none|CLASS,...]

Generates a labelled scenario: mesh traffic with a daily shape, background denials and errors,
batch jobs, deploy restarts, a rollout, surges and injected attacks (after the first 75 minutes).
Writes DIR/envoy.log, DIR/opa.ndjson, DIR/hubble.ndjson and DIR/labels.ndjson.
Attack classes: ${ATTACK_CLASSES.join(', ')}.`;

const FILES: Readonly<Record<string, string>> = { envoy: 'envoy.log', opa: 'opa.ndjson', hubble: 'hubble.ndjson' };

function readNumber(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw createError('CLI_USAGE', `--${name} must be a positive number\n${USAGE}`);
  return n;
}

/** Parses `--attacks`: all, none, or a comma-separated list of classes. */
export function parseAttackList(text: string | undefined): 'all' | AttackClass[] {
  if (text === undefined || text === 'all') return 'all';
  if (text === 'none') return [];
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of list) if (!(ATTACK_CLASSES as readonly string[]).includes(item)) throw createError('CLI_USAGE', `unknown attack class '${item}'\n${USAGE}`);
  return list as AttackClass[];
}

/** Runs the simulate command; resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    { out: { type: 'string', short: 'o' }, seed: { type: 'string' }, services: { type: 'string' }, hours: { type: 'string' }, start: { type: 'string' }, 'peak-rps': { type: 'string' }, attacks: { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.out) throw createError('CLI_USAGE', `--out is required\n${USAGE}`);
  const seed = Math.floor(readNumber(values.seed, 1, 'seed'));
  const services = Math.floor(readNumber(values.services, 20, 'services'));
  const hours = readNumber(values.hours, 4, 'hours');
  const startMs = values.start === undefined ? Date.UTC(2026, 0, 5, 6, 0, 0) : Date.parse(values.start);
  if (!Number.isFinite(startMs)) throw createError('CLI_USAGE', `--start must be an ISO-8601 time\n${USAGE}`);
  const peakRps = values['peak-rps'] === undefined ? undefined : readNumber(values['peak-rps'], 1, 'peak-rps');
  const durationMs = Math.round(hours * 3_600_000);
  const scenario = createScenario({ seed, services, startMs, durationMs, attacks: parseAttackList(values.attacks), ...(peakRps !== undefined ? { peakRps } : {}) });

  mkdirSync(values.out, { recursive: true });
  const streams = new Map<string, WriteStream>();
  const counts = new Map<string, number>();
  const streamFor = (format: string): WriteStream => {
    let s = streams.get(format);
    if (!s) streams.set(format, (s = createWriteStream(join(values.out as string, FILES[format] ?? `${format}.log`))));
    return s;
  };
  const started = performance.now();
  let lastReport = 0;
  let total = 0;
  const stepMs = 60_000;
  for (let t = startMs; t < startMs + durationMs; t += stepMs) {
    const lines = scenario.generate(t, Math.min(t + stepMs, startMs + durationMs));
    const byFormat = new Map<string, string[]>();
    for (const l of lines) {
      let list = byFormat.get(l.format);
      if (!list) byFormat.set(l.format, (list = []));
      list.push(l.line);
    }
    for (const [format, list] of byFormat) {
      counts.set(format, (counts.get(format) ?? 0) + list.length);
      const stream = streamFor(format);
      if (!stream.write(`${list.join('\n')}\n`)) await once(stream, 'drain');
    }
    total += lines.length;
    const now = performance.now();
    if (now - lastReport > 1000) {
      lastReport = now;
      process.stderr.write(`simulate: ${Math.round(((t + stepMs - startMs) / durationMs) * 100)}% (${new Date(t + stepMs).toISOString()}), ${total} records\n`);
    }
  }
  const labels = createWriteStream(join(values.out, 'labels.ndjson'));
  for (const label of scenario.labels) labels.write(`${JSON.stringify(label)}\n`);
  for (const s of [...streams.values(), labels]) {
    s.end();
    await once(s, 'finish');
  }
  const files = [...counts].map(([format, n]) => `${FILES[format] ?? format} ${n}`).join(', ');
  process.stdout.write(
    `simulate: ${total} records in ${((performance.now() - started) / 1000).toFixed(1)} s → ${values.out} (${files}; labels.ndjson ${scenario.labels.length} attacks)\n` +
      `  replay: ztwatch backtest ${[...counts.keys()].map((f) => join(values.out as string, FILES[f] ?? `${f}.log`)).join(' ')} --out anomalies.ndjson\n`,
  );
  return 0;
}
