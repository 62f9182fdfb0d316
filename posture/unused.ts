// Unused permissions — the quarterly review: every rule, source value (principal, namespace, IP
// block, peer) and port a policy allows, with the requests that used it in the window; those with
// none are candidates for removal.
import { evaluateFlow, indexPolicies } from './evaluate.ts';
import type { Flow, LabelResolver } from './flow.ts';
import { describePolicy, type CiliumRule, type IstioOperation, type IstioSource, type NetworkRule, type Origin, type Policy } from './policies.ts';

/** One permission element of a policy. */
export interface PermissionElement {
  readonly policy: string;
  readonly file: string;
  /** Field path inside the document, e.g. `spec.rules[0].from[0].source.principals[1]`. */
  readonly path: string;
  /** rule | principal | namespace | ipBlock | peer | port | method | path | host */
  readonly element: string;
  /** The value as written (a principal, `5432/TCP`, a selector), or the rule's summary. */
  readonly value: string;
}

export interface UsageRow extends PermissionElement {
  readonly requests: number;
}

function sourceElements(s: IstioSource, add: (path: string, element: string, value: string) => void): void {
  s.principals?.forEach((v, i) => add(`${s.path}.principals[${i}]`, 'principal', v));
  s.namespaces?.forEach((v, i) => add(`${s.path}.namespaces[${i}]`, 'namespace', v));
  s.ipBlocks?.forEach((v, i) => add(`${s.path}.ipBlocks[${i}]`, 'ipBlock', v.text));
}

function operationElements(o: IstioOperation, add: (path: string, element: string, value: string) => void): void {
  o.ports?.forEach((v, i) => add(`${o.path}.ports[${i}]`, 'port', String(v)));
  o.methods?.forEach((v, i) => add(`${o.path}.methods[${i}]`, 'method', v));
  o.paths?.forEach((v, i) => add(`${o.path}.paths[${i}]`, 'path', v));
  o.hosts?.forEach((v, i) => add(`${o.path}.hosts[${i}]`, 'host', v));
}

function networkRuleElements(r: NetworkRule, add: (path: string, element: string, value: string) => void): void {
  add(r.path, 'rule', `${r.peers.length || 'any'} peer(s), ${r.ports.length || 'any'} port(s)`);
  for (const p of r.peers) add(p.path, 'peer', p.ipBlock ? p.ipBlock.cidr.text : JSON.stringify({ ...(p.namespaceSelector ? { namespaceSelector: p.namespaceSelector.matchLabels } : {}), ...(p.podSelector ? { podSelector: p.podSelector.matchLabels } : {}) }));
  for (const p of r.ports) add(p.path, 'port', p.port === undefined ? `any/${p.protocol}` : `${p.port}${p.endPort ? `-${p.endPort}` : ''}/${p.protocol}`);
}

function ciliumRuleElements(r: CiliumRule, add: (path: string, element: string, value: string) => void): void {
  add(r.path, 'rule', 'allow rule');
  r.endpoints?.forEach((s, i) => add(`${r.path}.${r.direction}Endpoints[${i}]`, 'peer', JSON.stringify(s.matchLabels)));
  r.cidrs?.forEach((b, i) => add(`${r.path}.${r.direction}CIDR[${i}]`, 'ipBlock', b.cidr.text));
  r.entities?.forEach((e, i) => add(`${r.path}.${r.direction}Entities[${i}]`, 'entity', e));
  for (const p of r.ports) if (p.port !== undefined) add(p.path, 'port', `${p.port}/${p.protocol}`);
}

/** Every permission element of the allow side of `policy` (deny and audit rules grant nothing). */
export function listPermissions(policy: Policy): PermissionElement[] {
  const out: PermissionElement[] = [];
  const add = (path: string, element: string, value: string) => out.push({ policy: describePolicy(policy.origin), file: policy.origin.file, path, element, value });
  switch (policy.kind) {
    case 'AuthorizationPolicy':
      if (policy.action !== 'ALLOW') break;
      for (const r of policy.rules) {
        add(r.path, 'rule', `${r.from.length || 'any'} source(s), ${r.to.length || 'any'} operation(s)`);
        r.from.forEach((s) => sourceElements(s, add));
        r.to.forEach((o) => operationElements(o, add));
      }
      break;
    case 'NetworkPolicy':
      [...policy.ingress, ...policy.egress].forEach((r) => networkRuleElements(r, add));
      break;
    case 'PeerAuthentication':
      break;
    default:
      for (const s of policy.specs) [...(s.ingress ?? []), ...(s.egress ?? [])].forEach((r) => ciliumRuleElements(r, add));
  }
  return out;
}

const keyOf = (origin: Origin, path: string) => `${origin.file}\u0000${origin.index}\u0000${origin.kind}\u0000${origin.name}\u0000${path}`;

/** Requests per permission element over `flows` (replayed with hit tracking). */
export function measureUsage(policies: readonly Policy[], flows: readonly Flow[], resolver: LabelResolver): UsageRow[] {
  const index = indexPolicies(policies);
  const hits = new Map<string, number>();
  for (const flow of flows) {
    const seen = new Set<string>();
    evaluateFlow(index, flow, resolver, {
      onHit: (origin, path) => {
        const key = keyOf(origin, path);
        if (seen.has(key)) return;
        seen.add(key);
        hits.set(key, (hits.get(key) ?? 0) + flow.count);
      },
    });
  }
  return policies.flatMap((p) => listPermissions(p).map((e) => ({ ...e, requests: hits.get(keyOf(p.origin, e.path)) ?? 0 })));
}
