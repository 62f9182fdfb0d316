// `ztwatch policy replay|generate|unused`: policies against recorded history. Replay evaluates
// Kubernetes, Istio and Cilium policies (and OPA bundles, through a real `opa`) on the flows of a
// window; generate writes least-privilege policies from allowed traffic; unused lists what policies
// allow that nobody used. Flows are aggregated in ClickHouse first.
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { createError } from '../../core/errors.ts';
import type { Store } from '../../store/client.ts';
import { queryOpaDecisions, queryOpenFindings } from '../../store/posture-queries.ts';
import { CONVENTION_NOTE, createConventionResolver, createInventoryResolver, parseInventory, type LabelResolver } from '../../posture/flow.ts';
import { GENERATE_FORMATS, generatePolicies, type GenerateFormat } from '../../posture/generate.ts';
import { loadFlows } from '../../posture/history.ts';
import { findOpaBin, readRecordedDecision, replayOpaDecisions, type RecordedDecision } from '../../posture/opa.ts';
import { mergePolicySets, parsePolicyYaml, type PolicySet } from '../../posture/policies.ts';
import { replayFlows } from '../../posture/replay.ts';
import { formatTable, toCsvField } from '../../posture/report.ts';
import { measureUsage } from '../../posture/unused.ts';
import { parseCommandArgs } from '../args.ts';
import { runWithLocalStore, type CommandIo } from '../local-store.ts';
import { parseCliTime } from './access.ts';

const USAGE = `usage: ztwatch policy <replay|generate|unused> [options]

  ztwatch policy replay FILE... [--window 30d] [--inventory FILE] [--json] [--limit N]
      Evaluates the policies in FILE (multi-document YAML: NetworkPolicy, AuthorizationPolicy,
      PeerAuthentication, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy) on the recorded
      flows of the window; prints the flows they would deny and the decisions they would change.
      A FILE that is a directory or a .tar.gz is an OPA bundle: recorded OPA decision inputs are
      evaluated by opa (--opa-bin, default .cache/opa/bin/opa, else opa on PATH) against it.
  ztwatch policy generate --format istio|k8s|cilium [--window 30d] [--inventory FILE] [--json]
      Least-privilege policies from observed allowed traffic, leaving out the traffic of open
      anomalies and incidents; YAML on stdout.
  ztwatch policy unused FILE... [--window 90d] [--inventory FILE] [--csv|--json]
      Rules, sources and ports the policies allow that no recorded traffic used in the window.

Common options:
  --window W        how far back: 30d, 12h, 90m (default 30d; unused: 90d)
  --to TIME         end of the window (ISO-8601 or relative); default now
  --inventory FILE  labels from \`kubectl get pods,namespaces -A -o json\`; without it, labels follow
                    the convention app=<workload>, kubernetes.io/metadata.name=<namespace>

Reads the store configured by ztwatch.yaml / CLICKHOUSE_URL / ZTWATCH_DATA_DIR.`;

/** Writes `text`, waiting when the stream is full. */
export async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/** [from, to) of `--window` / `--to`. */
export function readWindow(window: string | undefined, to: string | undefined, defaultWindow: string, nowMs = Date.now()): { fromMs: number; toMs: number } {
  const toMs = to === undefined ? nowMs : parseCliTime(to, '--to', nowMs);
  const w = window ?? defaultWindow;
  if (!/^\d+(m|h|d)$/.test(w)) throw createError('CLI_USAGE', `--window ${w}: use a duration such as 7d, 12h or 90m`);
  return { fromMs: parseCliTime(w, '--window', toMs), toMs };
}

/** Reads policy files (YAML); a missing file is a usage error naming it. */
export function readPolicyFiles(files: readonly string[]): PolicySet {
  return mergePolicySets(
    files.map((file) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw createError('CLI_USAGE', `${file}: ${(err as Error).message}`);
      }
      return parsePolicyYaml(text, file);
    }),
  );
}

/** The label resolver: from an inventory file, else the convention. */
export function readResolver(inventoryFile: string | undefined): LabelResolver {
  if (inventoryFile === undefined) return createConventionResolver();
  let text: string;
  try {
    text = readFileSync(inventoryFile, 'utf8');
  } catch (err) {
    throw createError('CLI_USAGE', `--inventory ${inventoryFile}: ${(err as Error).message}`);
  }
  const inventory = parseInventory(text);
  if (typeof inventory === 'string') throw createError('POSTURE_INVENTORY_INVALID', `${inventoryFile}: ${inventory}`);
  return createInventoryResolver(inventory);
}

/** The line that says where labels came from. */
export function describeLabels(resolver: LabelResolver, inventoryFile?: string): string {
  return resolver.mode === 'inventory' ? `labels from inventory ${inventoryFile ?? ''}`.trim() : CONVENTION_NOTE;
}

function isOpaBundle(file: string): boolean {
  return file.endsWith('.tar.gz') || (existsSync(file) && statSync(file).isDirectory());
}

function parseLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw createError('CLI_USAGE', `--limit ${text}: not a whole number`);
  return Number(text);
}

const progress = (io: CommandIo, what: string) => (done: number, total: number) => {
  io.stderr.write(`\r${what}: ${done}/${total}`);
  if (done === total) io.stderr.write('\n');
};

async function runReplay(args: string[], io: CommandIo, store: Store): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { window: { type: 'string' }, to: { type: 'string' }, inventory: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' }, 'opa-bin': { type: 'string' }, 'opa-limit': { type: 'string' } },
    USAGE,
  );
  if (positionals.length === 0) throw createError('CLI_USAGE', `policy replay needs at least one policy file or OPA bundle\n${USAGE}`);
  const window = readWindow(values.window, values.to, '30d');
  const limit = parseLimit(values.limit, 50);
  const bundles = positionals.filter(isOpaBundle);
  const set = readPolicyFiles(positionals.filter((f) => !isOpaBundle(f)));
  const resolver = readResolver(values.inventory);
  const report: Record<string, unknown> = { from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels: describeLabels(resolver, values.inventory), notes: set.notes };
  let text = '';
  if (set.policies.length > 0) {
    io.stderr.write('aggregating flows in the store…\n');
    const flows = await loadFlows(store, window);
    io.stderr.write(`replaying ${set.policies.length} policies over ${flows.length} flows…\n`);
    const result = replayFlows(set.policies, flows, resolver, progress(io, 'flows'));
    report.policies = set.policies.length;
    report.replay = result;
    const newlyDenied = result.changed.filter((f) => f.replayed === 'deny');
    const newlyAllowed = result.changed.filter((f) => f.replayed === 'allow');
    text += `${report.labels}\n${set.notes.map((n) => `note: ${n}\n`).join('')}`;
    text += `replayed ${set.policies.length} policies over ${result.flows} flows (${result.requests} requests) from ${report.from as string} to ${report.to as string}\n`;
    text += `would deny ${result.denied.length} flows (${result.deniedRequests} requests); ${newlyDenied.length} of them were allowed when recorded; ${newlyAllowed.length} recorded denials would be allowed\n\n`;
    const rows = (list: typeof result.denied) =>
      list.slice(0, limit).map((f) => [f.source, `${f.destination}.${f.namespace}`, f.port, f.method || '-', f.route || '-', f.requests, f.lastSeen, f.recorded, f.replayed, f.reasons[0] ?? '']);
    const header = ['SOURCE', 'DESTINATION', 'PORT', 'METHOD', 'ROUTE', 'REQUESTS', 'LAST SEEN', 'RECORDED', 'REPLAYED', 'REASON'];
    if (result.denied.length > 0) text += `flows that would be denied${result.denied.length > limit ? ` (first ${limit}; --limit for more)` : ''}:\n${formatTable(header, rows(result.denied), 70)}\n`;
    if (result.changed.length > 0) text += `decisions that would change${result.changed.length > limit ? ` (first ${limit})` : ''}:\n${formatTable(header, rows(result.changed), 70)}\n`;
    if (result.audited.length > 0) text += `AUDIT policies would mark: ${result.audited.map((a) => `${a.policy} (${a.requests} requests)`).join(', ')}\n`;
  }
  if (bundles.length > 0) {
    const opaBin = values['opa-bin'] ?? findOpaBin();
    const rows = await queryOpaDecisions(store, { ...window, limit: parseLimit(values['opa-limit'], 100_000) });
    const decisions = rows.map((r) => readRecordedDecision(r.raw, r.time_ms)).filter((d): d is RecordedDecision => d !== undefined);
    const opa: Record<string, unknown>[] = [];
    for (const bundle of bundles) {
      io.stderr.write(`replaying ${decisions.length} recorded OPA decisions through ${bundle}…\n`);
      const result = await replayOpaDecisions(opaBin, bundle, decisions, progress(io, 'decisions'));
      opa.push({ bundle, ...result });
      text += `OPA bundle ${bundle}: ${result.replayed} recorded decisions replayed (${rows.length - decisions.length} records without input skipped); ${result.changed.length} would change\n`;
      if (result.changed.length > 0) {
        text += formatTable(
          ['TIME', 'DECISION ID', 'PATH', 'RECORDED', 'REPLAYED', 'INPUT'],
          result.changed.slice(0, limit).map((c) => [c.time, c.decisionId || '-', c.path, c.recorded, c.replayed, JSON.stringify(c.input)]),
          80,
        );
      }
    }
    report.opa = opa;
  }
  await write(io.stdout, values.json ? `${JSON.stringify(report)}\n` : text);
  return 0;
}

async function runGenerate(args: string[], io: CommandIo, store: Store): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { format: { type: 'string' }, window: { type: 'string' }, to: { type: 'string' }, inventory: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length > 0) throw createError('CLI_USAGE', `policy generate takes no files\n${USAGE}`);
  const format = values.format;
  if (!format || !(GENERATE_FORMATS as readonly string[]).includes(format)) throw createError('CLI_USAGE', `--format ${format ?? '(missing)'}: use ${GENERATE_FORMATS.join(', ')}`);
  const window = readWindow(values.window, values.to, '30d');
  const resolver = readResolver(values.inventory);
  const exclude = await queryOpenFindings(store);
  io.stderr.write(`aggregating allowed flows in the store (${exclude.length} open anomalies/incidents left out)…\n`);
  const flows = await loadFlows(store, { ...window, decision: 'allow', exclude });
  const header = [
    `least-privilege ${format} policies generated by ztwatch from ${flows.length} allowed flows, ${new Date(window.fromMs).toISOString()} to ${new Date(window.toMs).toISOString()}`,
    `traffic of ${exclude.length} open anomalies/incidents left out`,
    describeLabels(resolver, values.inventory),
  ];
  const generated = generatePolicies(flows, format as GenerateFormat, resolver, header);
  io.stderr.write(`${generated.documents.length} policies\n`);
  await write(io.stdout, values.json ? `${JSON.stringify({ documents: generated.documents, notes: generated.notes, labels: describeLabels(resolver, values.inventory) })}\n` : generated.yaml);
  return 0;
}

async function runUnused(args: string[], io: CommandIo, store: Store): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { window: { type: 'string' }, to: { type: 'string' }, inventory: { type: 'string' }, json: { type: 'boolean' }, csv: { type: 'boolean' }, all: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length === 0) throw createError('CLI_USAGE', `policy unused needs at least one policy file\n${USAGE}`);
  const window = readWindow(values.window, values.to, '90d');
  const set = readPolicyFiles(positionals);
  const resolver = readResolver(values.inventory);
  io.stderr.write('aggregating flows in the store…\n');
  const flows = await loadFlows(store, window);
  const usage = measureUsage(set.policies, flows, resolver);
  const rows = values.all ? usage : usage.filter((u) => u.requests === 0);
  if (values.json) {
    await write(io.stdout, `${JSON.stringify({ from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels: describeLabels(resolver, values.inventory), elements: usage.length, rows })}\n`);
  } else if (values.csv) {
    const cols = ['policy', 'file', 'path', 'element', 'value', 'requests'] as const;
    await write(io.stdout, `${cols.join(',')}\r\n${rows.map((r) => cols.map((c) => toCsvField(r[c])).join(',')).join('\r\n')}${rows.length ? '\r\n' : ''}`);
  } else {
    await write(
      io.stdout,
      `${describeLabels(resolver, values.inventory)}\n${rows.length} of ${usage.length} allowed rules, sources and ports ${values.all ? 'listed' : 'unused'} from ${new Date(window.fromMs).toISOString()} to ${new Date(window.toMs).toISOString()} (${flows.length} flows)\n\n` +
        formatTable(['POLICY', 'FIELD', 'ELEMENT', 'VALUE', 'REQUESTS'], rows.map((r) => [r.policy, r.path, r.element, r.value, r.requests]), 70),
    );
  }
  return 0;
}

const SUBCOMMANDS = { replay: runReplay, generate: runGenerate, unused: runUnused } as const;

/** Runs `ztwatch policy <sub> …` against `store`. */
export async function runPolicy(args: string[], io: CommandIo, store: Store): Promise<number> {
  const [sub, ...rest] = args;
  const handler = sub ? SUBCOMMANDS[sub as keyof typeof SUBCOMMANDS] : undefined;
  if (!handler) throw createError('CLI_USAGE', `${sub ? `unknown subcommand '${sub}'` : 'missing subcommand'}\n${USAGE}`);
  return handler(rest, io, store);
}

/** `ztwatch policy …` */
export function run(args: string[]): Promise<number> {
  return runWithLocalStore(args, USAGE, (io, store) => runPolicy(args, io, store));
}
