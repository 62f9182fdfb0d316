// Least privilege from observed allowed traffic: one policy per destination workload that allows
// exactly the sources, ports, methods and route templates seen (Istio), or the source pods and
// ports (Kubernetes NetworkPolicy, Cilium), and nothing else. Route templates become Istio path
// prefixes at their first templated segment (`/api/orders/{id}` → `/api/orders/*`).
import { stringify } from 'yaml';
import { parseCidr } from './cidr.ts';
import { toPrincipal, type Endpoint, type Flow, type LabelResolver } from './flow.ts';
import { describeSource } from './history.ts';

export const GENERATE_FORMATS = ['istio', 'k8s', 'cilium'] as const;
export type GenerateFormat = (typeof GENERATE_FORMATS)[number];

export interface GeneratedPolicies {
  /** Kubernetes objects, one per destination workload. */
  readonly documents: readonly Record<string, unknown>[];
  /** The documents as multi-document YAML, headed by comments on how they were made. */
  readonly yaml: string;
  readonly notes: readonly string[];
}

/** Istio path pattern for a route template: exact, or a prefix up to the first `{…}` segment. */
export function routeToIstioPath(route: string): string {
  const i = route.indexOf('{');
  if (i < 0) return route;
  return `${route.slice(0, route.lastIndexOf('/', i) + 1)}*`;
}

/** The identifying label of an endpoint for selectors: `app`, else `app.kubernetes.io/name`, else all. */
function selectorLabels(e: Endpoint): Record<string, string> {
  if (e.labels.app !== undefined) return { app: e.labels.app };
  if (e.labels['app.kubernetes.io/name'] !== undefined) return { 'app.kubernetes.io/name': e.labels['app.kubernetes.io/name'] };
  return { ...e.labels };
}

function hostCidr(ip: string): string {
  return `${ip}/${parseCidr(ip)?.v6 ? 128 : 32}`;
}

const sorted = <T>(values: Iterable<T>): T[] => [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

interface Destination {
  readonly namespace: string;
  readonly service: string;
  readonly endpoint: Endpoint;
  readonly flows: Flow[];
}

function groupByDestination(flows: readonly Flow[], resolver: LabelResolver, notes: string[]): Destination[] {
  const map = new Map<string, Destination>();
  let skipped = 0;
  for (const f of flows) {
    if (f.decision !== 'allow') continue;
    if (!f.dstNamespace) {
      skipped++;
      continue;
    }
    const key = `${f.dstNamespace}/${f.dstService}`;
    let d = map.get(key);
    if (!d) map.set(key, (d = { namespace: f.dstNamespace, service: f.dstService, endpoint: resolver.destination(f), flows: [] }));
    d.flows.push(f);
  }
  if (skipped > 0) notes.push(`${skipped} allowed flow(s) without a destination namespace left out`);
  return [...map.values()].sort((a, b) => `${a.namespace}/${a.service}`.localeCompare(`${b.namespace}/${b.service}`));
}

function istioPolicy(d: Destination): Record<string, unknown> | undefined {
  const bySource = new Map<string, { source: Record<string, unknown>; ops: Map<string, { ports: Set<number>; paths: Set<string> }> }>();
  for (const f of d.flows) {
    if (f.observer !== 'proxy' || !f.inbound) continue;
    const key = f.srcIdentity ? `p:${f.srcIdentity}` : `ip:${f.srcIp}`;
    let s = bySource.get(key);
    if (!s) {
      const source = f.srcIdentity ? { principals: [toPrincipal(f.srcIdentity)] } : { ipBlocks: [hostCidr(f.srcIp)] };
      bySource.set(key, (s = { source, ops: new Map() }));
    }
    let op = s.ops.get(f.method);
    if (!op) s.ops.set(f.method, (op = { ports: new Set(), paths: new Set() }));
    op.ports.add(f.dstPort);
    if (f.method && f.route) op.paths.add(routeToIstioPath(f.route));
    else if (f.method) op.paths.add('*');
  }
  if (bySource.size === 0) return undefined;
  const rules = [...bySource.entries()]
    .filter(([key]) => key !== 'ip:')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, s]) => ({
      from: [{ source: s.source }],
      to: sorted(s.ops.keys()).map((method) => {
        const op = s.ops.get(method)!;
        const operation: Record<string, unknown> = { ports: sorted(op.ports).map(String) };
        if (method) {
          operation.methods = [method];
          // `*` (any path) covers requests recorded without a route.
          if (!op.paths.has('*')) operation.paths = sorted(op.paths);
        }
        return { operation };
      }),
    }));
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `${d.service}-least-privilege`, namespace: d.namespace },
    spec: { selector: { matchLabels: selectorLabels(d.endpoint) }, action: 'ALLOW', rules },
  };
}

function sourcesWithPorts(d: Destination, resolver: LabelResolver): Array<{ endpoint: Endpoint; ports: Set<number>; key: string }> {
  const map = new Map<string, { endpoint: Endpoint; ports: Set<number>; key: string }>();
  for (const f of d.flows) {
    const endpoint = resolver.source(f);
    const key = endpoint.inCluster ? `${endpoint.namespace}/${JSON.stringify(selectorLabels(endpoint))}` : `ip:${f.srcIp}`;
    if (!endpoint.inCluster && !f.srcIp) continue;
    let s = map.get(key);
    if (!s) map.set(key, (s = { endpoint, ports: new Set(), key }));
    s.ports.add(f.dstPort);
  }
  return [...map.values()].sort((a, b) => a.key.localeCompare(b.key));
}

function networkPolicy(d: Destination, resolver: LabelResolver): Record<string, unknown> {
  const ingress = sourcesWithPorts(d, resolver).map(({ endpoint, ports }) => ({
    from: [
      endpoint.inCluster
        ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': endpoint.namespace } }, podSelector: { matchLabels: selectorLabels(endpoint) } }
        : { ipBlock: { cidr: hostCidr(endpoint.ip) } },
    ],
    ports: sorted(ports).map((port) => ({ protocol: 'TCP', port })),
  }));
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `${d.service}-least-privilege`, namespace: d.namespace },
    spec: { podSelector: { matchLabels: selectorLabels(d.endpoint) }, policyTypes: ['Ingress'], ingress },
  };
}

function ciliumPolicy(d: Destination, resolver: LabelResolver): Record<string, unknown> {
  const ingress = sourcesWithPorts(d, resolver).map(({ endpoint, ports }) => ({
    ...(endpoint.inCluster
      ? { fromEndpoints: [{ matchLabels: { ...selectorLabels(endpoint), 'k8s:io.kubernetes.pod.namespace': endpoint.namespace } }] }
      : { fromCIDR: [hostCidr(endpoint.ip)] }),
    toPorts: [{ ports: sorted(ports).map((port) => ({ port: String(port), protocol: 'TCP' })) }],
  }));
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: `${d.service}-least-privilege`, namespace: d.namespace },
    spec: { endpointSelector: { matchLabels: selectorLabels(d.endpoint) }, ingress },
  };
}

/** Least-privilege policies in `format` from allowed flows (others are ignored). */
export function generatePolicies(flows: readonly Flow[], format: GenerateFormat, resolver: LabelResolver, header: readonly string[] = []): GeneratedPolicies {
  const notes: string[] = [];
  const documents: Record<string, unknown>[] = [];
  for (const d of groupByDestination(flows, resolver, notes)) {
    if (format === 'istio') {
      const doc = istioPolicy(d);
      if (doc) documents.push(doc);
      else notes.push(`${d.namespace}/${d.service}: no record of its own sidecar (inbound); no AuthorizationPolicy generated`);
    } else documents.push(format === 'k8s' ? networkPolicy(d, resolver) : ciliumPolicy(d, resolver));
  }
  const comments = [...header, ...notes].map((line) => `# ${line}\n`).join('');
  return { documents, yaml: comments + documents.map((doc) => stringify(doc)).join('---\n'), notes };
}

/** Sources (identity or IP) of allowed flows, for summaries. */
export function countSources(flows: readonly Flow[]): number {
  return new Set(flows.filter((f) => f.decision === 'allow').map(describeSource)).size;
}
