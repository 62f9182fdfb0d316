// The service graph as cytoscape elements, from GET /v1/graph: a workload's SPIFFE identity and its
// service become one node when they name the same namespace and account/service (otherwise each
// stays a node of its own), nodes sit in their namespace (compound parent), each edge gets a colour
// bucket for the chosen ratio, open findings badge what they name, and an earlier window marks
// edges that are new, gone or changed. Pure: no DOM, no cytoscape.
import type { Graph, GraphEdge, Severity } from './types.ts';

export type ColourBy = 'deny' | 'tls' | 'plaintext';

/** Ratio thresholds between colour buckets 0 (none) … 3 (≥ 10 %). */
export const BUCKET_LIMITS = [0, 0.01, 0.1] as const;
/** Change in deny ratio, in ratio points, that marks an edge as changed. */
export const DENY_RATIO_CHANGE = 0.05;
/** Change in mTLS share, in ratio points, that marks an edge as changed. */
export const MTLS_SHARE_CHANGE = 0.1;
/** Parent of nodes without a namespace (users, external callers, unknown services). */
export const OUTSIDE_NAMESPACE = '(outside the mesh)';

export interface BadgeSource {
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  readonly status: string;
  readonly actors: readonly string[];
  readonly targets: readonly string[];
}

export interface NodeData {
  id: string;
  label: string;
  parent: string;
  kind: 'service' | 'identity' | 'workload';
  identity: string;
  service: string;
  namespace: string;
  requests_in: number;
  requests_out: number;
  findings: string[];
  severity: string;
}

export interface EdgeData extends Omit<GraphEdge, 'source' | 'target'> {
  id: string;
  source: string;
  target: string;
  src_identity: string;
  dst_service: string;
  deny_ratio: number;
  tls_ratio: number;
  plaintext_ratio: number;
  mtls_share: number;
  bucket: number;
  change: 'added' | 'removed' | 'changed' | '';
  change_note: string;
  findings: string[];
  severity: string;
  weight: number;
}

export interface GraphElements {
  namespaces: Array<{ data: { id: string; label: string } }>;
  nodes: Array<{ data: NodeData }>;
  edges: Array<{ data: EdgeData }>;
}

const SEVERITY_ORDER = ['info', 'low', 'medium', 'high', 'critical'];

/** `spiffe://td/ns/<ns>/sa/<sa>` → { namespace, account }, else null. */
export function parseSpiffe(identity: string): { namespace: string; account: string } | null {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(identity);
  return m ? { namespace: m[1] as string, account: m[2] as string } : null;
}

/** Short label: the account of a SPIFFE ID, else the text ("(no identity)" when empty). */
export function labelIdentity(identity: string): string {
  if (!identity) return '(no identity)';
  return parseSpiffe(identity)?.account ?? identity;
}

export function bucketOf(ratio: number): number {
  if (!(ratio > BUCKET_LIMITS[0])) return 0;
  if (ratio < BUCKET_LIMITS[1]) return 1;
  if (ratio < BUCKET_LIMITS[2]) return 2;
  return 3;
}

function ratioOf(edge: Pick<GraphEdge, 'requests' | 'denies' | 'tls_failures' | 'plaintext'>, by: ColourBy): number {
  const n = Math.max(1, edge.requests);
  return by === 'deny' ? edge.denies / n : by === 'tls' ? edge.tls_failures / n : edge.plaintext / n;
}

function nameOf(nodeId: string): string {
  return nodeId.slice(nodeId.indexOf(':') + 1);
}

const edgeKey = (srcIdentity: string, dstService: string) => `${srcIdentity}\u0000${dstService}`;

/** Builds the elements of `graph`, badged with open `findings`, diffed against `previous` when given. */
export function buildGraphElements(graph: Graph, options: { colourBy: ColourBy; findings?: readonly BadgeSource[]; previous?: Graph | null }): GraphElements {
  const { colourBy } = options;
  const findings = (options.findings ?? []).filter((f) => f.status === 'firing');
  const serviceNodes = new Map<string, string>(); // `${ns}/${name}` → node id
  const nodes = new Map<string, NodeData>();
  const namespaces = new Set<string>();
  const nodeFor = new Map<string, string>(); // API node id → console node id

  const addNode = (id: string, data: Omit<NodeData, 'id' | 'parent' | 'findings' | 'severity'>) => {
    const namespace = data.namespace || OUTSIDE_NAMESPACE;
    namespaces.add(namespace);
    const node: NodeData = { id, parent: `ns:${namespace}`, findings: [], severity: '', ...data };
    nodes.set(id, node);
    return node;
  };

  const apiNodes = [...graph.nodes, ...(options.previous?.nodes ?? [])];
  for (const n of apiNodes) {
    if (n.kind !== 'service' || nodeFor.has(n.id)) continue;
    const id = `w:${n.namespace}/${n.name}`;
    nodeFor.set(n.id, id);
    serviceNodes.set(`${n.namespace}/${n.name}`, id);
    if (!nodes.has(id)) addNode(id, { label: n.name || '(unknown service)', kind: 'service', identity: '', service: n.name, namespace: n.namespace, requests_in: 0, requests_out: 0 });
  }
  for (const n of apiNodes) {
    if (n.kind !== 'identity' || nodeFor.has(n.id)) continue;
    const spiffe = parseSpiffe(n.name);
    const merged = spiffe ? serviceNodes.get(`${spiffe.namespace}/${spiffe.account}`) : undefined;
    if (merged) {
      nodeFor.set(n.id, merged);
      const node = nodes.get(merged);
      if (node) {
        node.identity = n.name;
        node.kind = 'workload';
      }
      continue;
    }
    const id = `i:${n.name}`;
    nodeFor.set(n.id, id);
    if (!nodes.has(id)) addNode(id, { label: labelIdentity(n.name), kind: 'identity', identity: n.name, service: '', namespace: n.namespace || spiffe?.namespace || '', requests_in: 0, requests_out: 0 });
  }
  for (const n of graph.nodes) {
    const node = nodes.get(nodeFor.get(n.id) ?? '');
    if (!node) continue;
    node.requests_in += n.requests_in;
    node.requests_out += n.requests_out;
  }

  const previous = new Map<string, GraphEdge>();
  for (const e of options.previous?.edges ?? []) previous.set(edgeKey(nameOf(e.source), nameOf(e.target)), e);
  const seen = new Set<string>();
  const edges: Array<{ data: EdgeData }> = [];
  const toEdge = (e: GraphEdge, change: EdgeData['change'], note: string): EdgeData => {
    const src = nameOf(e.source);
    const dst = nameOf(e.target);
    const n = Math.max(1, e.requests);
    const ratio = ratioOf(e, colourBy);
    return {
      ...e,
      id: `e:${edgeKey(src, dst)}`,
      source: nodeFor.get(e.source) ?? e.source,
      target: nodeFor.get(e.target) ?? e.target,
      src_identity: src,
      dst_service: dst,
      deny_ratio: e.denies / n,
      tls_ratio: e.tls_failures / n,
      plaintext_ratio: e.plaintext / n,
      mtls_share: e.mtls_requests / n,
      bucket: change === 'removed' ? 0 : bucketOf(ratio),
      change,
      change_note: note,
      findings: [],
      severity: '',
      weight: Math.min(8, 1 + Math.log10(1 + e.requests)),
    };
  };
  for (const e of graph.edges) {
    const key = edgeKey(nameOf(e.source), nameOf(e.target));
    seen.add(key);
    let change: EdgeData['change'] = '';
    let note = '';
    if (options.previous) {
      const before = previous.get(key);
      if (!before) {
        change = 'added';
        note = 'new in this window';
      } else {
        const denyDelta = e.denies / Math.max(1, e.requests) - before.denies / Math.max(1, before.requests);
        const mtlsDelta = e.mtls_requests / Math.max(1, e.requests) - before.mtls_requests / Math.max(1, before.requests);
        const notes: string[] = [];
        if (Math.abs(denyDelta) >= DENY_RATIO_CHANGE) notes.push(`deny ratio ${denyDelta > 0 ? '+' : ''}${(denyDelta * 100).toFixed(1)} pts`);
        if (Math.abs(mtlsDelta) >= MTLS_SHARE_CHANGE) notes.push(`mTLS share ${mtlsDelta > 0 ? '+' : ''}${(mtlsDelta * 100).toFixed(1)} pts`);
        if (notes.length > 0) {
          change = 'changed';
          note = notes.join(', ');
        }
      }
    }
    edges.push({ data: toEdge(e, change, note) });
  }
  for (const [key, e] of previous) {
    if (seen.has(key)) continue;
    edges.push({ data: toEdge({ ...e, requests: 0, denies: 0, errors: 0, tls_failures: 0, plaintext: 0, mtls_requests: 0, bytes_in: 0, bytes_out: 0 }, 'removed', `gone: ${e.requests} requests in the earlier window`) });
  }

  // Badges: a node named by an open finding, an edge from one of its actors to one of its targets.
  const badge = (target: { findings: string[]; severity: string }, f: BadgeSource) => {
    if (!target.findings.includes(f.id)) target.findings.push(f.id);
    if (SEVERITY_ORDER.indexOf(f.severity) > SEVERITY_ORDER.indexOf(target.severity)) target.severity = f.severity;
  };
  for (const f of findings) {
    const named = new Set([...f.actors, ...f.targets]);
    for (const node of nodes.values()) {
      if ((node.identity && named.has(node.identity)) || (node.service && named.has(node.service))) badge(node, f);
    }
    for (const { data } of edges) {
      if (f.actors.includes(data.src_identity) && f.targets.includes(data.dst_service)) badge(data, f);
    }
  }
  for (const node of nodes.values()) if (node.findings.length > 0) node.label = `${node.label}  ⚠${node.findings.length}`;

  return {
    namespaces: [...namespaces].sort().map((ns) => ({ data: { id: `ns:${ns}`, label: ns } })),
    nodes: [...nodes.values()].map((data) => ({ data })),
    edges,
  };
}
