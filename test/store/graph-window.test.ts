// The service graph's window query (busiest edges found by hash first, then summed in full, read
// through the minute-ordered projection of edge_minute) equals the plain aggregation of the raw
// events over the same minutes, including ties at the edge limit and a namespace filter.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { queryServiceGraph, queryServiceGraphByName, type GraphEdgeRow } from '../../store/graph-edge-queries.ts';
import { EDGE_MINUTE_BY_TIME_PROJECTION } from '../../store/migrations/console.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const END_MS = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 5 * MINUTE_MS;

/**
 * Three hours of traffic among 12 identities and 9 services in 3 namespaces: each edge gets a
 * number of requests that many other edges share (ties at any limit), denials, plaintext and TLS
 * failures on some, and an identity name with a quote.
 */
function buildEvents(): NormalizedEvent[] {
  const events: NormalizedEvent[] = [];
  for (let s = 0; s < 12; s++) {
    for (let d = 0; d < 9; d++) {
      if ((s * 7 + d) % 4 === 0) continue;
      const requests = 1 + ((s + d) % 5);
      for (let r = 0; r < requests; r++) {
        const k = events.length;
        events.push({
          ...createEmptyEvent('envoy', END_MS),
          event_id: randomUUID(),
          time: END_MS - 3 * HOUR_MS + ((k * 7919) % (3 * HOUR_MS)),
          src_identity: s === 11 ? "spiffe://cluster.local/ns/ns1/sa/o'brien" : `spiffe://cluster.local/ns/ns${s % 3}/sa/id${s}`,
          src_namespace: `ns${s % 3}`,
          dst_service: `svc${d}`,
          dst_namespace: `ns${d % 3}`,
          decision: k % 6 === 0 ? 'deny' : 'allow',
          status: k % 6 === 0 ? 403 : 200,
          mtls: k % 5 === 0 ? 'no' : 'yes',
          tls_failure: k % 11 === 0 ? 'handshake' : '',
          bytes_in: k,
          bytes_out: 3 * k,
        });
      }
    }
  }
  return events;
}

const EVENTS = buildEvents();

/** The plain aggregation of the raw events over whole minutes of [fromMs, toMs), busiest first. */
function expected(fromMs: number, toMs: number, limit: number, namespace?: string): GraphEdgeRow[] {
  const startMs = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS;
  const edges = new Map<string, GraphEdgeRow>();
  for (const e of EVENTS) {
    if (e.time < startMs || Math.floor(e.time / MINUTE_MS) * MINUTE_MS >= toMs) continue;
    if (namespace !== undefined && e.src_namespace !== namespace && e.dst_namespace !== namespace) continue;
    const key = `${e.src_identity}\u0000${e.dst_service}`;
    let edge = edges.get(key);
    if (!edge) {
      edge = { src_identity: e.src_identity, src_namespace: e.src_namespace, dst_service: e.dst_service, dst_namespace: e.dst_namespace, requests: 0, denies: 0, errors: 0, tls_failures: 0, plaintext: 0, mtls_requests: 0, bytes_in: 0, bytes_out: 0 };
      edges.set(key, edge);
    }
    edge.requests += e.count;
    edge.denies += e.decision === 'deny' ? e.count : 0;
    edge.errors += e.decision === 'error' ? e.count : 0;
    edge.tls_failures += e.tls_failure !== '' ? e.count : 0;
    edge.plaintext += e.mtls === 'no' ? e.count : 0;
    edge.mtls_requests += e.mtls === 'yes' ? e.count : 0;
    edge.bytes_in += e.bytes_in;
    edge.bytes_out += e.bytes_out;
  }
  // ClickHouse compares strings by bytes.
  const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  return [...edges.values()].sort((a, b) => b.requests - a.requests || cmp(a.src_identity, b.src_identity) || cmp(a.dst_service, b.dst_service)).slice(0, limit);
}

describe('service graph over a window', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    // Several inserts: several parts, as a running store has.
    for (let i = 0; i < EVENTS.length; i += 100) await store.insertEvents(EVENTS.slice(i, i + 100), `graph-${i}`);
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  const windows: Array<[string, number, number]> = [
    ['the whole history', END_MS - 4 * HOUR_MS, END_MS + HOUR_MS],
    ['the last hour', END_MS - HOUR_MS, END_MS],
    ['a window starting and ending inside minutes', END_MS - 100 * MINUTE_MS - 17_000, END_MS - 30 * MINUTE_MS + 2_500],
    ['an empty window', END_MS + HOUR_MS, END_MS + 2 * HOUR_MS],
  ];
  for (const [name, fromMs, toMs] of windows) {
    it(`equals the raw aggregation over ${name}, at every limit and with a namespace`, async () => {
      for (const limit of [1, 7, 40, 5000]) {
        expect(await queryServiceGraph(store, { fromMs, toMs, limit })).toEqual(expected(fromMs, toMs, limit));
      }
      expect(await queryServiceGraph(store, { fromMs, toMs, limit: 15, namespace: 'ns1' })).toEqual(expected(fromMs, toMs, 15, 'ns1'));
    });
  }

  it('sums by name when asked directly (the path taken if two edges ever share a hash)', async () => {
    const where = "minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AND minute < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')";
    const rows = await queryServiceGraphByName(store, `${store.database}.edge_minute`, where, { from_ms: END_MS - 2 * HOUR_MS, to_ms: END_MS, limit: 9 });
    expect(rows.map((r) => [r.src, r.dst, Number(r.requests)])).toEqual(expected(END_MS - 2 * HOUR_MS, END_MS, 9).map((e) => [e.src_identity, e.dst_service, e.requests]));
  });

});

describe('service graph storage', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    // A day of distinct rollup rows, several granules: only then is a window's read narrower.
    const rows = Array.from({ length: 60_000 }, (_, i) => ({
      minute: Math.floor((END_MS - (i % 1440) * MINUTE_MS) / 1000),
      src_identity: `id${i % 97}`,
      src_namespace: 'ns',
      dst_service: `svc${Math.floor(i / 1440)}`,
      dst_namespace: 'ns',
      source: 'envoy',
      requests: 1,
    }));
    await store.insertRows('edge_minute', rows);
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('reads a window through the minute-ordered projection of edge_minute', async () => {
    const rows = await store.query<Record<string, string>>(
      `EXPLAIN indexes = 1, projections = 1 SELECT sum(requests) FROM ${store.database}.edge_minute WHERE minute >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')`,
      { from_ms: END_MS - HOUR_MS },
    );
    const plan = rows.map((r) => Object.values(r).join('')).join('\n');
    expect(plan).toContain(`ReadFromMergeTree (${EDGE_MINUTE_BY_TIME_PROJECTION})`);
  });
});
