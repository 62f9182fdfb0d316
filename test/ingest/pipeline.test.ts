// The ingest path end to end on the embedded default: records → parsers → memory bus → sink →
// ClickHouse. Malformed input is counted and dead-lettered with its reason; the valid rest is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RETENTION_DAYS } from '../../core/config.ts';
import { createMetrics } from '../../core/metrics.ts';
import { createEmptyEvent } from '../../core/event.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { TOPICS } from '../../bus/port.ts';
import { createSink, type Sink } from '../../store/sink.ts';
import type { Store } from '../../store/client.ts';
import { createIngestor, type Ingestor } from '../../ingest/pipeline.ts';
import { splitRecords } from '../../ingest/records.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const config = createTestConfig({ clickhouse: { retentionDays: MAX_RETENTION_DAYS }, sink: { batchWaitMs: 10 } });

function envoyLine(i: number, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    start_time: new Date(Date.UTC(2026, 10, 1, 12, 0, i)).toISOString(),
    method: 'GET',
    path: `/api/orders/${1000 + i}`,
    protocol: 'HTTP/1.1',
    response_code: 200,
    response_flags: '-',
    bytes_received: 10,
    bytes_sent: 200,
    duration: 3,
    upstream_cluster: 'inbound|8080||orders.shop.svc.cluster.local',
    authority: 'orders.shop.svc.cluster.local:8080',
    downstream_peer_uri_san: 'spiffe://cluster.local/ns/shop/sa/frontend',
    request_id: `req-${i}`,
    ...overrides,
  });
}

describe('ingest pipeline', () => {
  let store: Store;
  let bus: MemoryBus;
  let sink: Sink;
  let ingestor: Ingestor;
  const metrics = createMetrics();

  beforeAll(async () => {
    store = await createTestStore(config);
    bus = new MemoryBus();
    sink = await createSink({ bus, store, metrics, config });
    ingestor = createIngestor({ bus, metrics });
  });
  afterAll(async () => {
    await sink.close();
    await bus.close();
    await dropTestStore(store);
  });

  it('stores the valid records and dead-letters each malformed one with its reason', async () => {
    const valid = Array.from({ length: 50 }, (_, i) => envoyLine(i));
    const body = [
      ...valid.slice(0, 20),
      '{"start_time": "2026-11-01T12:00:00Z", "method": "GET", "pa', // truncated JSON
      '\u0000\u0001\u0002\u00ff\u00fe binary \u0007',
      envoyLine(99, { start_time: 12345, response_code: 'two hundred', bytes_sent: { nested: true } }), // wrong types
      'x'.repeat(10 * 1024 * 1024), // a 10 MB line
      ...valid.slice(20),
    ].join('\n');
    const { records, rejected } = splitRecords(body, { maxLineBytes: config.ingest.maxLineBytes });
    const result = await ingestor.ingest('envoy', records, rejected);
    expect(result.accepted).toBe(50);
    expect(result.rejected).toBe(4);
    expect(result.errors.map((e) => e.reason)).toContain('record_too_long');
    await bus.whenIdle();

    const [stored] = await store.query<{ n: string; ids: string }>(`SELECT count() AS n, uniqExact(event_id) AS ids FROM ${store.database}.events`);
    expect(Number(stored?.n)).toBe(50);
    expect(Number(stored?.ids)).toBe(50);
    const row = (await store.query<Record<string, unknown>>(`SELECT * FROM ${store.database}.events WHERE request_id = 'req-7'`))[0];
    expect(row?.dst_service).toBe('orders');
    expect(row?.src_identity).toBe('spiffe://cluster.local/ns/shop/sa/frontend');
    expect(row?.route).toBe('/api/orders/{id}');
    expect(row?.raw).toBe(valid[7]);

    const dead = await store.query<{ reason: string; raw: string }>(`SELECT reason, raw FROM ${store.database}.deadletters ORDER BY reason`);
    expect(dead).toHaveLength(4);
    for (const d of dead) expect(d.reason).toMatch(/^[a-z0-9_]+$/);
    expect(dead.find((d) => d.reason === 'record_too_long')?.raw.length).toBeLessThan(10_000);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/ztwatch_deadletter_events_total\{source="envoy",reason="record_too_long"\} 1/);
  });

  it('auto-detects the format per record', async () => {
    const opa = JSON.stringify({
      decision_id: 'd-1',
      timestamp: '2026-11-01T12:00:00Z',
      path: 'envoy/authz/allow',
      result: false,
      input: { attributes: { request: { http: { method: 'POST', path: '/admin', host: 'admin.ops.svc.cluster.local', headers: { 'x-request-id': 'r-1' } } }, source: { principal: 'spiffe://cluster.local/ns/shop/sa/cart' } } },
    });
    const result = await ingestor.ingest('auto', [envoyLine(200), opa]);
    expect(result).toMatchObject({ accepted: 2, rejected: 0 });
  });

  it('counts expected non-events as skipped, without dead-lettering them', async () => {
    await bus.whenIdle();
    const before = await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.database}.deadletters`);
    const stage = JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: 'a-1', stage: 'RequestReceived', requestURI: '/api', verb: 'get', user: { username: 'alice' }, requestReceivedTimestamp: '2026-11-01T12:00:00.000000Z' });
    const result = await ingestor.ingest('k8s-audit', [stage]);
    expect(result).toMatchObject({ accepted: 0, rejected: 0, skipped: 1 });
    await bus.whenIdle();
    const after = await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.database}.deadletters`);
    expect(after[0]?.n).toBe(before[0]?.n);
  });

  it('refuses an unknown format with a coded error', () => {
    expect(() => ingestor.parse('nope', ['x'], 0)).toThrow(expect.objectContaining({ code: 'ZTW_INGEST_UNKNOWN_SOURCE' }));
  });
});

describe('events from the future', () => {
  const observed = Date.UTC(2026, 10, 1, 12, 0, 0);
  const at = (offsetMs: number) => envoyLine(0, { start_time: new Date(observed + offsetMs).toISOString() });

  it('dead-letters an event more than maxFutureMs ahead of its arrival, and keeps one within it', () => {
    const ingestor = createIngestor({ bus: new MemoryBus(), metrics: createMetrics(), maxFutureMs: 600_000 });
    const { events, deadLetters, errors } = ingestor.parse('envoy', [at(-3_600_000), at(599_000), at(601_000), at(1e12)], observed);
    expect(events.map((e) => e.time - observed)).toEqual([-3_600_000, 599_000]);
    expect(deadLetters.map((d) => d.reason)).toEqual(['time_in_future', 'time_in_future']);
    expect(deadLetters[0]?.raw).toBe(at(601_000));
    expect(errors).toEqual([
      { index: 2, reason: 'time_in_future' },
      { index: 3, reason: 'time_in_future' },
    ]);
  });

  it('refuses events built elsewhere (metric scrapes) the same way', async () => {
    const bus = new MemoryBus();
    const letters: string[] = [];
    const stored: string[] = [];
    const options = { group: 't', maxBatchMessages: 10, maxBatchWaitMs: 1 };
    await bus.subscribe(TOPICS.deadLetters, options, async (batch) => {
      for (const m of batch.messages) letters.push((JSON.parse(m.value) as { reason: string }).reason);
    });
    await bus.subscribe(TOPICS.events, options, async (batch) => {
      for (const m of batch.messages) stored.push((JSON.parse(m.value) as { raw: string }).raw);
    });
    const ingestor = createIngestor({ bus, metrics: createMetrics(), now: () => observed, maxFutureMs: 0 });
    const result = await ingestor.ingestEvents([
      { ...createEmptyEvent('istio', observed), time: observed, raw: 'now' },
      { ...createEmptyEvent('istio', observed), time: observed + 1, raw: 'ahead' },
    ]);
    await bus.whenIdle();
    await bus.close();
    expect([result.accepted, result.rejected]).toEqual([1, 1]);
    expect(letters).toEqual(['time_in_future']);
    expect(stored).toEqual(['now']);
  });
});

describe('events older than retention', () => {
  const observed = Date.UTC(2026, 10, 1, 12, 0, 0);
  const DAY_MS = 86_400_000;
  const at = (offsetMs: number) => envoyLine(0, { start_time: new Date(observed + offsetMs).toISOString() });

  it('dead-letters them as outside_retention and counts them, instead of acknowledging what the store would drop', async () => {
    const bus = new MemoryBus({ acknowledgeWhenHandled: true });
    const letters: Array<{ reason: string; raw: string }> = [];
    const stored: number[] = [];
    const options = { group: 't', maxBatchMessages: 10, maxBatchWaitMs: 1 };
    await bus.subscribe(TOPICS.deadLetters, options, async (batch) => {
      for (const m of batch.messages) letters.push(JSON.parse(m.value) as { reason: string; raw: string });
    });
    await bus.subscribe(TOPICS.events, options, async (batch) => {
      for (const m of batch.messages) stored.push((JSON.parse(m.value) as { time: number }).time - observed);
    });
    const metrics = createMetrics();
    const ingestor = createIngestor({ bus, metrics, now: () => observed, retentionMs: 30 * DAY_MS });
    const result = await ingestor.ingest('envoy', [at(-29 * DAY_MS), at(-31 * DAY_MS), at(-400 * DAY_MS)]);
    await bus.close();
    expect([result.accepted, result.rejected]).toEqual([1, 2]);
    expect(result.errors).toEqual([
      { index: 1, reason: 'outside_retention' },
      { index: 2, reason: 'outside_retention' },
    ]);
    expect(stored).toEqual([-29 * DAY_MS]);
    expect(letters.map((l) => [l.reason, l.raw])).toEqual([
      ['outside_retention', at(-31 * DAY_MS)],
      ['outside_retention', at(-400 * DAY_MS)],
    ]);
    const counted = (await metrics.registry.getSingleMetric('ztwatch_deadletter_events_total')?.get())?.values.find((v) => v.labels.reason === 'outside_retention');
    expect(counted?.value).toBe(2);
  });

  it('parses a large request in chunks and keeps every record', async () => {
    const bus = new MemoryBus();
    // Lines are a second apart from `observed` on: arrival after the last of them.
    const ingestor = createIngestor({ bus, metrics: createMetrics(), now: () => observed + 2 * 3_600_000 });
    const lines = Array.from({ length: 4500 }, (_, i) => envoyLine(i));
    const result = await ingestor.ingest('envoy', lines);
    await bus.close();
    expect(result.accepted).toBe(4500);
  });
});
