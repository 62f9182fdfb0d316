// `ztwatch blast-radius IDENTITY`: what one identity can reach under the given policies, hop by
// hop through the services it reaches, next to what it (and those services) did reach.
import { createError } from '../../core/errors.ts';
import type { Store } from '../../store/client.ts';
import { computeBlastRadius } from '../../posture/blast-radius.ts';
import { indexPolicies } from '../../posture/evaluate.ts';
import { loadFlows } from '../../posture/history.ts';
import { formatTable } from '../../posture/report.ts';
import { parseCommandArgs } from '../args.ts';
import { runWithLocalStore, type CommandIo } from '../local-store.ts';
import { describeLabels, readPolicyFiles, readResolver, readWindow, write } from './policy.ts';

const USAGE = `usage: ztwatch blast-radius IDENTITY [--policies FILE]... [--window 30d] [--inventory FILE] [--hops N] [--json]

What IDENTITY (a SPIFFE ID, or a source IP) can reach under the policies in FILE — each known
service it may call on some port, then onward under each reached service's identity, up to
--hops (default 6) — next to what it, and the services it called, did reach in the window.
Without --policies, only what it did reach.`;

/** Runs `ztwatch blast-radius …` against `store`. */
export async function runBlastRadius(args: string[], io: CommandIo, store: Store): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { policies: { type: 'string', multiple: true }, window: { type: 'string' }, to: { type: 'string' }, inventory: { type: 'string' }, hops: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const [identity, ...more] = positionals;
  if (!identity) throw createError('CLI_USAGE', `blast-radius needs an IDENTITY\n${USAGE}`);
  const files = [...(values.policies ?? []), ...more];
  if (values.hops !== undefined && !/^[1-9]\d?$/.test(values.hops)) throw createError('CLI_USAGE', `--hops ${values.hops}: a number from 1 to 99`);
  const window = readWindow(values.window, values.to, '30d');
  const index = files.length > 0 ? indexPolicies(readPolicyFiles(files).policies) : null;
  const resolver = readResolver(values.inventory);
  io.stderr.write('aggregating flows in the store…\n');
  const flows = await loadFlows(store, window);
  const result = computeBlastRadius(identity, flows, index, resolver, values.hops ? Number(values.hops) : 6);
  if (values.json) {
    await write(io.stdout, `${JSON.stringify({ from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels: describeLabels(resolver, values.inventory), ...result })}\n`);
    return 0;
  }
  const hop = (h: number | null) => (h === null ? '-' : h === 1 ? 'direct' : `${h} hops`);
  let text = `${describeLabels(resolver, values.inventory)}\n`;
  text += index
    ? `${identity} can reach ${result.canReach} service(s) under ${files.join(', ')}; did reach ${result.didReach} from ${new Date(window.fromMs).toISOString()} to ${new Date(window.toMs).toISOString()}\n\n`
    : `${identity} did reach ${result.didReach} service(s) from ${new Date(window.fromMs).toISOString()} to ${new Date(window.toMs).toISOString()} (no --policies: reachability under policies not computed)\n\n`;
  text += formatTable(
    ['NAMESPACE', 'SERVICE', 'CAN REACH', 'ALLOWED PORTS', 'DID REACH', 'DIRECT REQUESTS'],
    result.rows.map((r) => [r.namespace, r.service, index ? hop(r.canReachHop) : 'n/a', r.allowedPorts.join(',') || '-', hop(r.didReachHop), r.directRequests]),
  );
  await write(io.stdout, text);
  return 0;
}

/** `ztwatch blast-radius …` */
export function run(args: string[]): Promise<number> {
  return runWithLocalStore(args, USAGE, (io, store) => runBlastRadius(args, io, store));
}
