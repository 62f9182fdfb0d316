// The event insert path on the real embedded engine: one serialized body per batch, parsed by the
// engine in parallel from a file ('file', the embedded default) or sent as the payload of an
// INSERT ('stream', what a ClickHouse server receives). Either way, a batch large enough to be
// parsed in several chunks must be one exactly-once unit under its dedup token, and rows given as
// JSON text must store the same values as rows serialized by the store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, EVENT_FIELDS, type NormalizedEvent } from '../../core/event.ts';
import { createStore, serializeEventRows, type Store } from '../../store/client.ts';
import { createTestConfig, dropTestStore } from '../helpers/store.ts';

const BASE_MS = Date.now() - 3_600_000;

function makeEvent(i: number, rawChars: number): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `ev-${i}`,
    time: BASE_MS + i,
    src_identity: `spiffe://cluster.local/ns/shop/sa/client-${i % 7}`,
    dst_service: `svc-${i % 5}`,
    decision: i % 3 === 0 ? 'deny' : 'allow',
    response_flags: i % 2 === 0 ? ['UAEX', 'RBAC'] : [],
    bytes_out: 2 ** 40 + i,
    path: `/items/${i}?q="quoted"\\back\u2028sep\u0000nul😀`,
    raw: `${'x'.repeat(rawChars)} ${i}`,
  };
}

async function count(store: Store): Promise<number> {
  const [row] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.database}.events`);
  return Number(row?.n);
}

describe.each(['file', 'stream'] as const)('store.insertEvents (%s)', (eventTransport) => {
  let store: Store;
  beforeAll(async () => {
    store = createStore(createTestConfig(), { eventTransport });
    await store.migrate();
  }, 60_000);
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('stores a multi-chunk batch once when it is inserted again with the same token, and no more when inserted without one', async () => {
    // ~24 MB: above the engine's 10 MiB parallel-parsing chunk, so the body is parsed in pieces.
    const events = Array.from({ length: 6000 }, (_, i) => makeEvent(i, 4000));
    expect(serializeEventRows(events).length).toBeGreaterThan(20 * 2 ** 20);
    await store.insertEvents(events, `client-test:big:${eventTransport}`);
    await store.insertEvents(events, `client-test:big:${eventTransport}`);
    expect(await count(store)).toBe(events.length);
    const [sums] = await store.query<{ ids: string; bytes: string }>(
      `SELECT toString(uniqExact(event_id)) AS ids, toString(sum(bytes_out)) AS bytes FROM ${store.database}.events`,
    );
    expect(Number(sums?.ids)).toBe(events.length);
    expect(BigInt(sums?.bytes ?? '0')).toBe(events.reduce((n, e) => n + BigInt(e.bytes_out), 0n));
    // Without a token nothing is deduplicated: the session must not keep the previous token.
    await store.insertEvents(events.slice(0, 10));
    expect(await count(store)).toBe(events.length + 10);
  }, 120_000);

  it('stores rows given as JSON text with the same values as rows it serializes itself', async () => {
    const events = Array.from({ length: 50 }, (_, i) => makeEvent(100_000 + i, 10));
    const given = events.map((e, i) => (i % 2 === 0 ? JSON.stringify(e) : undefined));
    await store.insertEvents(events, `client-test:json:${eventTransport}`, given);
    const columns = EVENT_FIELDS.map((f) => (f === 'time' || f === 'observed_time' ? `toUnixTimestamp64Milli(${f}) AS ${f}` : f)).join(', ');
    const rows = await store.query<Record<string, unknown>>(
      `SELECT ${columns} FROM ${store.database}.events WHERE event_id IN {ids:Array(String)} ORDER BY time`,
      { ids: events.map((e) => e.event_id) },
    );
    expect(rows).toHaveLength(events.length);
    rows.forEach((row, i) => {
      const event = events[i] as NormalizedEvent;
      for (const f of EVENT_FIELDS) expect(String(row[f]), `${event.event_id}.${f}`).toBe(String(event[f]));
    });
  }, 60_000);
});
