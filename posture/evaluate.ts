// Policy semantics as pure functions: what each API would decide for one flow, per its documents.
//
// - Istio AuthorizationPolicy: CUSTOM (refused when read) → DENY → ALLOW. A matching DENY denies; a
//   workload with no ALLOW policy is allowed; with ALLOW policies, a request is allowed only when one
//   matches. AUDIT never changes a decision. Policies in the root namespace (istio-system) apply to
//   every namespace. Rules with HTTP-only fields never match a TCP flow in ALLOW policies, and those
//   fields are ignored in DENY policies (Istio's own handling, which errs towards denying). They
//   are evaluated on what the receiving sidecar recorded (inbound records).
// - Istio PeerAuthentication: the most specific policy wins (workload selector, with its port-level
//   modes, then namespace, then root namespace); under STRICT, a plaintext flow is rejected.
// - Kubernetes NetworkPolicy: additive. A pod selected by a policy with Ingress (Egress) in its
//   policyTypes is isolated in that direction and accepts only what some selecting policy's rules
//   allow; a flow needs both the source's egress and the destination's ingress to allow it.
// - Cilium: an endpoint selected by a rule with an ingress (egress) section is default-deny in that
//   direction (unless enableDefaultDeny says otherwise); deny rules win over allow rules, whatever
//   kind of policy allows. Cilium enforces Kubernetes NetworkPolicies too, so both add up in one
//   network layer.
import { cidrContains, parseCidr } from './cidr.ts';
import { toPrincipal, parseSpiffeId, type Endpoint, type Flow, type LabelResolver } from './flow.ts';
import type {
  AuthorizationPolicy,
  CiliumPolicy,
  CiliumRule,
  IpBlock,
  IstioCondition,
  IstioOperation,
  IstioRule,
  IstioSource,
  LabelSelector,
  MtlsMode,
  NetworkPeer,
  NetworkPolicy,
  Origin,
  PeerAuthentication,
  Policy,
  PortRule,
} from './policies.ts';
import { describePolicy } from './policies.ts';

/** Istio's root namespace: its policies apply mesh-wide. */
export const ISTIO_ROOT_NAMESPACE = 'istio-system';

/** Policies grouped by kind, as evaluation reads them. */
export interface PolicyIndex {
  readonly authorization: readonly AuthorizationPolicy[];
  readonly peerAuthentication: readonly PeerAuthentication[];
  readonly network: readonly NetworkPolicy[];
  readonly cilium: readonly CiliumPolicy[];
}

/** Groups policies by kind. */
export function indexPolicies(policies: readonly Policy[]): PolicyIndex {
  return {
    authorization: policies.filter((p): p is AuthorizationPolicy => p.kind === 'AuthorizationPolicy'),
    peerAuthentication: policies.filter((p): p is PeerAuthentication => p.kind === 'PeerAuthentication'),
    network: policies.filter((p): p is NetworkPolicy => p.kind === 'NetworkPolicy'),
    cilium: policies.filter((p): p is CiliumPolicy => p.kind === 'CiliumNetworkPolicy' || p.kind === 'CiliumClusterwideNetworkPolicy'),
  };
}

/** The replayed decision for one flow. */
export interface Verdict {
  readonly allowed: boolean;
  /** Why it is denied: one sentence per denying layer. */
  readonly reasons: readonly string[];
  /** AUDIT policies that match (they do not change the decision). */
  readonly audited: readonly string[];
}

export interface EvaluateOptions {
  /** Called for every rule, peer, value and port that matches the flow (unused-permission reports). */
  readonly onHit?: (origin: Origin, path: string) => void;
  /**
   * Reachability mode (blast radius): a flow without method stands for "any request"; ALLOW rules
   * ignore HTTP-only fields and DENY rules with HTTP-only fields do not block the whole service.
   */
  readonly anyRequest?: boolean;
}

// ---- matching primitives ----

/** True when `labels` satisfy a Kubernetes label selector (empty selects all). */
export function matchSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>, stripPrefixes = false): boolean {
  const key = (k: string) => (stripPrefixes ? k.replace(/^(k8s|any):/, '') : k);
  for (const [k, v] of Object.entries(selector.matchLabels)) if (labels[key(k)] !== v) return false;
  for (const e of selector.matchExpressions) {
    const value = labels[key(e.key)];
    if (e.operator === 'Exists' && value === undefined) return false;
    if (e.operator === 'DoesNotExist' && value !== undefined) return false;
    if (e.operator === 'In' && (value === undefined || !e.values.includes(value))) return false;
    if (e.operator === 'NotIn' && value !== undefined && e.values.includes(value)) return false;
  }
  return true;
}

/** Istio string match: exact, `*`, `prefix*` or `*suffix`. */
export function matchIstioString(pattern: string, value: string): boolean {
  if (pattern === '*') return value !== '';
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

const TEMPLATE_SEGMENT = /^\{[^}]*\}$/;

/**
 * Istio path match against a recorded route template (`/api/orders/{id}`): a `{…}` segment stands
 * for any one segment, so an exact policy path matches the template it instantiates, a prefix
 * matches when some instance starts with it, a suffix when some instance ends with it.
 */
export function matchPathPattern(pattern: string, route: string): boolean {
  if (pattern === '*') return route !== '';
  const routeSegs = route.split('/');
  if (pattern.endsWith('*')) {
    const segs = pattern.slice(0, -1).split('/');
    if (segs.length > routeSegs.length) return false;
    return segs.every((s, i) => {
      const r = routeSegs[i] as string;
      const template = TEMPLATE_SEGMENT.test(r);
      return i === segs.length - 1 ? template || r.startsWith(s) : template || r === s;
    });
  }
  if (pattern.startsWith('*')) {
    const segs = pattern.slice(1).split('/');
    if (segs.length > routeSegs.length) return false;
    const offset = routeSegs.length - segs.length;
    return segs.every((s, i) => {
      const r = routeSegs[offset + i] as string;
      const template = TEMPLATE_SEGMENT.test(r);
      return i === 0 ? template || r.endsWith(s) : template || r === s;
    });
  }
  const segs = pattern.split('/');
  return segs.length === routeSegs.length && segs.every((s, i) => TEMPLATE_SEGMENT.test(routeSegs[i] as string) || routeSegs[i] === s);
}

function matchPorts(ports: readonly PortRule[], port: number): PortRule | undefined | 'any' {
  if (ports.length === 0) return 'any';
  // Recorded flows are TCP (HTTP, gRPC, Hubble TCP flows).
  return ports.find((p) => (p.protocol === 'TCP' || p.protocol === 'ANY') && (p.port === undefined || (p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort)));
}

function inIpBlock(block: IpBlock, ip: string): boolean {
  return ip !== '' && cidrContains(block.cidr, ip) && !block.except.some((e) => cidrContains(e, ip));
}

// ---- Istio ----

function sourceNamespace(flow: Flow): string {
  return parseSpiffeId(flow.srcIdentity)?.namespace ?? '';
}

function findIndex(values: readonly string[] | undefined, test: (v: string) => boolean): number {
  return values ? values.findIndex(test) : -1;
}

function matchSource(src: IstioSource, flow: Flow, hit: (path: string) => void): boolean {
  const principal = flow.srcIdentity ? toPrincipal(flow.srcIdentity) : '';
  const namespace = sourceNamespace(flow);
  const hits: string[] = [];
  if (src.principals) {
    const i = findIndex(src.principals, (p) => matchIstioString(p, principal));
    if (i < 0) return false;
    hits.push(`${src.path}.principals[${i}]`);
  }
  if (src.notPrincipals && findIndex(src.notPrincipals, (p) => matchIstioString(p, principal)) >= 0) return false;
  if (src.namespaces) {
    const i = findIndex(src.namespaces, (n) => matchIstioString(n, namespace));
    if (i < 0) return false;
    hits.push(`${src.path}.namespaces[${i}]`);
  }
  if (src.notNamespaces && findIndex(src.notNamespaces, (n) => matchIstioString(n, namespace)) >= 0) return false;
  if (src.ipBlocks) {
    const i = src.ipBlocks.findIndex((c) => flow.srcIp !== '' && cidrContains(c, flow.srcIp));
    if (i < 0) return false;
    hits.push(`${src.path}.ipBlocks[${i}]`);
  }
  if (src.notIpBlocks?.some((c) => flow.srcIp !== '' && cidrContains(c, flow.srcIp))) return false;
  hits.forEach(hit);
  return true;
}

function hasHttpFields(op: IstioOperation): boolean {
  return !!(op.methods || op.notMethods || op.paths || op.notPaths || op.hosts || op.notHosts);
}

function hostNames(flow: Flow): string[] {
  const base = [flow.dstService, `${flow.dstService}.${flow.dstNamespace}`, `${flow.dstService}.${flow.dstNamespace}.svc`, `${flow.dstService}.${flow.dstNamespace}.svc.cluster.local`];
  return [...base, ...base.map((h) => `${h}:${flow.dstPort}`)];
}

/** Whether an operation matches; `http` says how HTTP-only fields are treated for a flow without method. */
function matchOperation(op: IstioOperation, flow: Flow, httpless: 'never' | 'ignore', hit: (path: string) => void): boolean {
  const hits: string[] = [];
  if (op.ports) {
    const i = op.ports.indexOf(flow.dstPort);
    if (i < 0) return false;
    hits.push(`${op.path}.ports[${i}]`);
  }
  if (op.notPorts?.includes(flow.dstPort)) return false;
  if (flow.method === '' && hasHttpFields(op)) {
    if (httpless === 'never') return false;
  } else {
    if (op.methods) {
      const i = findIndex(op.methods, (m) => matchIstioString(m, flow.method));
      if (i < 0) return false;
      hits.push(`${op.path}.methods[${i}]`);
    }
    if (op.notMethods && findIndex(op.notMethods, (m) => matchIstioString(m, flow.method)) >= 0) return false;
    if (op.paths) {
      const i = findIndex(op.paths, (p) => matchPathPattern(p, flow.route));
      if (i < 0) return false;
      hits.push(`${op.path}.paths[${i}]`);
    }
    if (op.notPaths && findIndex(op.notPaths, (p) => matchPathPattern(p, flow.route)) >= 0) return false;
    if (op.hosts) {
      const names = hostNames(flow);
      const i = findIndex(op.hosts, (h) => names.some((n) => matchIstioString(h.toLowerCase(), n)));
      if (i < 0) return false;
      hits.push(`${op.path}.hosts[${i}]`);
    }
    if (op.notHosts) {
      const names = hostNames(flow);
      if (findIndex(op.notHosts, (h) => names.some((n) => matchIstioString(h.toLowerCase(), n))) >= 0) return false;
    }
  }
  hits.forEach(hit);
  return true;
}

function conditionValue(c: IstioCondition, flow: Flow): string {
  switch (c.key) {
    case 'source.ip':
    case 'remote.ip':
      return flow.srcIp;
    case 'source.namespace':
      return sourceNamespace(flow);
    case 'source.principal':
      return flow.srcIdentity ? toPrincipal(flow.srcIdentity) : '';
    default:
      return String(flow.dstPort);
  }
}

function matchCondition(c: IstioCondition, flow: Flow): boolean {
  const value = conditionValue(c, flow);
  const test = (pattern: string) => {
    if (c.key === 'source.ip' || c.key === 'remote.ip') {
      // Checked when the policy was read.
      const cidr = parseCidr(pattern);
      return cidr !== undefined && inIpBlock({ cidr, except: [] }, value);
    }
    return matchIstioString(pattern, value);
  };
  if (c.values && !c.values.some(test)) return false;
  if (c.notValues?.some(test)) return false;
  return true;
}

function matchRule(rule: IstioRule, flow: Flow, httpless: 'never' | 'ignore', hit: (path: string) => void): boolean {
  const hits: string[] = [];
  const collect = (p: string) => hits.push(p);
  if (rule.from.length > 0 && !rule.from.some((s) => matchSource(s, flow, collect))) return false;
  if (rule.to.length > 0 && !rule.to.some((o) => matchOperation(o, flow, httpless, collect))) return false;
  if (!rule.when.every((c) => matchCondition(c, flow))) return false;
  hit(rule.path);
  hits.forEach(hit);
  return true;
}

function appliesTo(policy: AuthorizationPolicy | PeerAuthentication, dst: Endpoint): boolean {
  const ns = policy.origin.namespace;
  if (ns !== dst.namespace && ns !== ISTIO_ROOT_NAMESPACE) return false;
  return policy.selector === null || matchSelector(policy.selector, dst.labels);
}

/** Effective mTLS mode at the destination port: workload (port level first) → namespace → root. */
export function effectiveMtlsMode(policies: readonly PeerAuthentication[], dst: Endpoint, port: number): { mode: MtlsMode; by?: PeerAuthentication } {
  const workload = policies.filter((p) => p.selector !== null && p.origin.namespace === dst.namespace && matchSelector(p.selector, dst.labels));
  for (const p of workload) {
    const m = p.portLevel.get(port);
    if (m && m !== 'UNSET') return { mode: m, by: p };
  }
  for (const p of workload) if (p.mode !== 'UNSET') return { mode: p.mode, by: p };
  const namespace = policies.find((p) => p.selector === null && p.origin.namespace === dst.namespace && p.mode !== 'UNSET');
  if (namespace) return { mode: namespace.mode, by: namespace };
  const root = policies.find((p) => p.selector === null && p.origin.namespace === ISTIO_ROOT_NAMESPACE && p.mode !== 'UNSET');
  if (root) return { mode: root.mode, by: root };
  return { mode: 'PERMISSIVE' };
}

function evaluateMesh(index: PolicyIndex, flow: Flow, dst: Endpoint, options: EvaluateOptions, reasons: string[], audited: string[]): void {
  const mtls = effectiveMtlsMode(index.peerAuthentication, dst, flow.dstPort);
  if (mtls.mode === 'STRICT' && flow.mtls === 'no') reasons.push(`plaintext rejected: ${mtls.by ? describePolicy(mtls.by.origin) : 'STRICT'} requires mTLS`);
  const applicable = index.authorization.filter((p) => appliesTo(p, dst));
  if (applicable.length === 0) return;
  const hitFor = (p: AuthorizationPolicy) => (path: string) => options.onHit?.(p.origin, path);
  const track = options.onHit !== undefined;
  for (const p of applicable) {
    if (p.action !== 'DENY') continue;
    // DENY: HTTP-only fields are ignored for TCP flows (Istio), but in reachability mode a partial
    // deny does not block the service.
    const httpless = options.anyRequest ? 'never' : 'ignore';
    const rule = p.rules.find((r) => matchRule(r, flow, httpless, hitFor(p)));
    if (rule) reasons.push(`denied by ${describePolicy(p.origin)} (${rule.path})`);
  }
  for (const p of applicable) {
    if (p.action === 'AUDIT' && p.rules.some((r) => matchRule(r, flow, 'ignore', hitFor(p)))) audited.push(describePolicy(p.origin));
  }
  const allows = applicable.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return;
  const httpless = options.anyRequest ? 'ignore' : 'never';
  let allowed = false;
  for (const p of allows) {
    for (const r of p.rules) {
      if (matchRule(r, flow, httpless, hitFor(p))) {
        allowed = true;
        if (!track) break;
      }
    }
    if (allowed && !track) break;
  }
  if (!allowed) reasons.push(`no ALLOW rule matches (${allows.map((p) => describePolicy(p.origin)).join(', ')} select ${dst.workload || dst.namespace})`);
}

// ---- network layer (Kubernetes NetworkPolicy + Cilium) ----

function matchNetworkPeer(peer: NetworkPeer, policyNamespace: string, other: Endpoint): boolean {
  if (peer.ipBlock) return inIpBlock(peer.ipBlock, other.ip);
  if (!other.inCluster) return false;
  if (peer.namespaceSelector) {
    if (!matchSelector(peer.namespaceSelector, other.namespaceLabels)) return false;
  } else if (other.namespace !== policyNamespace) return false;
  return peer.podSelector ? matchSelector(peer.podSelector, other.labels) : true;
}

/** Cilium's view of an endpoint's labels: pod labels plus namespace and service-account labels. */
function ciliumLabels(e: Endpoint): Record<string, string> {
  const out: Record<string, string> = { ...e.labels, 'io.kubernetes.pod.namespace': e.namespace, 'io.cilium.k8s.policy.serviceaccount': e.serviceAccount };
  for (const [k, v] of Object.entries(e.namespaceLabels)) out[`io.cilium.k8s.namespace.labels.${k}`] = v;
  return out;
}

function selectsNamespace(selector: LabelSelector): boolean {
  const key = (k: string) => k.replace(/^(k8s|any):/, '');
  return Object.keys(selector.matchLabels).some((k) => key(k) === 'io.kubernetes.pod.namespace') || selector.matchExpressions.some((e) => key(e.key) === 'io.kubernetes.pod.namespace');
}

function matchCiliumPeer(rule: CiliumRule, policy: CiliumPolicy, other: Endpoint): string | undefined {
  if (!rule.endpoints && !rule.cidrs && !rule.entities) return rule.path;
  if (rule.endpoints && other.inCluster) {
    const labels = ciliumLabels(other);
    const i = rule.endpoints.findIndex(
      (s) => matchSelector(s, labels, true) && (policy.kind === 'CiliumClusterwideNetworkPolicy' || selectsNamespace(s) || other.namespace === policy.origin.namespace),
    );
    if (i >= 0) return `${rule.path}.${rule.direction}Endpoints[${i}]`;
  }
  if (rule.cidrs && !other.inCluster) {
    const i = rule.cidrs.findIndex((b) => inIpBlock(b, other.ip));
    if (i >= 0) return `${rule.path}.${rule.direction}CIDR[${i}]`;
  }
  if (rule.entities) {
    const i = rule.entities.findIndex((e) => e === 'all' || (e === 'world' && !other.inCluster) || (e === 'cluster' && other.inCluster));
    if (i >= 0) return `${rule.path}.${rule.direction}Entities[${i}]`;
  }
  return undefined;
}

/** Network decision in one direction for `subject` (destination on ingress, source on egress). */
function evaluateDirection(index: PolicyIndex, direction: 'ingress' | 'egress', subject: Endpoint, peer: Endpoint, port: number, options: EvaluateOptions, reasons: string[]): void {
  const track = options.onHit !== undefined;
  let isolated = false;
  let allowed = false;
  const isolating: string[] = [];
  for (const np of index.network) {
    if (np.origin.namespace !== subject.namespace) continue;
    if (!(direction === 'ingress' ? np.isolatesIngress : np.isolatesEgress)) continue;
    if (!matchSelector(np.podSelector, subject.labels)) continue;
    isolated = true;
    isolating.push(describePolicy(np.origin));
    if (allowed && !track) continue;
    for (const rule of direction === 'ingress' ? np.ingress : np.egress) {
      const peerIndex = rule.peers.length === 0 ? -1 : rule.peers.findIndex((p) => matchNetworkPeer(p, np.origin.namespace, peer));
      if (rule.peers.length > 0 && peerIndex < 0) continue;
      const portMatch = matchPorts(rule.ports, port);
      if (portMatch === undefined) continue;
      allowed = true;
      options.onHit?.(np.origin, rule.path);
      if (peerIndex >= 0) options.onHit?.(np.origin, rule.peers[peerIndex]!.path);
      if (portMatch !== 'any') options.onHit?.(np.origin, portMatch.path);
      if (!track) break;
    }
  }
  const subjectLabels = ciliumLabels(subject);
  for (const cp of index.cilium) {
    if (cp.kind === 'CiliumNetworkPolicy' && cp.origin.namespace !== subject.namespace) continue;
    for (const spec of cp.specs) {
      if (!matchSelector(spec.endpointSelector, subjectLabels, true)) continue;
      const allowRules = direction === 'ingress' ? spec.ingress : spec.egress;
      const denyRules = direction === 'ingress' ? spec.ingressDeny : spec.egressDeny;
      const explicit = direction === 'ingress' ? spec.defaultDenyIngress : spec.defaultDenyEgress;
      if (explicit ?? (allowRules !== undefined || denyRules !== undefined)) {
        isolated = true;
        isolating.push(describePolicy(cp.origin));
      }
      for (const rule of denyRules ?? []) {
        const peerPath = matchCiliumPeer(rule, cp, peer);
        const portMatch = peerPath ? matchPorts(rule.ports, port) : undefined;
        if (!peerPath || portMatch === undefined) continue;
        options.onHit?.(cp.origin, rule.path);
        reasons.push(`${direction} denied by ${describePolicy(cp.origin)} (${rule.path})`);
      }
      for (const rule of allowRules ?? []) {
        if (allowed && !track) break;
        const peerPath = matchCiliumPeer(rule, cp, peer);
        const portMatch = peerPath ? matchPorts(rule.ports, port) : undefined;
        if (!peerPath || portMatch === undefined) continue;
        allowed = true;
        options.onHit?.(cp.origin, rule.path);
        options.onHit?.(cp.origin, peerPath);
        if (portMatch !== 'any') options.onHit?.(cp.origin, portMatch.path);
      }
    }
  }
  if (isolated && !allowed) {
    const who = subject.workload ? `${subject.namespace}/${subject.workload}` : subject.namespace;
    reasons.push(`${direction} of ${who} isolated by ${[...new Set(isolating)].join(', ')} and no rule allows it`);
  }
}

/** The decision the policies would take on `flow`. */
export function evaluateFlow(index: PolicyIndex, flow: Flow, resolver: LabelResolver, options: EvaluateOptions = {}): Verdict {
  const reasons: string[] = [];
  const audited: string[] = [];
  const src = resolver.source(flow);
  const dst = resolver.destination(flow);
  if (index.network.length > 0 || index.cilium.length > 0) {
    evaluateDirection(index, 'ingress', dst, src, flow.dstPort, options, reasons);
    if (src.inCluster) evaluateDirection(index, 'egress', src, dst, flow.dstPort, options, reasons);
  }
  // Sidecar policies act where the receiving proxy sees the request; network observers (Hubble)
  // record the same requests below it, where only the network layer applies; the sending side and
  // gateways name a source the destination's sidecar never sees.
  if (flow.observer === 'proxy' && flow.inbound) evaluateMesh(index, flow, dst, options, reasons, audited);
  return { allowed: reasons.length === 0, reasons, audited };
}
