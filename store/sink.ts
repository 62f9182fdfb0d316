// The sink: consumes normalized events (and dead letters) from the bus and writes them to
// ClickHouse in batches bounded by rows and by time. A batch is acknowledged to the bus only after
// ClickHouse accepted it; a redelivered batch carries the same dedup token, so it adds no rows.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FrozenConfig } from '../core/config.ts';
import { DeadLetterSchema, NormalizedEventSchema, type DeadLetter, type NormalizedEvent } from '../core/event.ts';
import type { Metrics } from '../core/metrics.ts';
import { TOPICS, type Bus, type ConsumedBatch, type Subscription } from '../bus/port.ts';
import type { Store } from './client.ts';

const checkEvent = TypeCompiler.Compile(NormalizedEventSchema);
const checkDeadLetter = TypeCompiler.Compile(DeadLetterSchema);

export interface SinkOptions {
  readonly bus: Bus;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly config: FrozenConfig;
  /**
   * Runs after a batch's events are stored and before it is acknowledged (e.g. the
   * tamper-evidence chain). A rejection makes the bus redeliver the batch.
   */
  readonly afterInsert?: (events: readonly NormalizedEvent[], dedupToken: string) => Promise<void>;
  /** Called after each stored batch with the newest event time in it (ms). */
  readonly onStored?: (count: number, maxEventTimeMs: number) => void;
}

export interface Sink {
  /** Stops consuming after the batch in hand is stored and acknowledged. */
  close(): Promise<void>;
}

/** Splits bus messages into valid events and dead letters (poison messages never block the topic). */
export function decodeEventMessages(batch: ConsumedBatch, nowMs: number): { events: NormalizedEvent[]; poison: DeadLetter[] } {
  const events: NormalizedEvent[] = [];
  const poison: DeadLetter[] = [];
  for (const message of batch.messages) {
    let value: unknown;
    try {
      value = JSON.parse(message.value);
    } catch {
      poison.push({ observed_time: nowMs, source: 'bus', reason: 'sink_bad_json', raw: message.value.slice(0, 65_536) });
      continue;
    }
    if (checkEvent.Check(value)) events.push(value);
    else poison.push({ observed_time: nowMs, source: 'bus', reason: 'sink_bad_event', raw: message.value.slice(0, 65_536) });
  }
  return { events, poison };
}

/** Starts consuming the events and dead-letter topics into the store. */
export async function createSink(options: SinkOptions): Promise<Sink> {
  const { bus, store, metrics, config } = options;
  const stage = metrics.stage('sink');
  const subscribeOptions = { group: config.kafka.sinkGroup, maxBatchMessages: config.sink.batchRows, maxBatchWaitMs: config.sink.batchWaitMs };

  const events: Subscription = await bus.subscribe(TOPICS.events, subscribeOptions, async (batch) => {
    const started = performance.now();
    const now = Date.now();
    stage.received(batch.messages.length);
    const { events: rows, poison } = decodeEventMessages(batch, now);
    try {
      await store.insertEvents(rows, batch.dedupToken);
      if (poison.length > 0) await store.insertDeadLetters(poison, `${batch.dedupToken}:poison`);
      if (options.afterInsert && rows.length > 0) await options.afterInsert(rows, batch.dedupToken);
    } catch (err) {
      stage.error((err as { code?: string }).code ?? 'ZTW_STORE_UNAVAILABLE');
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
    for (const e of rows) {
      if (e.time > maxTime) maxTime = e.time;
      metrics.freshness.observe(Math.max(0, Date.now() - e.observed_time) / 1000);
    }
    if (maxTime > 0) metrics.lastEventTime.set(maxTime / 1000);
    options.onStored?.(rows.length, maxTime);
  });

  const deadLetters: Subscription = await bus.subscribe(TOPICS.deadLetters, subscribeOptions, async (batch) => {
    const letters: DeadLetter[] = [];
    for (const message of batch.messages) {
      let value: unknown;
      try {
        value = JSON.parse(message.value);
      } catch {
        value = undefined;
      }
      letters.push(checkDeadLetter.Check(value) ? value : { observed_time: Date.now(), source: 'bus', reason: 'sink_bad_deadletter', raw: message.value.slice(0, 65_536) });
    }
    await store.insertDeadLetters(letters, batch.dedupToken);
  });

  return {
    async close() {
      await events.close();
      await deadLetters.close();
    },
  };
}
