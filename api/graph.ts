// The service graph: identities calling services over a time range, with request, deny, error,
// TLS-failure, plaintext and mTLS counts per edge, from the per-minute edge rollup.
import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.ts';
import { queryServiceGraph, type GraphEdgeRow } from '../store/graph-edge-queries.ts';
import type { Store } from '../store/client.ts';
import { GraphQuerySchema, GraphSchema, withErrors, type GraphQuery } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Default range when `from` is absent: one hour before `to`. */
const DEFAULT_RANGE_MS = 3_600_000;

interface GraphNode {
  id: string;
  kind: 'identity' | 'service';
  name: string;
  namespace: string;
  requests_out: number;
  requests_in: number;
}

/** Nodes and edges from edge rows: a source identity and a destination service per edge. */
export function buildGraph(rows: readonly GraphEdgeRow[]): { nodes: GraphNode[]; edges: Array<Record<string, string | number>> } {
  const nodes = new Map<string, GraphNode>();
  const node = (kind: GraphNode['kind'], name: string, namespace: string): GraphNode => {
    const id = `${kind}:${name}`;
    let n = nodes.get(id);
    if (!n) nodes.set(id, (n = { id, kind, name, namespace, requests_out: 0, requests_in: 0 }));
    return n;
  };
  const edges = rows.map((r) => {
    const source = node('identity', r.src_identity, r.src_namespace);
    const target = node('service', r.dst_service, r.dst_namespace);
    source.requests_out += r.requests;
    target.requests_in += r.requests;
    const { src_identity: _s, src_namespace: _sn, dst_service: _d, dst_namespace: _dn, ...counts } = r;
    return { source: source.id, target: target.id, ...counts };
  });
  return { nodes: [...nodes.values()], edges };
}

/** Registers /v1/graph. */
export function registerGraphRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: GraphQuery }>(
    '/v1/graph',
    {
      config: { auth: 'graph' },
      schema: {
        summary: 'Service graph: who calls what, with deny, TLS and mTLS counts',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        querystring: GraphQuerySchema,
        response: withErrors({ 200: GraphSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const toMs = parseTimeMs(q.to, 'to') ?? Date.now();
      const fromMs = parseTimeMs(q.from, 'from') ?? Math.max(0, toMs - DEFAULT_RANGE_MS);
      if (fromMs > toMs) throw createError('API_BAD_REQUEST', 'from is after to');
      const rows = await queryServiceGraph(store, { fromMs, toMs, namespace: q.namespace, limit: q.limit ?? 500 });
      return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), ...buildGraph(rows) };
    },
  );
}
