import { describe, expect, it } from 'vitest';
import { queryServiceGraph } from '../../store/graph-edge-queries.ts';
import { BASE_MS, EVENTS, useAccessStore } from '../helpers/access-events.ts';

const HOUR_MS = 3_600_000;

describe('service-graph queries', () => {
  const db = useAccessStore();

  it('builds the service graph from the edge rollup', async () => {
    const edges = await queryServiceGraph(db.store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, limit: 100 });
    const total = edges.reduce((sum, e) => sum + e.requests, 0);
    expect(total).toBe(EVENTS.length);
    const denies = edges.reduce((sum, e) => sum + e.denies, 0);
    expect(denies).toBe(EVENTS.filter((e) => e.decision === 'deny').length);
    const plaintext = edges.reduce((sum, e) => sum + e.plaintext, 0);
    expect(plaintext).toBe(EVENTS.filter((e) => e.mtls === 'no').length);
    expect(edges[0]!.requests).toBeGreaterThanOrEqual(edges[edges.length - 1]!.requests);
    const prod = await queryServiceGraph(db.store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, namespace: 'prod', limit: 100 });
    expect(prod.every((e) => e.dst_namespace === 'prod' || e.src_namespace === 'prod')).toBe(true);
    expect((await queryServiceGraph(db.store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, limit: 2 })).length).toBe(2);
  });
});
