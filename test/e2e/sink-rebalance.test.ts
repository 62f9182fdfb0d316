// Two sinks of one consumer group on a real Apache Kafka 4.1.1 broker (scripts/kafka.sh) and one
// embedded ClickHouse: a partition moves from sink A to sink B, B's insert lands but its batch
// fails (as if B died before recording it), and the partition comes back to A. A kept, from
// before, what it had written for that partition; only the assignment epoch tells it that B may
// have written since. Every event must be stored exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaBus } from '../../bus/kafka.ts';
import { TOPICS, type Bus } from '../../bus/port.ts';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createMetrics } from '../../core/metrics.ts';
import type { Store } from '../../store/client.ts';
import { createSink, type Sink } from '../../store/sink.ts';
import { createKafkaTestConfig, ensureKafka, type KafkaBroker } from '../helpers/kafka.ts';
import { toEventMessages } from '../helpers/sink.ts';
import { createTestStore, dropTestStore } from '../helpers/store.ts';
import { waitFor } from '../helpers/wait.ts';

const BASE_MS = Date.now() - 3_600_000;

function makeEvents(from: number, count: number): NormalizedEvent[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return { ...createEmptyEvent('envoy', BASE_MS + i), event_id: `ev-${i}`, time: BASE_MS + i, dst_service: `svc-${i % 40}`, decision: 'allow' as const, raw: `line ${i}` };
  });
}

describe('sinks of one group sharing partitions', { timeout: 180_000 }, () => {
  let broker: KafkaBroker;
  beforeAll(async () => {
    broker = await ensureKafka();
  });
  afterAll(async () => {
    await broker?.release();
  });

  it('a partition moved from sink A to sink B (whose batch fails after its insert landed) and back to A: every event stored once', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 2 }, sink: { batchRows: 5000, batchWaitMs: 100 } });
    const store: Store = await createTestStore(config);
    const buses: Bus[] = [];
    const sinks: Sink[] = [];
    try {
      const counts = async () => {
        const [row] = await store.query<{ rows: string; unique: string }>(`SELECT count() AS rows, uniqExact(event_id) AS unique FROM ${store.database}.events`);
        return { rows: Number(row?.rows), unique: Number(row?.unique) };
      };
      const producer = await createKafkaBus(config, createMetrics());
      buses.push(producer);

      // Sink A alone holds both partitions and stores a first round.
      const busA = await createKafkaBus(config, createMetrics(), { retryBackoffMs: 200 });
      buses.push(busA);
      const sinkA = await createSink({ bus: busA, store, metrics: createMetrics(), config });
      sinks.push(sinkA);
      await producer.publish(TOPICS.events, toEventMessages(makeEvents(0, 1000)));
      await waitFor(async () => (await counts()).rows >= 1000, { timeoutMs: 60_000, what: 'sink A to store the first 1000 events' });

      // Sink B joins (one of A's partitions moves to it). Each of its batches inserts, then fails.
      let bFailures = 0;
      const busB = await createKafkaBus(config, createMetrics(), { retryBackoffMs: 200 });
      buses.push(busB);
      const sinkB = await createSink({
        bus: busB,
        store,
        metrics: createMetrics(),
        config,
        afterInsert: async () => {
          bFailures++;
          throw new Error('sink B fails after its insert landed');
        },
      });
      sinks.push(sinkB);
      await producer.publish(TOPICS.events, toEventMessages(makeEvents(1000, 1000)));
      await waitFor(() => bFailures > 0, { timeoutMs: 60_000, what: 'sink B to insert a batch' });
      // More on both partitions, so A's next batch of B's partition is longer than B's range.
      await producer.publish(TOPICS.events, toEventMessages(makeEvents(2000, 1000)));

      // B leaves: its partition comes back to A, from the last offset committed (by A).
      await sinkB.close();
      sinks.splice(sinks.indexOf(sinkB), 1);
      await waitFor(async () => (await counts()).unique >= 3000, { timeoutMs: 90_000, what: () => 'sink A to store all 3000 events' });
      await sinkA.close();
      sinks.splice(sinks.indexOf(sinkA), 1);
      expect(bFailures).toBeGreaterThan(0);
      expect(await counts()).toEqual({ rows: 3000, unique: 3000 });
    } finally {
      await Promise.all(sinks.map((s) => s.close()));
      await Promise.all(buses.map((b) => b.close()));
      await dropTestStore(store);
    }
  });
});
