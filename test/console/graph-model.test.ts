// The console's graph model, without a browser: workloads merged from identity and service,
// namespaces as parents, colour buckets, "changes since" and incident badges.
import { describe, expect, it } from 'vitest';
import { bucketOf, buildGraphElements, OUTSIDE_NAMESPACE } from '../../console/src/graph-model.ts';
import type { Graph, GraphEdge } from '../../console/src/types.ts';

const edge = (source: string, target: string, counts: Partial<GraphEdge> = {}): GraphEdge => ({
  source,
  target,
  requests: 100,
  denies: 0,
  errors: 0,
  tls_failures: 0,
  plaintext: 0,
  mtls_requests: 100,
  bytes_in: 0,
  bytes_out: 0,
  ...counts,
});

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const CART = 'spiffe://cluster.local/ns/shop/sa/cart';

function graph(edges: GraphEdge[]): Graph {
  const nodes = new Map<string, Graph['nodes'][number]>();
  for (const e of edges) {
    for (const id of [e.source, e.target]) {
      const [kind, name] = [id.slice(0, id.indexOf(':')), id.slice(id.indexOf(':') + 1)] as ['identity' | 'service', string];
      const ns = /\/ns\/([^/]+)\//.exec(name)?.[1] ?? (name.includes('@') ? '' : kind === 'service' ? (name === 'vault' ? 'vault' : 'shop') : '');
      nodes.set(id, { id, kind, name, namespace: ns, requests_in: 0, requests_out: 0 });
    }
  }
  return { from: '2025-01-01T00:00:00Z', to: '2025-01-01T01:00:00Z', nodes: [...nodes.values()], edges };
}

const now = graph([
  edge(`identity:${FRONTEND}`, 'service:cart', { denies: 20 }),
  edge(`identity:${CART}`, 'service:vault', { plaintext: 100, mtls_requests: 0 }),
  edge('identity:alice@example.com', 'service:frontend', { denies: 5 }),
]);

describe('buildGraphElements', () => {
  it('merges a SPIFFE identity into the service of the same namespace and account, and groups by namespace', () => {
    const { nodes, namespaces, edges } = buildGraphElements(now, { colourBy: 'deny' });
    const frontend = nodes.find((n) => n.data.service === 'frontend')?.data;
    expect(frontend).toMatchObject({ kind: 'workload', identity: FRONTEND, parent: 'ns:shop' });
    expect(nodes.filter((n) => n.data.identity === FRONTEND)).toHaveLength(1);
    expect(nodes.find((n) => n.data.identity === 'alice@example.com')?.data).toMatchObject({ kind: 'identity', parent: `ns:${OUTSIDE_NAMESPACE}` });
    expect(namespaces.map((n) => n.data.label)).toEqual([OUTSIDE_NAMESPACE, 'shop', 'vault']);
    const frontendToCart = edges.find((e) => e.data.src_identity === FRONTEND && e.data.dst_service === 'cart')?.data;
    expect(frontendToCart?.source).toBe(frontend?.id);
    expect(frontendToCart?.target).toBe(nodes.find((n) => n.data.service === 'cart')?.data.id);
  });

  it('colours edges by the chosen ratio', () => {
    expect([0, 0.005, 0.05, 0.2].map(bucketOf)).toEqual([0, 1, 2, 3]);
    const byDeny = buildGraphElements(now, { colourBy: 'deny' }).edges.map((e) => e.data.bucket);
    expect(byDeny).toEqual([3, 0, 2]);
    const byPlaintext = buildGraphElements(now, { colourBy: 'plaintext' }).edges.map((e) => e.data.bucket);
    expect(byPlaintext).toEqual([0, 3, 0]);
  });

  it('marks edges new, gone and changed against an earlier window', () => {
    const before = graph([
      edge(`identity:${FRONTEND}`, 'service:cart', { denies: 1 }),
      edge(`identity:${CART}`, 'service:vault'),
      edge(`identity:${CART}`, 'service:ledger'),
    ]);
    const { edges, nodes } = buildGraphElements(now, { colourBy: 'deny', previous: before });
    const change = (src: string, dst: string) => edges.find((e) => e.data.src_identity === src && e.data.dst_service === dst)?.data;
    expect(change(FRONTEND, 'cart')).toMatchObject({ change: 'changed', change_note: 'deny ratio +19.0 pts' });
    expect(change(CART, 'vault')).toMatchObject({ change: 'changed', change_note: 'mTLS share -100.0 pts' });
    expect(change('alice@example.com', 'frontend')?.change).toBe('added');
    expect(change(CART, 'ledger')).toMatchObject({ change: 'removed', requests: 0 });
    expect(nodes.some((n) => n.data.service === 'ledger')).toBe(true);
    expect(buildGraphElements(now, { colourBy: 'deny', previous: now }).edges.every((e) => e.data.change === '')).toBe(true);
  });

  it('badges what open incidents name, with their highest severity, and ignores resolved ones', () => {
    const findings = [
      { id: 'i1', title: 'a', severity: 'medium' as const, status: 'firing', actors: [FRONTEND], targets: ['cart'] },
      { id: 'i2', title: 'b', severity: 'critical' as const, status: 'firing', actors: [], targets: ['cart'] },
      { id: 'i3', title: 'c', severity: 'high' as const, status: 'resolved', actors: ['alice@example.com'], targets: ['frontend'] },
    ];
    const { nodes, edges } = buildGraphElements(now, { colourBy: 'deny', findings });
    const cart = nodes.find((n) => n.data.service === 'cart')?.data;
    expect(cart).toMatchObject({ findings: ['i1', 'i2'], severity: 'critical' });
    expect(cart?.label).toBe('cart  ⚠2');
    expect(nodes.find((n) => n.data.identity === 'alice@example.com')?.data.findings).toEqual([]);
    expect(edges.find((e) => e.data.src_identity === FRONTEND)?.data).toMatchObject({ findings: ['i1'], severity: 'medium' });
  });
});
