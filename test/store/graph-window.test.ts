// The service graph's window query (whole hours from edge_hour, the partial hours' minutes from
// edge_minute through its minute-ordered projection; busiest edges found by hash first, then summed
// in full) equals the plain aggregation of the raw events over the same minutes, including ties at
// the edge limit, a namespace filter and a batch inserted twice. The hour rollup is backfilled for a
// store migrated before it, fed by what edge_minute receives, and expires like edge_minute.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { readRetention } from '../../cli/commands/retention.ts';
import type { Store } from '../../store/client.ts';
import { queryServiceGraph, queryServiceGraphByName, splitWindowHours, type GraphEdgeRow } from '../../store/graph-edge-queries.ts';
import { EDGE_HOUR_TABLE, EDGE_MINUTE_BY_TIME_PROJECTION } from '../../store/migrations/console.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const END_MS = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 5 * MINUTE_MS;
/** The last hour boundary at or before END_MS: the events cover the two hours before it whole. */
const HOUR_MARK_MS = Math.floor(END_MS / HOUR_MS) * HOUR_MS;

/**
 * Three hours of traffic among 12 identities and 9 services in 3 namespaces: each edge gets a
 * number of requests that many other edges share (ties at any limit), denials, plaintext and TLS
 * failures on some, and an identity name with a quote.
 */
function buildEvents(endMs = END_MS): NormalizedEvent[] {
  const events: NormalizedEvent[] = [];
  for (let s = 0; s < 12; s++) {
    for (let d = 0; d < 9; d++) {
      if ((s * 7 + d) % 4 === 0) continue;
      const requests = 1 + ((s + d) % 5);
      for (let r = 0; r < requests; r++) {
        const k = events.length;
        events.push({
          ...createEmptyEvent('envoy', endMs),
          event_id: randomUUID(),
          // Spread over the three hours (7 919 003 and the span share no factor).
          time: endMs - 3 * HOUR_MS + ((k * 7_919_003) % (3 * HOUR_MS)),
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
function expected(fromMs: number, toMs: number, limit: number, namespace?: string, events: readonly NormalizedEvent[] = EVENTS): GraphEdgeRow[] {
  const startMs = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS;
  const edges = new Map<string, GraphEdgeRow>();
  for (const e of events) {
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
    // A retried batch (same token) counts once in both rollups.
    await store.insertEvents(EVENTS.slice(100, 200), 'graph-100');
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  const windows: Array<[string, number, number]> = [
    ['the whole history', END_MS - 4 * HOUR_MS, END_MS + HOUR_MS],
    ['the last hour', END_MS - HOUR_MS, END_MS],
    ['a window starting and ending inside minutes', END_MS - 100 * MINUTE_MS - 17_000, END_MS - 30 * MINUTE_MS + 2_500],
    ['an empty window', END_MS + HOUR_MS, END_MS + 2 * HOUR_MS],
    ['two whole hours with partial hours at both ends', HOUR_MARK_MS - 2 * HOUR_MS - 17 * MINUTE_MS - 13_000, HOUR_MARK_MS + 3 * MINUTE_MS + 2_500],
    ['exactly two whole hours', HOUR_MARK_MS - 2 * HOUR_MS, HOUR_MARK_MS],
    ['one whole hour and the minute its end falls in', HOUR_MARK_MS - HOUR_MS, HOUR_MARK_MS + 1],
    ['one whole hour from a start one millisecond before it', HOUR_MARK_MS - 2 * HOUR_MS - 1, HOUR_MARK_MS - HOUR_MS],
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
    for (const [fromMs, toMs] of [
      [END_MS - 2 * HOUR_MS, END_MS],
      [HOUR_MARK_MS - 2 * HOUR_MS - 17 * MINUTE_MS, HOUR_MARK_MS + 61_000],
    ] as const) {
      const rows = await queryServiceGraphByName(store, { fromMs, toMs, limit: 9 });
      expect(rows.map((r) => [r.src, r.dst, Number(r.requests)])).toEqual(expected(fromMs, toMs, 9).map((e) => [e.src_identity, e.dst_service, e.requests]));
    }
  });

  it('keeps in edge_hour the hourly sums of edge_minute', async () => {
    const sums = 'toString(sum(requests)), toString(sum(denies)), toString(sum(tls_failures)), toString(sum(plaintext)), toString(sum(bytes_out))';
    const minutes = await store.query(`SELECT toStartOfHour(minute) AS h, src_identity, dst_service, ${sums} FROM ${store.database}.edge_minute GROUP BY h, src_identity, dst_service ORDER BY ALL`);
    const hours = await store.query(`SELECT hour AS h, src_identity, dst_service, ${sums} FROM ${store.database}.${EDGE_HOUR_TABLE} GROUP BY h, src_identity, dst_service ORDER BY ALL`);
    expect(minutes.length).toBeGreaterThan(150);
    expect(hours).toEqual(minutes);
  });

});

describe('splitting a window into whole hours and minutes', () => {
  it('takes the hours whose every minute the window covers', () => {
    const h = Date.UTC(2026, 0, 5, 10);
    expect(splitWindowHours(h - 90_000, h + 2 * HOUR_MS + 1)).toEqual({ minuteFromMs: h - 2 * MINUTE_MS, minuteToMs: h + 2 * HOUR_MS + MINUTE_MS, hourFromMs: h, hourToMs: h + 2 * HOUR_MS });
    // The minute holding the start counts whole: a start a second into an hour still takes that hour.
    expect(splitWindowHours(h + 1000, h + HOUR_MS)).toMatchObject({ hourFromMs: h, hourToMs: h + HOUR_MS });
    // The minute holding the end counts: an end a millisecond into the last minute of an hour takes it.
    expect(splitWindowHours(h, h + HOUR_MS - MINUTE_MS + 1)).toMatchObject({ hourFromMs: h, hourToMs: h + HOUR_MS });
    expect(splitWindowHours(h, h + HOUR_MS - MINUTE_MS)).toMatchObject({ hourFromMs: h, hourToMs: h });
    expect(splitWindowHours(h + MINUTE_MS, h + 2 * HOUR_MS - 1)).toMatchObject({ hourFromMs: h + HOUR_MS, hourToMs: h + 2 * HOUR_MS });
  });
});

describe('service graph on a store migrated before the hour rollup', () => {
  let store: Store;
  const events = buildEvents(END_MS - 2 * HOUR_MS);
  const later = buildEvents(END_MS).slice(0, 300);
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    // As before migration 601: no hour rollup, its migration not recorded; the minutes are stored.
    await store.command(`DROP VIEW ${store.database}.${EDGE_HOUR_TABLE}_mv`);
    await store.command(`DROP TABLE ${store.database}.${EDGE_HOUR_TABLE}`);
    await store.command(`DELETE FROM ${store.database}.schema_migrations WHERE id = 601`);
    for (let i = 0; i < events.length; i += 200) await store.insertEvents(events.slice(i, i + 200), `before-${i}`);
    await store.migrate();
    // Migrating again (a restart) backfills nothing twice.
    await store.command(`DELETE FROM ${store.database}.schema_migrations WHERE id = 601`);
    await store.migrate();
    await store.insertEvents(later, 'after');
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('backfills the hours from edge_minute once and keeps feeding them', async () => {
    const all = [...events, ...later];
    const fromMs = Math.floor((END_MS - 5 * HOUR_MS) / HOUR_MS) * HOUR_MS - 7 * MINUTE_MS;
    const [hours] = await store.query<{ n: string }>(`SELECT toString(sum(requests)) AS n FROM ${store.database}.${EDGE_HOUR_TABLE}`);
    expect(Number(hours?.n)).toBe(all.length);
    for (const limit of [3, 5000]) expect(await queryServiceGraph(store, { fromMs, toMs: END_MS, limit })).toEqual(expected(fromMs, END_MS, limit, undefined, all));
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

  it('reads whole hours from edge_hour and partial hours from edge_minute', async () => {
    // A row only edge_hour holds (written there directly) shows in a window where its hour is
    // whole, not where that hour is partial.
    const hourMs = HOUR_MARK_MS - 5 * HOUR_MS;
    await store.insertRows(EDGE_HOUR_TABLE, [{ hour: hourMs / 1000, src_identity: 'only-hourly', src_namespace: 'ns', dst_service: 'svc-h', dst_namespace: 'ns', source: 'envoy', requests: 1_000_000 }]);
    const whole = await queryServiceGraph(store, { fromMs: hourMs - 30_000, toMs: hourMs + HOUR_MS, limit: 1 });
    expect(whole.map((e) => [e.src_identity, e.requests])).toEqual([['only-hourly', 1_000_000]]);
    const partial = await queryServiceGraph(store, { fromMs: hourMs + MINUTE_MS, toMs: hourMs + 2 * HOUR_MS, limit: 5000 });
    expect(partial.map((e) => e.src_identity)).not.toContain('only-hourly');
  });
});

describe('hour rollup retention', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 2 } }));
    const old = Date.now() - 5 * 86_400_000;
    await store.insertEvents(
      [old, Date.now() - 3_600_000].map((time) => ({ ...createEmptyEvent('envoy', time), event_id: randomUUID(), time, src_identity: 'a', dst_service: 'b' })),
      'retention',
    );
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('drops hours older than the events retention, as edge_minute does', async () => {
    // Expired rows go when a part is written or merged.
    for (const table of ['edge_minute', EDGE_HOUR_TABLE]) await store.command(`OPTIMIZE TABLE ${store.database}.${table} FINAL`);
    const times = async (table: string, column: string) => (await store.query<{ t: string }>(`SELECT toString(${column}) AS t FROM ${store.database}.${table} ORDER BY t`)).map((r) => r.t);
    const hour = new Date(Math.floor((Date.now() - 3_600_000) / HOUR_MS) * HOUR_MS).toISOString().slice(0, 19).replace('T', ' ');
    expect(await times(EDGE_HOUR_TABLE, 'hour')).toEqual([hour]);
    expect(await times('edge_minute', 'toStartOfHour(minute)')).toEqual([hour]);
    const report = await readRetention(store, createTestConfig({ clickhouse: { database: store.database, retentionDays: 2 } }));
    expect(report.find((r) => r.table === EDGE_HOUR_TABLE)).toMatchObject({ timeColumn: 'hour', configDays: 2, tableDays: 2 });
  });
});
