// OPA bundle replay: recorded decision inputs evaluated by a real `opa` binary against a new
// bundle, and the decisions that would change. Inputs go to one `opa eval` per policy path, in
// chunks, as an array; the query keeps each input's index so an undefined result stays visible.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createError } from '../core/errors.ts';

/** The `opa` built by scripts/deps/opa.sh. */
const PROJECT_OPA = fileURLToPath(new URL('../.cache/opa/bin/opa', import.meta.url));

/** The `opa` binary to run: the project's build when present, else `opa` on the PATH. */
export function findOpaBin(): string {
  return existsSync(PROJECT_OPA) ? PROJECT_OPA : 'opa';
}

/** One recorded decision, as OPA's decision log holds it. */
export interface RecordedDecision {
  readonly decisionId: string;
  readonly timeMs: number;
  /** Policy path, `envoy/authz/allow`. */
  readonly path: string;
  readonly input: unknown;
  readonly result: unknown;
}

/** Reads a decision-log record (`raw` of an OPA event); undefined when it holds no path and input. */
export function readRecordedDecision(raw: string, timeMs: number): RecordedDecision | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const d = doc as { path?: unknown; input?: unknown; result?: unknown; decision_id?: unknown };
  if (typeof d.path !== 'string' || d.input === undefined) return undefined;
  return { decisionId: typeof d.decision_id === 'string' ? d.decision_id : '', timeMs, path: d.path.replace(/^\/+|\/+$/g, ''), input: d.input, result: d.result };
}

/** allow / deny of a result (`true`, `"true"`, `{ allowed: true }`, `{ allow: … }`), else its JSON. */
export function summarizeResult(result: unknown): string {
  if (result === undefined) return 'undefined';
  if (result === true || result === 'true') return 'allow';
  if (result === false || result === 'false') return 'deny';
  if (typeof result === 'object' && result !== null) {
    const r = result as { allowed?: unknown; allow?: unknown };
    const flag = r.allowed ?? r.allow;
    if (typeof flag === 'boolean') return flag ? 'allow' : 'deny';
  }
  return JSON.stringify(result);
}

/** Rego reference of a decision path: `data["envoy"]["authz"]["allow"]`. */
export function toRegoRef(path: string): string {
  return `data${path.split('/').filter(Boolean).map((s) => `[${JSON.stringify(s)}]`).join('')}`;
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      // `opa eval --format json` reports policy errors on stdout with a non-zero exit.
      if (err && !stdout) reject(createError('POSTURE_OPA_FAILED', `${bin} ${args[0]}: ${(stderr || err.message).slice(0, 500)}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

const CHUNK = 5_000;

/** Results of `path` for each input under `bundle` (a directory or .tar.gz); undefined where OPA's is. */
export async function evaluateBundle(opaBin: string, bundle: string, path: string, inputs: readonly unknown[]): Promise<unknown[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ztwatch-opa-'));
  try {
    const out: unknown[] = new Array(inputs.length).fill(undefined);
    for (let start = 0; start < inputs.length; start += CHUNK) {
      const file = join(dir, 'input.json');
      await writeFile(file, JSON.stringify({ inputs: inputs.slice(start, start + CHUNK) }));
      const query = `[[i, r] | some i, x in input.inputs; r := ${toRegoRef(path)} with input as x]`;
      const text = await run(opaBin, ['eval', '--format', 'json', '--bundle', bundle, '--input', file, query]);
      let parsed: { result?: Array<{ expressions?: Array<{ value?: unknown }> }>; errors?: Array<{ message?: string }> };
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        throw createError('POSTURE_OPA_FAILED', `unreadable opa output: ${text.slice(0, 200)}`);
      }
      if (parsed.errors?.length) throw createError('POSTURE_OPA_FAILED', `${bundle}: ${parsed.errors.map((e) => e.message).join('; ').slice(0, 500)}`);
      const pairs = parsed.result?.[0]?.expressions?.[0]?.value;
      if (Array.isArray(pairs)) for (const pair of pairs) if (Array.isArray(pair) && typeof pair[0] === 'number') out[start + pair[0]] = pair[1];
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A recorded decision the new bundle would decide differently. */
export interface ChangedDecision {
  readonly decisionId: string;
  readonly time: string;
  readonly path: string;
  readonly recorded: string;
  readonly replayed: string;
  readonly input: unknown;
}

/** Replays `decisions` through `bundle`; returns how many were replayed and those that change. */
export async function replayOpaDecisions(
  opaBin: string,
  bundle: string,
  decisions: readonly RecordedDecision[],
  onProgress?: (done: number, total: number) => void,
): Promise<{ replayed: number; changed: ChangedDecision[] }> {
  const byPath = new Map<string, RecordedDecision[]>();
  for (const d of decisions) byPath.set(d.path, [...(byPath.get(d.path) ?? []), d]);
  const changed: ChangedDecision[] = [];
  let done = 0;
  for (const [path, list] of byPath) {
    const results = await evaluateBundle(opaBin, bundle, path, list.map((d) => d.input));
    list.forEach((d, i) => {
      const recorded = summarizeResult(d.result);
      const replayed = summarizeResult(results[i]);
      if (recorded !== replayed) changed.push({ decisionId: d.decisionId, time: new Date(d.timeMs).toISOString(), path, recorded, replayed, input: d.input });
    });
    done += list.length;
    onProgress?.(done, decisions.length);
  }
  return { replayed: decisions.length, changed };
}
