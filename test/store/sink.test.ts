import { describe, expect, it } from 'vitest';
import { createError } from '../../core/errors.ts';
import { UINT32_MAX, createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createMetrics } from '../../core/metrics.ts';
import type { Store } from '../../store/client.ts';
import { MIGRATIONS } from '../../store/schema.ts';
import { MAX_RETENTION_DAYS } from '../../core/config.ts';
import { drainThroughSink, toEventMessages } from '../helpers/sink.ts';
import { createTestConfig, createTestStore, dropTestStore, useTestStore } from '../helpers/store.ts';

// Recent event times: rows older than the retention TTL are dropped at insert.
const BASE_MS = Date.now() - 3_600_000;

function makeEvent(i: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `e${i}`,
    time: BASE_MS + i * 1000,
    src_identity: 'spiffe://cluster.local/ns/shop/sa/frontend',
    dst_service: 'payments',
    decision: i % 10 === 0 ? 'deny' : 'allow',
    mtls: 'yes',
    response_flags: i % 2 ? ['UF', 'URX'] : [],
    bytes_out: 100,
    raw: `line ${i}`,
    ...overrides,
  };
}

/** Small batches, flushed quickly, so a test's few events fill several. */
function createSinkTestConfig(): ReturnType<typeof createTestConfig> {
  return createTestConfig({ sink: { batchRows: 50, batchWaitMs: 20 } });
}

describe('sink', () => {
  const config = createSinkTestConfig();
  const db = useTestStore(config);

  it('stores every event field for field, fills the rollup, and dead-letters poison messages', async () => {
    const metrics = createMetrics();
    const events = Array.from({ length: 120 }, (_, i) => makeEvent(i));
    await drainThroughSink({ store: db.store, metrics, config }, [
      ...toEventMessages(events.slice(0, 60)),
      { key: 'x', value: '{"truncated":' },
      { key: 'x', value: JSON.stringify({ ...events[0], status: 'not a number' }) },
      ...toEventMessages(events.slice(60)),
    ]);

    const rows = await db.store.query<Record<string, unknown>>(
      `SELECT *, toUnixTimestamp64Milli(time) AS time_ms FROM ${db.store.database}.events ORDER BY time`,
    );
    expect(rows).toHaveLength(120);
    const first = rows[1] as Record<string, unknown>;
    expect(first.event_id).toBe('e1');
    expect(Number(first.time_ms)).toBe(events[1]?.time);
    expect(first.response_flags).toEqual(['UF', 'URX']);
    expect(first.src_identity).toBe('spiffe://cluster.local/ns/shop/sa/frontend');

    const [rollup] = await db.store.query<{ requests: string; denies: string }>(
      `SELECT sum(requests) AS requests, sum(denies) AS denies FROM ${db.store.database}.edge_minute WHERE dst_service = {svc:String}`,
      { svc: 'payments' },
    );
    expect(Number(rollup?.requests)).toBe(120);
    expect(Number(rollup?.denies)).toBe(12);

    const dead = await db.store.query<{ reason: string }>(`SELECT reason FROM ${db.store.database}.deadletters ORDER BY reason`);
    expect(dead.map((d) => d.reason)).toEqual(['sink_bad_event', 'sink_bad_json']);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/ztwatch_stage_sent_events_total\{stage="sink"\} 120/);
  });

  it('adds no rows when the same batch is inserted again with its dedup token', async () => {
    const batch = Array.from({ length: 10 }, (_, i) => makeEvent(1000 + i, { dst_service: 'ledger' }));
    await db.store.insertEvents(batch, 'events:0:1000-1009');
    await db.store.insertEvents(batch, 'events:0:1000-1009');
    const [row] = await db.store.query<{ n: string }>(`SELECT count() AS n FROM ${db.store.database}.events WHERE dst_service = 'ledger'`);
    expect(Number(row?.n)).toBe(10);
    const [roll] = await db.store.query<{ n: string }>(`SELECT sum(requests) AS n FROM ${db.store.database}.edge_minute WHERE dst_service = 'ledger'`);
    expect(Number(roll?.n)).toBe(10);
  });

  it('stores an insert without a token after one with a token (no leftover session token)', async () => {
    await db.store.insertEvents([makeEvent(2000, { dst_service: 'carry' })], 'token-a');
    await db.store.insertEvents([makeEvent(2001, { dst_service: 'carry' })]);
    const [row] = await db.store.query<{ n: string }>(`SELECT count() AS n FROM ${db.store.database}.events WHERE dst_service = 'carry'`);
    expect(Number(row?.n)).toBe(2);
  });

  it('repairs lone surrogates so one hostile record cannot block its batch', async () => {
    const hostile = { ...makeEvent(3000, { dst_service: 'surrogate' }), path: '/\ud800x' };
    // JSON.stringify writes the lone surrogate as a \ud800 escape: valid JSON that passes the
    // schema, but text ClickHouse refuses.
    const value = JSON.stringify(hostile);
    expect(JSON.parse(value).path).toBe('/\ud800x');
    await drainThroughSink({ store: db.store, metrics: createMetrics(), config }, [{ key: 'surrogate', value }, { key: 'surrogate', value: JSON.stringify(makeEvent(3001, { dst_service: 'surrogate' })) }]);
    const rows = await db.store.query<{ path: string }>(`SELECT path FROM ${db.store.database}.events WHERE dst_service = 'surrogate' ORDER BY time`);
    expect(rows).toHaveLength(2);
    expect(rows[0]?.path).toBe('/\ufffdx');
  });

  it('caps a duration or count beyond the UInt32 columns instead of storing it wrapped around', async () => {
    const huge = makeEvent(3100, { dst_service: 'huge', duration_ms: 5_000_000_000, count: 2 ** 33 });
    await drainThroughSink({ store: db.store, metrics: createMetrics(), config }, [{ key: 'huge', value: JSON.stringify(huge) }]);
    const rows = await db.store.query<{ duration_ms: number; count: number }>(`SELECT duration_ms, count FROM ${db.store.database}.events WHERE dst_service = 'huge'`);
    // Without the cap, ClickHouse stores 5e9 as 705032704 and 2^33 as 0.
    expect(rows.map((r) => [Number(r.duration_ms), Number(r.count)])).toEqual([[UINT32_MAX, UINT32_MAX]]);
  });

  it('checks an event carried in process as the object and stores its text as sent; a carried object that fails the check is dead-lettered', async () => {
    const metrics = createMetrics();
    const events = Array.from({ length: 5 }, (_, i) => makeEvent(3200 + i, { dst_service: 'carried', response_flags: ['UF'] }));
    // The text is a valid event; the object it travels with is not: the object is what counts.
    const broken = makeEvent(3300, { dst_service: 'carried' });
    await drainThroughSink({ store: db.store, metrics, config }, [
      ...events.map((e) => ({ key: e.dst_service, value: JSON.stringify(e), payload: e })),
      { key: 'carried', value: JSON.stringify(broken), payload: { ...broken, status: 'not a number' } },
    ]);
    const rows = await db.store.query<{ event_id: string; response_flags: string[]; raw: string }>(
      `SELECT event_id, response_flags, raw FROM ${db.store.database}.events WHERE dst_service = 'carried' ORDER BY time`,
    );
    expect(rows.map((r) => [r.event_id, r.response_flags, r.raw])).toEqual(events.map((e) => [e.event_id, ['UF'], e.raw]));
    const dead = await db.store.query<{ reason: string; raw: string }>(`SELECT reason, raw FROM ${db.store.database}.deadletters WHERE raw LIKE '%e3300%'`);
    expect(dead).toEqual([{ reason: 'sink_bad_event', raw: JSON.stringify(broken) }]);
    expect(await metrics.registry.metrics()).toMatch(/ztwatch_stage_sent_events_total\{stage="sink"\} 5/);
  });

  it('keeps years-old events under the longest retention (backtests of recorded files)', async () => {
    const old = createTestConfig({ clickhouse: { retentionDays: MAX_RETENTION_DAYS } });
    const oldStore = await createTestStore(old);
    try {
      await oldStore.insertEvents([makeEvent(0, { time: Date.UTC(2017, 0, 1), dst_service: 'archive' })]);
      const [row] = await oldStore.query<{ n: string }>(`SELECT count() AS n FROM ${oldStore.database}.events`);
      expect(Number(row?.n)).toBe(1);
    } finally {
      await dropTestStore(oldStore);
    }
  });

  it('is idempotent: migrating twice changes nothing', async () => {
    await db.store.migrate();
    const rows = await db.store.query<{ id: number }>(`SELECT id FROM ${db.store.database}.schema_migrations FINAL ORDER BY id`);
    expect(rows.map((r) => Number(r.id))).toEqual(MIGRATIONS.map((m) => m.id));
    expect(MIGRATIONS.length).toBeGreaterThanOrEqual(6);
  });
});

describe('sink telemetry', () => {
  const config = createSinkTestConfig();
  const db = useTestStore(config);

  it('counts received, sent, dropped{reason} and errors{code} on the sink stage', async () => {
    const metrics = createMetrics();
    // The first insert fails with a declared code, the second with an error that has none (counted
    // under ZTW_STORE_UNAVAILABLE); the third stores the batch.
    const failures: Error[] = [createError('STORE_QUERY_FAILED', 'rejected'), new Error('socket hang up')];
    const failing: Store = {
      ...db.store,
      insertEvents: async (...args) => {
        const failure = failures.shift();
        if (failure) throw failure;
        return db.store.insertEvents(...args);
      },
    };
    const events = Array.from({ length: 10 }, (_, i) => makeEvent(5000 + i, { dst_service: 'telemetry' }));
    await drainThroughSink(
      { store: failing, metrics, config },
      [...toEventMessages(events), { key: 'x', value: '{"truncated":' }, { key: 'x', value: JSON.stringify({ ...events[0], status: 'not a number' }) }],
      { retryBackoffMs: 10 },
    );

    const values = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values.filter((v) => v.labels.stage === 'sink') ?? [];
    // One batch of 12 messages, consumed three times (two failed inserts, then stored).
    expect((await values('ztwatch_stage_received_events_total')).map((v) => v.value)).toEqual([3 * 12]);
    expect((await values('ztwatch_stage_sent_events_total')).map((v) => v.value)).toEqual([10]);
    const dropped = Object.fromEntries((await values('ztwatch_stage_dropped_events_total')).map((v) => [v.labels.reason, v.value]));
    expect(dropped).toEqual({ sink_bad_json: 1, sink_bad_event: 1 });
    const errors = Object.fromEntries((await values('ztwatch_stage_errors_total')).map((v) => [v.labels.code, v.value]));
    expect(errors).toEqual({ ZTW_STORE_QUERY_FAILED: 1, ZTW_STORE_UNAVAILABLE: 1 });
    const [row] = await db.store.query<{ n: string }>(`SELECT count() AS n FROM ${db.store.database}.events WHERE dst_service = 'telemetry'`);
    expect(Number(row?.n)).toBe(10);
  });
});
