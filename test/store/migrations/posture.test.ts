// The flow_day rollup gives the same flows and mTLS counts as the aggregation of the raw events:
// over generated traffic of several days, windows with edges inside a day, filters and exclusions,
// and for a store migrated before the rollup existed (backfilled when the migration runs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../../core/event.ts';
import type { Store } from '../../../store/client.ts';
import { FLOW_DAY_TABLE } from '../../../store/migrations/posture.ts';
import { queryFlows, queryMtlsPosture, splitWindowDays, type FlowQuery, type FlowRow } from '../../../store/posture-queries.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../../helpers/store.ts';

const DAY_MS = 86_400_000;
/** Yesterday 19:00 UTC (and a bit): traffic runs over four days whose edges fall inside a day. */
const END_MS = Math.floor(Date.now() / DAY_MS) * DAY_MS - 5 * 3_600_000 + 123;
const START_MS = END_MS - 4 * DAY_MS;

/** Deterministic pseudo-random numbers (mulberry32). */
function createRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generateEvents(n: number, seed: number): NormalizedEvent[] {
  const random = createRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const events: NormalizedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const time = START_MS + Math.floor(random() * (END_MS - START_MS));
    const source = pick(['envoy', 'envoy', 'istio', 'hubble', 'opa'] as const);
    const s = Math.floor(random() * 6);
    const ipOnly = s === 5;
    events.push({
      ...createEmptyEvent(source, time),
      event_id: `e${seed}-${i}`,
      time,
      reporter: source === 'hubble' ? 'network' : pick(['inbound', 'outbound', 'gateway']),
      src_identity: ipOnly ? '' : `spiffe://cluster.local/ns/ns${s % 2}/sa/svc-${s}`,
      src_workload: ipOnly || random() < 0.2 ? '' : `svc-${s}`,
      src_namespace: ipOnly ? '' : `ns${s % 2}`,
      src_ip: `10.0.${s}.${Math.floor(random() * 3)}`,
      dst_service: random() < 0.05 ? '' : `svc-${Math.floor(random() * 4)}`,
      dst_namespace: 'ns0',
      dst_port: pick([8080, 9090]),
      method: source === 'hubble' ? '' : pick(['GET', 'POST']),
      route: source === 'hubble' ? '' : pick(['/a/{id}', '/b']),
      status: 200,
      decision: pick(['allow', 'allow', 'allow', 'deny', 'error']),
      mtls: pick(['yes', 'yes', 'no', 'unknown']),
      count: 1 + Math.floor(random() * 3),
    });
  }
  return events;
}

/** Flows in a stable order, for comparison. */
function sorted(rows: FlowRow[]): FlowRow[] {
  const key = (r: FlowRow) => [r.src_identity, r.src_ip, r.dst_service, r.dst_port, r.method, r.route, r.decision, r.observer, r.mtls].join('|');
  return [...rows].sort((a, b) => key(a).localeCompare(key(b)));
}

async function expectSameFlows(store: Store, q: FlowQuery): Promise<FlowRow[]> {
  const fromRollup = await queryFlows(store, q);
  const fromEvents = await queryFlows(store, { ...q, from: 'events' });
  expect(sorted(fromRollup)).toEqual(sorted(fromEvents));
  return fromRollup;
}

describe('flow_day rollup', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    // Two inserts: the rollup holds several parts for one day, as after batches from the sink.
    const events = generateEvents(6000, 1);
    await store.insertEvents(events.slice(0, 3000));
    await store.insertEvents(events.slice(3000));
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('splits a window into whole UTC days and edges', () => {
    const from = Date.UTC(2026, 0, 1, 10);
    expect(splitWindowDays(from, Date.UTC(2026, 0, 4, 5))).toMatchObject({ dayFrom: '2026-01-02', dayTo: '2026-01-04' });
    expect(splitWindowDays(Date.UTC(2026, 0, 2), Date.UTC(2026, 0, 4))).toMatchObject({ dayFrom: '2026-01-02', dayTo: '2026-01-04' });
    // Inside one day: no whole day.
    const inside = splitWindowDays(from, from + 3_600_000);
    expect(inside.dayFromMs).toBe(inside.dayToMs);
  });

  it('holds fewer rows than the events it summarizes', async () => {
    const [row] = await store.query<{ n: string | number; requests: string | number }>(`SELECT count() AS n, sum(requests) AS requests FROM ${store.database}.${FLOW_DAY_TABLE}`);
    const [events] = await store.query<{ n: string | number }>(
      `SELECT sum(count) AS n FROM ${store.database}.events WHERE dst_service != '' AND source IN ('envoy', 'istio', 'linkerd', 'hubble')`,
    );
    expect(Number(row?.requests)).toBe(Number(events?.n));
    expect(Number(row?.n)).toBeGreaterThan(0);
  });

  it('gives the same flows as the raw aggregation over windows with edges inside a day', async () => {
    const whole = await expectSameFlows(store, { fromMs: START_MS - 1, toMs: END_MS + 1 });
    expect(whole.length).toBeGreaterThan(50);
    expect(new Set(whole.map((f) => f.observer))).toEqual(new Set(['network', 'proxy']));
    expect(whole.some((f) => f.src_identity === '' && f.src_ip.startsWith('10.0.5.'))).toBe(true);
    await expectSameFlows(store, { fromMs: START_MS + 5 * 3_600_000 + 17, toMs: END_MS - DAY_MS - 3 * 3_600_000 });
    await expectSameFlows(store, { fromMs: START_MS + DAY_MS + 1000, toMs: START_MS + DAY_MS + 7_200_000 });
    await expectSameFlows(store, { fromMs: START_MS, toMs: END_MS, decision: 'allow' });
    await expectSameFlows(store, { fromMs: START_MS, toMs: END_MS, source: '10.0.5.1' });
    await expectSameFlows(store, { fromMs: START_MS, toMs: END_MS, source: 'spiffe://cluster.local/ns/ns1/sa/svc-1', limit: 5 });
  });

  it('applies exclusions to the millisecond, by identity and by IP', async () => {
    const exclude = [
      { src: 'spiffe://cluster.local/ns/ns0/sa/svc-0', dst: '', fromMs: START_MS + DAY_MS + 3_600_000, toMs: START_MS + 2 * DAY_MS + 60_000 },
      { src: '10.0.1.2', dst: 'svc-1', fromMs: START_MS + 2 * DAY_MS, toMs: END_MS },
      { src: '10.0.5.0', dst: '', fromMs: START_MS, toMs: END_MS },
    ];
    const all = await queryFlows(store, { fromMs: START_MS - 1, toMs: END_MS + 1, decision: 'allow' });
    const kept = await expectSameFlows(store, { fromMs: START_MS - 1, toMs: END_MS + 1, decision: 'allow', exclude });
    const total = (rows: FlowRow[]) => rows.reduce((n, r) => n + r.requests, 0);
    expect(total(kept)).toBeLessThan(total(all));
    expect(kept.some((f) => f.src_ip === '10.0.5.0' && f.src_identity === '')).toBe(false);
  });

  it('gives the same mTLS counts and plaintext senders as the raw events', async () => {
    const window = { fromMs: START_MS + 3 * 3_600_000, toMs: END_MS - 3_600_000 };
    const fromRollup = await queryMtlsPosture(store, window);
    expect(fromRollup.ports.length).toBeGreaterThan(0);
    expect(fromRollup).toEqual(await queryMtlsPosture(store, { ...window, from: 'events' }));
    expect(await queryMtlsPosture(store, { ...window, namespace: 'ns0' })).toEqual(await queryMtlsPosture(store, { ...window, namespace: 'ns0', from: 'events' }));
  });

  it('is backfilled from the stored events when a store migrated before it is migrated again, once', async () => {
    const window = { fromMs: START_MS - 1, toMs: END_MS + 1 };
    const before = await queryFlows(store, window);
    // The store as it was before the rollup's migration.
    await store.command(`DROP TABLE ${store.database}.${FLOW_DAY_TABLE}_mv`);
    await store.command(`DROP TABLE ${store.database}.${FLOW_DAY_TABLE}`);
    await store.command(`ALTER TABLE ${store.database}.schema_migrations DELETE WHERE id = 500 SETTINGS mutations_sync = 2`);
    await store.migrate();
    expect(sorted(await queryFlows(store, window))).toEqual(sorted(before));
    // A retried migration does not count the stored events twice; new events reach the rollup.
    await store.command(`ALTER TABLE ${store.database}.schema_migrations DELETE WHERE id = 500 SETTINGS mutations_sync = 2`);
    await store.migrate();
    await store.insertEvents(generateEvents(500, 2));
    const after = await expectSameFlows(store, window);
    expect(after.reduce((n, r) => n + r.requests, 0)).toBeGreaterThan(before.reduce((n, r) => n + r.requests, 0));
  });
});
