// `ztwatch posture mtls`: STRICT readiness per namespace, service and port from recorded traffic —
// mTLS share, the plaintext senders left, a verdict, and the PeerAuthentication to apply.
import { createError } from '../../core/errors.ts';
import type { Store } from '../../store/client.ts';
import { queryMtlsPosture } from '../../store/posture-queries.ts';
import { buildMtlsReport } from '../../posture/mtls.ts';
import { formatShare, formatTable } from '../../posture/report.ts';
import { parseCommandArgs } from '../args.ts';
import { runWithLocalStore, type CommandIo } from '../local-store.ts';
import { readWindow, write } from './policy.ts';

const USAGE = `usage: ztwatch posture mtls [--window 7d] [--to TIME] [--namespace NS] [--json | --manifest]

Per namespace, service and port: the share of requests received over mTLS, the plaintext senders
still there (identity or IP, requests, last seen), a verdict (ready for STRICT, or blocked by N
senders), and the PeerAuthentication manifests that switch the ready ones to STRICT.
  --manifest   print only the manifests (YAML, for kubectl apply -f -)
  --json       the report as JSON`;

/** Runs `ztwatch posture …` against `store`. */
export async function runPosture(args: string[], io: CommandIo, store: Store): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'mtls') throw createError('CLI_USAGE', `${sub ? `unknown subcommand '${sub}'` : 'missing subcommand'}\n${USAGE}`);
  const { values, positionals } = parseCommandArgs(
    rest,
    { window: { type: 'string' }, to: { type: 'string' }, namespace: { type: 'string' }, json: { type: 'boolean' }, manifest: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length > 0) throw createError('CLI_USAGE', `unexpected argument '${positionals[0]}'\n${USAGE}`);
  const window = readWindow(values.window, values.to, '7d');
  io.stderr.write('aggregating TLS state per destination port in the store…\n');
  const { ports, senders } = await queryMtlsPosture(store, { ...window, ...(values.namespace ? { namespace: values.namespace } : {}) });
  const report = buildMtlsReport(ports, senders);
  if (values.json) {
    await write(io.stdout, `${JSON.stringify({ from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), ...report })}\n`);
    return 0;
  }
  if (values.manifest) {
    await write(io.stdout, report.manifest || '# nothing is ready for STRICT yet\n');
    return 0;
  }
  let text = `STRICT readiness from ${new Date(window.fromMs).toISOString()} to ${new Date(window.toMs).toISOString()}: ${report.ready} port(s) ready, ${report.blocked} blocked\n\n`;
  text += formatTable(
    ['NAMESPACE', 'SERVICE', 'PORT', 'MTLS', 'MTLS REQ', 'PLAINTEXT REQ', 'UNKNOWN REQ', 'VERDICT'],
    report.ports.map((p) => [p.namespace || '-', p.service, p.port, formatShare(p.mtlsShare), p.mtlsRequests, p.plaintextRequests, p.unknownRequests, p.summary]),
  );
  const blocked = report.ports.filter((p) => p.senders.length > 0);
  if (blocked.length > 0) {
    text += `\nplaintext senders left:\n${formatTable(
      ['NAMESPACE', 'SERVICE', 'PORT', 'SENDER', 'REQUESTS', 'LAST SEEN'],
      blocked.flatMap((p) => p.senders.map((s) => [p.namespace || '-', p.service, p.port, s.sender, s.requests, s.lastSeen])),
      70,
    )}`;
  }
  text += report.manifest ? `\nPeerAuthentication to apply (ready ports only):\n---\n${report.manifest}` : '\nnothing is ready for STRICT yet\n';
  await write(io.stdout, text);
  return 0;
}

/** `ztwatch posture …` */
export function run(args: string[]): Promise<number> {
  return runWithLocalStore(args, USAGE, (io, store) => runPosture(args, io, store));
}
