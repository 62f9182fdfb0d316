// The sink: consumes normalized events (and dead letters) from the bus and writes them to
// ClickHouse in batches bounded by rows and by time. A batch is acknowledged to the bus only after
// ClickHouse accepted it.
//
// Exactly-once effect. A redelivered batch with the same dedup token adds no rows
// (insert_deduplication_token). But after a crash or a rebalance, Kafka hands batches with other
// boundaries than before, so the token alone is not enough. For batches that carry their partition
// and offsets, the sink keeps the protocol of ClickHouse's Kafka Connect sink: per (topic,
// partition), `sink_state` holds the offset range and phase of the batch being stored. Before an
// insert: BEFORE [min,max]; insert with the token of exactly that range; then AFTER [min,max]; then
// the bus commits. On every batch the state is read first: offsets ≤ AFTER.max are already stored
// and skipped; a BEFORE range is re-formed exactly and inserted again with the same token (dropped
// by ClickHouse if it had landed) before anything newer.
//
// The state is read only when the sink cannot know it: it keeps, per (topic, partition), the state
// it last read or wrote, with the batch's assignment epoch (ConsumedBatch.assignmentEpoch), and a
// batch of the same epoch starts from it. The entry is taken out when a batch starts and put back
// only when the batch is stored, so a failure or an uncertain outcome (an insert or state write
// that may or may not have landed) leaves nothing cached; a new epoch (a rebalance, rejoin, failed
// commit or heartbeat: another sink may have written the partition meanwhile) and a new process
// find nothing cached either. The next batch then reads `sink_state` again.
import type { ClickHouseSettings } from '@clickhouse/client';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FrozenConfig } from '../core/config.ts';
import { codeOf, createError } from '../core/errors.ts';
import { DeadLetterSchema, NormalizedEventSchema, repairEvent, UINT32_MAX, type DeadLetter, type NormalizedEvent } from '../core/event.ts';
import type { Metrics, StageMetrics } from '../core/metrics.ts';
import { TOPICS, type Bus, type BusMessage, type ConsumedBatch, type Subscription } from '../bus/port.ts';
import type { Store } from './client.ts';
import { encodeEventRows, hasEventFieldOrder, type EncodedEventRows } from './insert-rows.ts';

const checkEvent = TypeCompiler.Compile(NormalizedEventSchema);
const checkDeadLetter = TypeCompiler.Compile(DeadLetterSchema);

/** Longest raw text kept from a poison message, in characters. */
const POISON_RAW_CHARS = 65_536;
/** Redeliveries a BEFORE range may wait for its missing tail before rows are checked one by one. */
const MAX_RECOVERY_WAITS = 5;

export interface SinkOptions {
  readonly bus: Bus;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly config: FrozenConfig;
  /**
   * Runs after a batch's events are stored and before it is acknowledged (e.g. the
   * tamper-evidence chain). A rejection makes the bus redeliver the batch. Called once per stored
   * batch; after a crash mid-batch, the re-formed batch is passed again with the same token.
   * `rows` is the batch exactly as inserted (row i is the canonical text of events[i]).
   */
  readonly afterInsert?: (events: readonly NormalizedEvent[], dedupToken: string, rows: EncodedEventRows) => Promise<void>;
  /**
   * Runs while a batch of events is being inserted, with the rows being inserted: work that need
   * not wait for the insert (hashing the batch for the chain). A rejection fails the batch.
   */
  readonly whileInserting?: (events: readonly NormalizedEvent[], rows: EncodedEventRows) => Promise<void>;
  /** Called after each stored batch with the newest event time in it (ms). */
  readonly onStored?: (count: number, maxEventTimeMs: number) => void;
}

export interface Sink {
  /** Stops consuming after the batch in hand is stored and acknowledged. */
  close(): Promise<void>;
}

/**
 * True when a message's text holds nothing `repairEvent` would change: repairs only replace lone
 * surrogates (which JSON.stringify escapes as \udXXX) and cap UInt32 counters.
 */
function storableAsSent(text: string, event: NormalizedEvent): boolean {
  return event.duration_ms < UINT32_MAX && event.count < UINT32_MAX && !(text.includes('\\u') && /\\u[dD][89a-fA-F]/.test(text));
}

/**
 * Splits bus messages into valid events and dead letters (poison messages never block the topic).
 * `json[i]`, when given, is the canonical row text of `events[i]` (store/insert-rows.ts), stored
 * and hashed as it is; otherwise the row is serialized again. A message that carries its event
 * (`payload`, in-process delivery) is checked as the object, not parsed from its text; that text is
 * JSON.stringify of the repaired event, canonical when the event's keys are in schema order. A
 * message from outside the process (Kafka) is serialized again: its writer may have used other
 * whitespace, escapes or number forms, or sent text that repairEvent changed.
 */
export function decodeEventMessages(batch: ConsumedBatch, nowMs: number): { events: NormalizedEvent[]; poison: DeadLetter[]; json: Array<string | undefined> } {
  const events: NormalizedEvent[] = [];
  const poison: DeadLetter[] = [];
  const json: Array<string | undefined> = [];
  for (const message of batch.messages) {
    const carried = message.payload !== undefined;
    let value: unknown = message.payload;
    if (!carried) {
      try {
        value = JSON.parse(message.value);
      } catch {
        poison.push({ observed_time: nowMs, source: 'bus', reason: 'sink_bad_json', raw: message.value.slice(0, POISON_RAW_CHARS) });
        continue;
      }
    }
    if (checkEvent.Check(value)) {
      // A carried event was repaired before its text was written: when the text shows nothing
      // left to repair, it is stored and hashed as it is, without walking every field again.
      if (carried && hasEventFieldOrder(value) && storableAsSent(message.value, value)) {
        events.push(value);
        json.push(message.value);
        continue;
      }
      events.push(repairEvent(value));
      json.push(undefined);
    } else poison.push({ observed_time: nowMs, source: 'bus', reason: 'sink_bad_event', raw: message.value.slice(0, POISON_RAW_CHARS) });
  }
  return { events, poison, json };
}

/** Phase of the range recorded in `sink_state`. */
export type SinkPhase = 'BEFORE' | 'AFTER' | 'CHECK';

export interface SinkStateRecord {
  readonly minOffset: number;
  readonly maxOffset: number;
  readonly phase: SinkPhase;
  readonly version: bigint;
}

/** What the sink last read or wrote in `sink_state` for one topic partition, and the assignment epoch it holds for. */
export interface KnownSinkState {
  readonly epoch: number;
  readonly state: SinkStateRecord | undefined;
}

/** Reads and writes `sink_state` rows (one live row per topic partition, highest version wins). */
export interface SinkStateStore {
  read(topic: string, partition: number): Promise<SinkStateRecord | undefined>;
  write(topic: string, partition: number, minOffset: number, maxOffset: number, phase: SinkPhase, after: SinkStateRecord | undefined): Promise<SinkStateRecord>;
}

/** The `sink_state` table of `store`. */
export function createSinkStateStore(store: Store, config: FrozenConfig): SinkStateStore {
  // On a cluster the write must reach its shard before the insert it announces.
  const settings: ClickHouseSettings = config.clickhouse.cluster ? { insert_distributed_sync: 1 } : {};
  return {
    async read(topic, partition) {
      const [row] = await store.query<{ min_offset: string; max_offset: string; phase: string; version: string }>(
        `SELECT min_offset, max_offset, phase, version FROM ${store.database}.sink_state FINAL WHERE topic = {topic:String} AND partition = {partition:UInt32}`,
        { topic, partition },
      );
      if (!row) return undefined;
      const phase = row.phase === 'BEFORE' || row.phase === 'AFTER' || row.phase === 'CHECK' ? row.phase : 'CHECK';
      return { minOffset: Number(row.min_offset), maxOffset: Number(row.max_offset), phase, version: BigInt(row.version) };
    },
    async write(topic, partition, minOffset, maxOffset, phase, after) {
      // Above both the version read and the clock, so the newest write wins even across owners.
      const clock = BigInt(Date.now()) * 1000n;
      const version = after && after.version >= clock ? after.version + 1n : clock;
      await store.insertRows(
        'sink_state',
        [{ topic, partition, min_offset: minOffset, max_offset: maxOffset, phase, updated_at: Date.now(), version: version.toString() }],
        settings,
      );
      return { minOffset, maxOffset, phase, version };
    },
  };
}

/**
 * Stores `messages` under `token`. In 'check' mode some of them may already be stored under
 * another token; the writer stores only those it cannot find.
 */
export type RangeWriter = (messages: readonly BusMessage[], token: string, mode: 'insert' | 'check') => Promise<void>;

export interface ProcessBatchOptions {
  readonly state: SinkStateStore;
  readonly write: RangeWriter;
  readonly stage: StageMetrics;
  readonly maxBatchMessages: number;
  /** Per topic-partition count of redeliveries spent waiting for a BEFORE range (kept by the caller). */
  readonly recoveryWaits: Map<string, number>;
  /**
   * Per topic-partition state last read or written, kept by the caller across batches; without it
   * (or for a batch without an assignment epoch) every batch reads `sink_state`.
   */
  readonly known?: Map<string, KnownSinkState>;
}

/** Stores one consumed batch under the sink_state protocol (see the file header). */
export async function processBatch(batch: ConsumedBatch, options: ProcessBatchOptions): Promise<void> {
  const { partition, offsets } = batch;
  if (partition === undefined || offsets === undefined || offsets.length !== batch.messages.length || offsets.length === 0) {
    // No partition: the in-memory bus, whose redelivery is always the same batch with the same token.
    await options.write(batch.messages, batch.dedupToken, 'insert');
    return;
  }
  const { topic } = batch;
  const key = `${topic}:${partition}`;
  const token = (min: number, max: number) => `${topic}:${partition}:${min}-${max}`;
  const pick = (from: number, to: number) => {
    const picked: BusMessage[] = [];
    for (let i = 0; i < offsets.length; i++) if ((offsets[i] as number) >= from && (offsets[i] as number) <= to) picked.push(batch.messages[i] as BusMessage);
    return picked;
  };
  const last = offsets[offsets.length - 1] as number;
  const epoch = batch.assignmentEpoch;
  const known = options.known?.get(key);
  // Out until this batch is stored: if anything below fails, the next batch reads the state.
  options.known?.delete(key);
  let state = known !== undefined && epoch !== undefined && known.epoch === epoch ? known.state : await options.state.read(topic, partition);
  // Offsets entirely below the recorded range: the topic was recreated or its offsets reset.
  if (state && last < state.minOffset) state = undefined;
  let from = offsets[0] as number;
  // Offsets the state shows as stored before this batch: the AFTER range and below, or below a BEFORE/CHECK range.
  const storedBelow = state ? (state.phase === 'AFTER' ? state.maxOffset + 1 : state.minOffset) : -Infinity;
  const skipped = offsets.filter((o) => o < storedBelow).length;
  if (skipped > 0) options.stage.dropped('sink_already_stored', skipped);

  if (state && state.phase === 'AFTER') {
    from = Math.max(from, state.maxOffset + 1);
  } else if (state) {
    const { minOffset: min, maxOffset: max } = state;
    // Below min is stored (the AFTER before this range); the range itself is handled here.
    from = Math.max(from, max + 1);
    const inRange = offsets.filter((o) => o >= min && o <= max);
    if (inRange.length > 0) {
      const first = inRange[0] as number;
      const lastInRange = inRange[inRange.length - 1] as number;
      // Complete when the range's last offset is here, or anything after it (a gap closed the range).
      const complete = lastInRange === max || last > max;
      const waits = options.recoveryWaits.get(key) ?? 0;
      if (state.phase === 'BEFORE' && first === min && complete) {
        await options.write(pick(min, max), token(min, max), 'insert');
        state = await options.state.write(topic, partition, min, max, 'AFTER', state);
      } else if (state.phase === 'BEFORE' && first === min && batch.messages.length < options.maxBatchMessages && waits < MAX_RECOVERY_WAITS) {
        // The range's tail is not in this batch; the redelivery (same first offset) will carry more.
        options.recoveryWaits.set(key, waits + 1);
        throw createError('STORE_UNAVAILABLE', `sink recovery of ${token(min, max)} waits for the rest of its range`);
      } else {
        // The exact range cannot be re-formed (batches are shorter now, or its head left the log):
        // store what is missing, row by row, and keep checking the rest of the range.
        await options.write(pick(first, lastInRange), `${token(min, max)}:check:${first}-${lastInRange}`, 'check');
        state = complete
          ? await options.state.write(topic, partition, min, max, 'AFTER', state)
          : await options.state.write(topic, partition, lastInRange + 1, max, 'CHECK', state);
      }
      options.recoveryWaits.delete(key);
    }
  }

  const rest = offsets.filter((o) => o >= from);
  if (rest.length > 0) {
    const restMin = rest[0] as number;
    state = await options.state.write(topic, partition, restMin, last, 'BEFORE', state);
    await options.write(pick(restMin, last), token(restMin, last), 'insert');
    state = await options.state.write(topic, partition, restMin, last, 'AFTER', state);
  }
  // Stored: `state` is the partition's row in sink_state now.
  if (epoch !== undefined) options.known?.set(key, { epoch, state });
}

/** Starts consuming the events and dead-letter topics into the store. */
export async function createSink(options: SinkOptions): Promise<Sink> {
  const { bus, store, metrics, config } = options;
  const stage = metrics.stage('sink');
  const subscribeOptions = { group: config.kafka.sinkGroup, maxBatchMessages: config.sink.batchRows, maxBatchWaitMs: config.sink.batchWaitMs };
  const state = createSinkStateStore(store, config);
  const recoveryWaits = new Map<string, number>();
  // Starts empty: the first batch of every partition reads sink_state.
  const known = new Map<string, KnownSinkState>();

  const writeEvents: RangeWriter = async (messages, token, mode) => {
    const started = performance.now();
    const { events: decoded, poison, json: decodedJson } = decodeEventMessages({ topic: TOPICS.events, messages, dedupToken: token }, Date.now());
    let rows = decoded;
    let json = decodedJson;
    try {
      if (mode === 'check' && rows.length > 0) {
        const stored = await findStoredEventIds(store, rows);
        json = json.filter((_, i) => !stored.has((rows[i] as NormalizedEvent).event_id));
        rows = rows.filter((e) => !stored.has(e.event_id));
      }
      // Encoded once: the engine reads these bytes and the hash chain hashes them, while the
      // engine inserts them (the insert runs on the engine's threads).
      const encoded = encodeEventRows(rows, json);
      const [inserted, prepared] = await Promise.allSettled([
        store.insertEvents(rows, token, encoded),
        options.whileInserting && rows.length > 0 ? options.whileInserting(rows, encoded) : undefined,
      ]);
      if (inserted.status === 'rejected') throw inserted.reason;
      if (prepared.status === 'rejected') throw prepared.reason;
      if (poison.length > 0) await store.insertDeadLetters(poison, `${token}:poison`);
      if (options.afterInsert && rows.length > 0) await options.afterInsert(rows, token, encoded);
    } catch (err) {
      stage.error(codeOf(err, 'ZTW_STORE_UNAVAILABLE'));
      throw err;
    }
    for (const p of poison) {
      stage.dropped(p.reason);
      metrics.deadLetters.inc({ source: p.source, reason: p.reason });
    }
    stage.sent(rows.length);
    metrics.batchLatency.observe({ stage: 'sink' }, (performance.now() - started) / 1000);
    metrics.batchRows.observe({ stage: 'sink' }, rows.length);
    let maxTime = 0;
    const now = Date.now();
    for (const e of rows) {
      if (e.time > maxTime) maxTime = e.time;
      metrics.freshness.observe(Math.max(0, now - e.observed_time) / 1000);
    }
    if (maxTime > 0) metrics.lastEventTime.set(maxTime / 1000);
    options.onStored?.(rows.length, maxTime);
  };

  const writeDeadLetters: RangeWriter = async (messages, token) => {
    const letters: DeadLetter[] = [];
    for (const message of messages) {
      let value: unknown;
      try {
        value = JSON.parse(message.value);
      } catch {
        value = undefined;
      }
      letters.push(
        checkDeadLetter.Check(value) ? value : { observed_time: Date.now(), source: 'bus', reason: 'sink_bad_deadletter', raw: message.value.slice(0, POISON_RAW_CHARS) },
      );
    }
    try {
      await store.insertDeadLetters(letters, token);
    } catch (err) {
      stage.error(codeOf(err, 'ZTW_STORE_UNAVAILABLE'));
      throw err;
    }
  };

  const handle = (write: RangeWriter) => async (batch: ConsumedBatch) => {
    stage.received(batch.messages.length);
    await processBatch(batch, { state, write, stage, maxBatchMessages: subscribeOptions.maxBatchMessages, recoveryWaits, known });
  };

  const events: Subscription = await bus.subscribe(TOPICS.events, subscribeOptions, handle(writeEvents));
  let deadLetters: Subscription;
  try {
    deadLetters = await bus.subscribe(TOPICS.deadLetters, subscribeOptions, handle(writeDeadLetters));
  } catch (err) {
    await events.close();
    throw err;
  }

  return {
    async close() {
      await Promise.all([events.close(), deadLetters.close()]);
    },
  };
}

/** Event ids of `events` already in the store (bounded by their time range, so partitions prune). */
async function findStoredEventIds(store: Store, events: readonly NormalizedEvent[]): Promise<Set<string>> {
  let minTime = Infinity;
  let maxTime = -Infinity;
  for (const e of events) {
    if (e.time < minTime) minTime = e.time;
    if (e.time > maxTime) maxTime = e.time;
  }
  const rows = await store.query<{ event_id: string }>(
    `SELECT event_id FROM ${store.database}.events WHERE time BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64}) AND event_id IN {ids:Array(String)}`,
    { from: minTime, to: maxTime, ids: events.map((e) => e.event_id) },
  );
  return new Set(rows.map((r) => r.event_id));
}
