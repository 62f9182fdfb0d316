// Policy replay: the recorded flows of a window evaluated under a set of policies — the flows they
// would deny, and every recorded decision they would change.
import { evaluateFlow, indexPolicies, type Verdict } from './evaluate.ts';
import type { Flow, LabelResolver } from './flow.ts';
import { describeSource } from './history.ts';
import type { Policy } from './policies.ts';

/** One flow with its replayed verdict. */
export interface ReplayedFlow {
  readonly source: string;
  readonly destination: string;
  readonly namespace: string;
  readonly port: number;
  readonly method: string;
  readonly route: string;
  readonly requests: number;
  readonly lastSeen: string;
  readonly recorded: string;
  readonly replayed: 'allow' | 'deny';
  readonly reasons: readonly string[];
}

export interface ReplayResult {
  readonly labels: 'inventory' | 'convention';
  readonly flows: number;
  readonly requests: number;
  /** Flows the policies would deny (busiest first). */
  readonly denied: readonly ReplayedFlow[];
  /** Flows whose recorded allow/deny the policies would turn around. */
  readonly changed: readonly ReplayedFlow[];
  /** Requests in the denied flows. */
  readonly deniedRequests: number;
  /** AUDIT policies and the requests they would mark. */
  readonly audited: ReadonlyArray<{ policy: string; requests: number }>;
}

function toReplayed(flow: Flow, verdict: Verdict): ReplayedFlow {
  return {
    source: describeSource(flow),
    destination: flow.dstService,
    namespace: flow.dstNamespace,
    port: flow.dstPort,
    method: flow.method,
    route: flow.route,
    requests: flow.count,
    lastSeen: new Date(flow.lastSeenMs).toISOString(),
    recorded: flow.decision,
    replayed: verdict.allowed ? 'allow' : 'deny',
    reasons: verdict.reasons,
  };
}

/** Replays `flows` under `policies`; `onProgress` is told how many flows are done. */
export function replayFlows(policies: readonly Policy[], flows: readonly Flow[], resolver: LabelResolver, onProgress?: (done: number, total: number) => void): ReplayResult {
  const index = indexPolicies(policies);
  const denied: ReplayedFlow[] = [];
  const changed: ReplayedFlow[] = [];
  const audited = new Map<string, number>();
  let requests = 0;
  let deniedRequests = 0;
  flows.forEach((flow, i) => {
    requests += flow.count;
    const verdict = evaluateFlow(index, flow, resolver);
    for (const a of verdict.audited) audited.set(a, (audited.get(a) ?? 0) + flow.count);
    const wasAllowed = flow.decision === 'allow';
    const wasDenied = flow.decision === 'deny';
    if (!verdict.allowed) {
      denied.push(toReplayed(flow, verdict));
      deniedRequests += flow.count;
    }
    if ((wasAllowed && !verdict.allowed) || (wasDenied && verdict.allowed)) changed.push(toReplayed(flow, verdict));
    if (onProgress && (i + 1) % 10_000 === 0) onProgress(i + 1, flows.length);
  });
  const byRequests = (a: ReplayedFlow, b: ReplayedFlow) => b.requests - a.requests;
  return {
    labels: resolver.mode,
    flows: flows.length,
    requests,
    denied: denied.sort(byRequests),
    changed: changed.sort(byRequests),
    deniedRequests,
    audited: [...audited].map(([policy, n]) => ({ policy, requests: n })),
  };
}
