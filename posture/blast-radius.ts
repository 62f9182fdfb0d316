// Blast radius: "if this identity is compromised, what else can it reach?" Under the given
// policies, every known service the identity may call (any request on some port), then onward from
// each reached service under that service's own identity, hop by hop — next to what it, and the
// services it called, did reach in the recorded window.
import { evaluateFlow, type PolicyIndex } from './evaluate.ts';
import { parseSpiffeId, type Flow, type LabelResolver } from './flow.ts';

export interface BlastRadiusRow {
  readonly namespace: string;
  readonly service: string;
  /** Hops needed under the policies (1 = directly), null when unreachable or no policies given. */
  readonly canReachHop: number | null;
  /** Ports the policies allow at the first hop that reaches it. */
  readonly allowedPorts: readonly number[];
  /** Hops in the recorded window (1 = called directly), null when never reached. */
  readonly didReachHop: number | null;
  /** Requests the identity itself sent there in the window. */
  readonly directRequests: number;
}

export interface BlastRadius {
  readonly identity: string;
  readonly policiesGiven: boolean;
  readonly rows: readonly BlastRadiusRow[];
  readonly canReach: number;
  readonly didReach: number;
}

interface Service {
  readonly namespace: string;
  readonly service: string;
  readonly ports: Set<number>;
}

/** Identity of each workload (namespace/workload) as observed sending traffic. */
function workloadIdentities(flows: readonly Flow[], resolver: LabelResolver): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of flows) {
    if (!f.srcIdentity) continue;
    const src = resolver.source(f);
    if (src.inCluster && !out.has(`${src.namespace}/${src.workload}`)) out.set(`${src.namespace}/${src.workload}`, f.srcIdentity);
  }
  return out;
}

/** Computes what `identity` can reach under `index` (when given) and did reach in `flows`. */
export function computeBlastRadius(identity: string, flows: readonly Flow[], index: PolicyIndex | null, resolver: LabelResolver, maxHops = 6): BlastRadius {
  const services = new Map<string, Service>();
  for (const f of flows) {
    if (!f.dstNamespace) continue;
    const key = `${f.dstNamespace}/${f.dstService}`;
    let s = services.get(key);
    if (!s) services.set(key, (s = { namespace: f.dstNamespace, service: f.dstService, ports: new Set() }));
    s.ports.add(f.dstPort);
  }
  const identities = workloadIdentities(flows, resolver);
  const trustDomain = /^spiffe:\/\/([^/]+)\//.exec(identity)?.[1] ?? 'cluster.local';
  const identityOf = (s: Service) => identities.get(`${s.namespace}/${s.service}`) ?? `spiffe://${trustDomain}/ns/${s.namespace}/sa/${s.service}`;
  const ipOf = new Map<string, string>();
  for (const f of flows) if (f.srcIdentity && f.srcIp && !ipOf.has(f.srcIdentity)) ipOf.set(f.srcIdentity, f.srcIp);

  // Under the policies.
  const can = new Map<string, { hop: number; ports: number[] }>();
  if (index) {
    let frontier = [identity];
    const visited = new Set(frontier);
    for (let hop = 1; hop <= maxHops && frontier.length > 0; hop++) {
      const next: string[] = [];
      for (const src of frontier) {
        const spiffe = parseSpiffeId(src);
        for (const [key, s] of services) {
          if (can.has(key)) continue;
          const ports = [...s.ports].filter((port) => {
            const probe: Flow = {
              srcIdentity: src,
              srcWorkload: spiffe?.serviceAccount ?? '',
              srcNamespace: spiffe?.namespace ?? '',
              srcIp: ipOf.get(src) ?? '',
              dstService: s.service,
              dstNamespace: s.namespace,
              dstPort: port,
              method: '',
              route: '',
              decision: 'allow',
              observer: 'proxy',
              inbound: true,
              mtls: 'yes',
              count: 0,
              lastSeenMs: 0,
            };
            return evaluateFlow(index, probe, resolver, { anyRequest: true }).allowed;
          });
          if (ports.length === 0) continue;
          can.set(key, { hop, ports: ports.sort((a, b) => a - b) });
          const onward = identityOf(s);
          if (!visited.has(onward)) {
            visited.add(onward);
            next.push(onward);
          }
        }
      }
      frontier = next;
    }
  }

  // In the recorded window.
  const edges = new Map<string, Map<string, number>>();
  for (const f of flows) {
    if (f.decision !== 'allow' || !f.srcIdentity || !f.dstNamespace) continue;
    const out = edges.get(f.srcIdentity) ?? new Map<string, number>();
    const key = `${f.dstNamespace}/${f.dstService}`;
    out.set(key, (out.get(key) ?? 0) + f.count);
    edges.set(f.srcIdentity, out);
  }
  const did = new Map<string, number>();
  let frontier = [identity];
  const visited = new Set(frontier);
  for (let hop = 1; hop <= maxHops && frontier.length > 0; hop++) {
    const next: string[] = [];
    for (const src of frontier) {
      for (const key of edges.get(src)?.keys() ?? []) {
        if (did.has(key)) continue;
        did.set(key, hop);
        const s = services.get(key);
        const onward = s ? identityOf(s) : undefined;
        if (onward && !visited.has(onward)) {
          visited.add(onward);
          next.push(onward);
        }
      }
    }
    frontier = next;
  }

  const direct = edges.get(identity) ?? new Map<string, number>();
  const keys = new Set([...can.keys(), ...did.keys()]);
  const rows: BlastRadiusRow[] = [...keys]
    .map((key) => {
      const [namespace = '', service = ''] = key.split('/');
      const c = can.get(key);
      return { namespace, service, canReachHop: c?.hop ?? null, allowedPorts: c?.ports ?? [], didReachHop: did.get(key) ?? null, directRequests: direct.get(key) ?? 0 };
    })
    .sort((a, b) => (a.canReachHop ?? a.didReachHop ?? 99) - (b.canReachHop ?? b.didReachHop ?? 99) || `${a.namespace}/${a.service}`.localeCompare(`${b.namespace}/${b.service}`));
  return { identity, policiesGiven: index !== null, rows, canReach: can.size, didReach: did.size };
}
