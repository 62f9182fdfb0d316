// The sink's exactly-once protocol (sink_state BEFORE/AFTER per topic partition) on the real
// ClickHouse engine: batches redelivered with other boundaries, crashes between the state write,
// the insert and the AFTER write, a range that must be waited for, and one that can only be
// checked row by row; then the state the sink keeps between batches (read once per assignment
// epoch, dropped on failure) and a partition moving between two sinks. Kafka itself is exercised
// in test/e2e/kafka-pipeline.test.ts and test/e2e/sink-rebalance.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createMetrics } from '../../core/metrics.ts';
import { hasCode } from '../../core/errors.ts';
import type { BusMessage, ConsumedBatch } from '../../bus/port.ts';
import type { Store } from '../../store/client.ts';
import { createSinkStateStore, decodeEventMessages, processBatch, type KnownSinkState, type RangeWriter, type SinkStateStore } from '../../store/sink.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const BASE_MS = Date.now() - 3_600_000;
const TOPIC = 'ztwatch.events.v1';

function makeEvent(i: number): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `ev-${i}`,
    time: BASE_MS + i * 10,
    src_identity: 'spiffe://cluster.local/ns/shop/sa/frontend',
    dst_service: `svc-${i % 5}`,
    decision: 'allow',
    raw: `line ${i}`,
  };
}

/** The partition's log: message at offset o is event o (offsets are dense from 0). */
const LOG: BusMessage[] = Array.from({ length: 2000 }, (_, i) => ({ key: `svc-${i % 5}`, value: JSON.stringify(makeEvent(i)) }));

function batchOf(partition: number, from: number, to: number, assignmentEpoch?: number): ConsumedBatch {
  const offsets = Array.from({ length: to - from + 1 }, (_, k) => from + k);
  return { topic: TOPIC, partition, offsets, messages: offsets.map((o) => LOG[o] as BusMessage), dedupToken: `${TOPIC}:${partition}:${from}-${to}`, assignmentEpoch };
}

describe('sink exactly-once protocol', () => {
  const config = createTestConfig();
  let store: Store;
  let state: SinkStateStore;
  const calls: Array<{ token: string; rows: number }> = [];
  const metrics = createMetrics();
  const stage = metrics.stage('sink');

  /** The sink's event writer in miniature: insert with the token, note the call (afterInsert's view). */
  const write: RangeWriter = async (messages, token, mode) => {
    let { events } = decodeEventMessages({ topic: TOPIC, messages, dedupToken: token }, Date.now());
    if (mode === 'check') {
      const ids = events.map((e) => e.event_id);
      const stored = new Set((await store.query<{ event_id: string }>(`SELECT event_id FROM ${store.database}.events WHERE event_id IN {ids:Array(String)}`, { ids })).map((r) => r.event_id));
      events = events.filter((e) => !stored.has(e.event_id));
    }
    await store.insertEvents(events, token);
    calls.push({ token, rows: events.length });
  };
  /** A writer whose process "dies" right after its insert landed: the AFTER write never happens. */
  const crashAfterInsert: RangeWriter = async (messages, token, mode) => {
    await write(messages, token, mode);
    throw new Error('crash after insert');
  };
  const crashBeforeInsert: RangeWriter = async () => {
    throw new Error('crash before insert');
  };

  const options = (w: RangeWriter, maxBatchMessages = 1000) => ({ state, write: w, stage, maxBatchMessages, recoveryWaits: new Map<string, number>() });

  async function counts(partitionFrom: number, partitionTo: number): Promise<{ rows: number; unique: number }> {
    const [row] = await store.query<{ rows: string; unique: string }>(
      `SELECT count() AS rows, uniqExact(event_id) AS unique FROM ${store.database}.events WHERE toUInt32(substring(event_id, 4)) BETWEEN {a:UInt32} AND {b:UInt32}`,
      { a: partitionFrom, b: partitionTo },
    );
    return { rows: Number(row?.rows), unique: Number(row?.unique) };
  }

  /** Reads of sink_state, counted around the real store's query call. */
  let stateReads = 0;
  /** State store of a sink that keeps what it knows across batches (createSink's wiring). */
  let countedState: SinkStateStore;
  const cached = (w: RangeWriter, known: Map<string, KnownSinkState>) => ({ ...options(w), state: countedState, known });

  beforeAll(async () => {
    store = await createTestStore(config);
    state = createSinkStateStore(store, config);
    const counted: Store = {
      ...store,
      query: (sql, params) => {
        if (sql.includes('.sink_state')) stateReads++;
        return store.query(sql, params);
      },
    };
    countedState = createSinkStateStore(counted, config);
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('records BEFORE then AFTER and skips offsets already stored when batches come back with other boundaries', async () => {
    await processBatch(batchOf(0, 0, 99), options(write));
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 0, maxOffset: 99, phase: 'AFTER' });
    // Redelivery after a restart, cut differently: only 100–149 are new.
    await processBatch(batchOf(0, 50, 149), options(write));
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 100, maxOffset: 149, phase: 'AFTER' });
    await processBatch(batchOf(0, 120, 149), options(write));
    expect(await counts(0, 149)).toEqual({ rows: 150, unique: 150 });
    expect(calls.at(-1)).toEqual({ token: `${TOPIC}:0:100-149`, rows: 50 });
    // 50 of the second batch and all 30 of the third were already stored.
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_stage_dropped_events_total')).toContain('reason="sink_already_stored"} 80');
  });

  it('re-forms a BEFORE range exactly after a crash whose insert landed: ClickHouse drops the repeat', async () => {
    await expect(processBatch(batchOf(0, 150, 199), options(crashAfterInsert))).rejects.toThrow('crash after insert');
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 150, maxOffset: 199, phase: 'BEFORE' });
    calls.length = 0;
    // After the restart the bus hands a longer batch from the same offset.
    await processBatch(batchOf(0, 150, 260), options(write));
    expect(calls).toEqual([
      { token: `${TOPIC}:0:150-199`, rows: 50 },
      { token: `${TOPIC}:0:200-260`, rows: 61 },
    ]);
    expect(await counts(0, 260)).toEqual({ rows: 261, unique: 261 });
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 200, maxOffset: 260, phase: 'AFTER' });
  });

  it('re-forms a BEFORE range whose insert never landed, and stores it once', async () => {
    await expect(processBatch(batchOf(0, 261, 300), options(crashBeforeInsert))).rejects.toThrow('crash before insert');
    await processBatch(batchOf(0, 261, 320), options(write));
    expect(await counts(0, 320)).toEqual({ rows: 321, unique: 321 });
  });

  it('waits (retryable rejection) for the rest of a BEFORE range instead of inserting part of it', async () => {
    await expect(processBatch(batchOf(0, 321, 400), options(crashAfterInsert))).rejects.toThrow('crash after insert');
    const opts = options(write);
    const err = await processBatch(batchOf(0, 321, 350), opts).catch((e: unknown) => e);
    expect(hasCode(err, 'ZTW_STORE_UNAVAILABLE') && (err as { retryable: boolean }).retryable).toBe(true);
    expect(await counts(321, 400)).toEqual({ rows: 80, unique: 80 });
    // The redelivery from the same offset carries the whole range and more.
    await processBatch(batchOf(0, 321, 450), opts);
    expect(await counts(0, 450)).toEqual({ rows: 451, unique: 451 });
  });

  it('checks rows one by one when the range can no longer be re-formed (smaller batches now)', async () => {
    // Landed under the token of 451–550, then the sink restarts with batches of 40.
    await expect(processBatch(batchOf(0, 451, 550), options(crashAfterInsert))).rejects.toThrow('crash after insert');
    await processBatch(batchOf(0, 451, 490), options(write, 40));
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 491, maxOffset: 550, phase: 'CHECK' });
    await processBatch(batchOf(0, 491, 530), options(write, 40));
    await processBatch(batchOf(0, 531, 570), options(write, 40));
    expect(await counts(0, 570)).toEqual({ rows: 571, unique: 571 });
    expect(await state.read(TOPIC, 0)).toMatchObject({ minOffset: 551, maxOffset: 570, phase: 'AFTER' });
  });

  it('keeps partitions apart, and starts over when offsets fall below the recorded range (topic recreated)', async () => {
    await processBatch(batchOf(1, 1000, 1099), options(write));
    expect(await state.read(TOPIC, 1)).toMatchObject({ minOffset: 1000, maxOffset: 1099, phase: 'AFTER' });
    expect(await state.read(TOPIC, 0)).toMatchObject({ maxOffset: 570 });
    await processBatch(batchOf(1, 1100, 1199), options(write));
    // Events 0–9 again but on a fresh log of partition 1: stored again is the right call for a new
    // topic, so use offsets whose events are new here.
    const fresh: ConsumedBatch = { ...batchOf(1, 1200, 1209), offsets: Array.from({ length: 10 }, (_, k) => k) };
    await processBatch(fresh, options(write));
    expect(await state.read(TOPIC, 1)).toMatchObject({ minOffset: 0, maxOffset: 9, phase: 'AFTER' });
    expect(await counts(1000, 1209)).toEqual({ rows: 210, unique: 210 });
  });

  it('reads sink_state once per partition and assignment epoch, not per batch, and again after a failed batch', async () => {
    const known = new Map<string, KnownSinkState>();
    stateReads = 0;
    await processBatch(batchOf(2, 600, 649, 7), cached(write, known));
    await processBatch(batchOf(2, 650, 699, 7), cached(write, known));
    await processBatch(batchOf(2, 700, 749, 7), cached(write, known));
    expect(stateReads).toBe(1);
    // What it kept is what ClickHouse holds.
    expect(known.get(`${TOPIC}:2`)?.state).toEqual(await state.read(TOPIC, 2));
    // Another partition, and a new epoch on this one, are read once each.
    await processBatch(batchOf(3, 750, 759, 7), cached(write, known));
    await processBatch(batchOf(2, 760, 799, 8), cached(write, known));
    await processBatch(batchOf(2, 800, 809, 8), cached(write, known));
    expect(stateReads).toBe(3);
    // An insert that landed but whose batch failed: the same epoch reads again and re-forms the range.
    await expect(processBatch(batchOf(2, 810, 849, 8), cached(crashAfterInsert, known))).rejects.toThrow('crash after insert');
    expect(known.has(`${TOPIC}:2`)).toBe(false);
    calls.length = 0;
    await processBatch(batchOf(2, 810, 899, 8), cached(write, known));
    expect(stateReads).toBe(4);
    expect(calls).toEqual([
      { token: `${TOPIC}:2:810-849`, rows: 40 },
      { token: `${TOPIC}:2:850-899`, rows: 50 },
    ]);
    // A batch without an epoch (a bus that cannot vouch for it) always reads.
    await processBatch(batchOf(2, 900, 909), cached(write, known));
    await processBatch(batchOf(2, 910, 919), cached(write, known));
    expect(stateReads).toBe(6);
    expect(await counts(600, 919)).toEqual({ rows: 320, unique: 320 });
  });

  it('a partition that moved to another sink and back is read again: every row stored once', async () => {
    const a = new Map<string, KnownSinkState>();
    const b = new Map<string, KnownSinkState>();
    // Sink A holds partition 4 (epoch 20) and stores 1210–1239.
    await processBatch(batchOf(4, 1210, 1239, 20), cached(write, a));
    // The partition moves to sink B, which stores one batch whose commit is lost, then "dies"
    // after inserting the next one (state BEFORE, rows landed, nothing committed).
    await processBatch(batchOf(4, 1240, 1249, 30), cached(write, b));
    await expect(processBatch(batchOf(4, 1250, 1269, 30), cached(crashAfterInsert, b))).rejects.toThrow('crash after insert');
    // Back to A, from the last committed offset, with a new epoch and longer batches.
    stateReads = 0;
    await processBatch(batchOf(4, 1240, 1299, 21), cached(write, a));
    expect(await counts(1210, 1299)).toEqual({ rows: 90, unique: 90 });
    expect(stateReads).toBe(1);
    expect(await state.read(TOPIC, 4)).toMatchObject({ minOffset: 1270, maxOffset: 1299, phase: 'AFTER' });
  });

  it('(control) the same moves with A trusting its old epoch store rows twice: the epoch is what prevents it', async () => {
    const a = new Map<string, KnownSinkState>();
    const b = new Map<string, KnownSinkState>();
    await processBatch(batchOf(5, 1600, 1629, 40), cached(write, a));
    await expect(processBatch(batchOf(5, 1630, 1649, 50), cached(crashAfterInsert, b))).rejects.toThrow('crash after insert');
    await processBatch(batchOf(5, 1630, 1699, 40), cached(write, a));
    expect(await counts(1600, 1699)).toEqual({ rows: 120, unique: 100 });
  });

  it('without partition information (memory bus) inserts with the batch token, and a repeat adds nothing', async () => {
    const batch: ConsumedBatch = { topic: TOPIC, messages: LOG.slice(1500, 1510), dedupToken: 'memory:ztwatch.events.v1:g:1500-1509' };
    await processBatch(batch, options(write));
    await processBatch(batch, options(write));
    expect(await counts(1500, 1509)).toEqual({ rows: 10, unique: 10 });
  });
});
