// The Kafka bus against a real Apache Kafka 4.1.1 broker (scripts/kafka.sh): topics, keyed
// partitioning, per-partition batches and their tokens, commit-after-handler, seek back on a
// rejected batch, consumer groups, backpressure, lag, graceful close and an unreachable broker.
import { compatibilityPartitioner } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaBus } from '../../bus/kafka.ts';
import { TOPICS, type Bus, type BusMessage, type ConsumedBatch, type SubscribeOptions } from '../../bus/port.ts';
import type { FrozenConfig } from '../../core/config.ts';
import { hasCode } from '../../core/errors.ts';
import { createMetrics, type Metrics } from '../../core/metrics.ts';
import { createKafkaTestConfig, ensureKafka, findFreePortPair, type KafkaBroker } from '../helpers/kafka.ts';
import { waitFor } from '../helpers/wait.ts';

const messages = (from: number, count: number, keys = 7): BusMessage[] =>
  Array.from({ length: count }, (_, i) => ({ key: `svc-${(from + i) % keys}`, value: JSON.stringify({ n: from + i }) }));
const valueOf = (m: BusMessage) => (JSON.parse(m.value) as { n: number }).n;

describe('Kafka bus', { timeout: 90_000 }, () => {
  let broker: KafkaBroker;
  const open: Bus[] = [];
  beforeAll(async () => {
    broker = await ensureKafka();
  });
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
    await broker?.release();
  });

  async function newBus(config: FrozenConfig, metrics: Metrics = createMetrics(), retryBackoffMs = 200): Promise<Bus> {
    const bus = await createKafkaBus(config, metrics, { retryBackoffMs });
    open.push(bus);
    return bus;
  }

  const options = (config: FrozenConfig, overrides: Partial<SubscribeOptions> = {}): SubscribeOptions => ({
    group: config.kafka.sinkGroup,
    maxBatchMessages: 500,
    maxBatchWaitMs: 100,
    ...overrides,
  });

  it('round-trips keyed messages: one partition per batch, tokens of exact offset ranges, order kept per key', async () => {
    const config = createKafkaTestConfig(broker.brokers);
    const metrics = createMetrics();
    const bus = await newBus(config, metrics);
    expect(bus.kind).toBe('kafka');
    await Promise.all([bus.publish(TOPICS.events, messages(0, 1500)), bus.publish(TOPICS.events, messages(1500, 1500))]);
    const batches: ConsumedBatch[] = [];
    let received = 0;
    const sub = await bus.subscribe(TOPICS.events, options(config), async (b) => {
      batches.push(b);
      received += b.messages.length;
    });
    await waitFor(() => received >= 3000, { timeoutMs: 30_000, what: '3000 messages' });
    await sub.close();
    // Published and consumed by one bus: each message counted once as received (docs/telemetry.md).
    const counted = await metrics.registry.getSingleMetricAsString('ztwatch_stage_received_events_total');
    expect(counted).toMatch(/stage="bus"\} 3000$/m);

    const all = batches.flatMap((b) => b.messages.map(valueOf));
    expect(all.length).toBe(3000);
    expect(new Set(all).size).toBe(3000);
    const partitionOfKey = new Map<string, number>();
    const lastOfKey = new Map<string, number>();
    for (const b of batches) {
      expect(b.topic).toBe(`${config.kafka.topicPrefix}${TOPICS.events}`);
      expect(b.messages.length).toBeLessThanOrEqual(500);
      expect(b.partition).toBeGreaterThanOrEqual(0);
      expect(b.partition).toBeLessThan(config.kafka.partitions);
      const offsets = b.offsets ?? [];
      expect(offsets).toHaveLength(b.messages.length);
      expect(offsets.every((o, i) => i === 0 || o === (offsets[i - 1] as number) + 1)).toBe(true);
      expect(b.dedupToken).toBe(`${b.topic}:${b.partition}:${offsets[0]}-${offsets.at(-1)}`);
      for (const m of b.messages) {
        // A key always lands on the same partition, and its messages keep their publish order.
        expect(partitionOfKey.get(m.key) ?? b.partition).toBe(b.partition);
        partitionOfKey.set(m.key, b.partition as number);
        expect(valueOf(m)).toBeGreaterThan(lastOfKey.get(m.key) ?? -1);
        lastOfKey.set(m.key, valueOf(m));
      }
    }
    expect(new Set(batches.map((b) => b.partition)).size).toBe(config.kafka.partitions);
  });

  it('sends publishes larger than one partition batch or one request whole and in order, each key on the Java client partition', async () => {
    const config = createKafkaTestConfig(broker.brokers);
    const bus = await newBus(config);
    // 2.5 MB on one key (beyond a partition batch of 900 KiB) and 10 MB spread over 7 keys
    // (beyond a request of 8 MiB), published concurrently.
    const pad = 'x'.repeat(1000);
    const big = (from: number, count: number, keys: number): BusMessage[] =>
      messages(from, count, keys).map((m) => ({ key: m.key, value: JSON.stringify({ n: valueOf(m), pad }) }));
    await Promise.all([bus.publish(TOPICS.events, big(0, 2500, 1)), bus.publish(TOPICS.events, big(2500, 10_000, 7))]);
    const lastOfKey = new Map<string, number>();
    const seen = new Set<number>();
    const sub = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 5000 }), async (b) => {
      for (const m of b.messages) {
        // The partition the Java client (and this client's compatibility partitioner) picks for the key.
        expect(b.partition).toBe(compatibilityPartitioner(undefined as never, Buffer.from(m.key)) % config.kafka.partitions);
        expect(valueOf(m)).toBeGreaterThan(lastOfKey.get(m.key) ?? -1);
        lastOfKey.set(m.key, valueOf(m));
        seen.add(valueOf(m));
      }
    });
    await waitFor(() => seen.size >= 12_500, { timeoutMs: 60_000, what: '12500 messages' });
    await sub.close();
    expect(seen.size).toBe(12_500);
  });

  it('redelivers a rejected batch from the same offset after the backoff, and commits only handled batches', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 1 } });
    const bus = await newBus(config, createMetrics(), 300);
    await bus.publish(TOPICS.events, messages(0, 100));
    const deliveries: Array<{ batch: ConsumedBatch; atMs: number }> = [];
    let rejections = 2;
    const sub = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 60 }), async (b) => {
      deliveries.push({ batch: b, atMs: Date.now() });
      if (rejections-- > 0) throw new Error('store unavailable');
    });
    await waitFor(() => deliveries.reduce((n, d) => n + d.batch.messages.length, 0) >= 220, { timeoutMs: 30_000, what: 'redeliveries and the rest' });
    await sub.close();
    const [first, second, third, fourth] = deliveries;
    // The same messages, the same token: the topic was quiet, so the seek back re-forms the same batch.
    expect(second?.batch.dedupToken).toBe(first?.batch.dedupToken);
    expect(third?.batch.dedupToken).toBe(first?.batch.dedupToken);
    expect(second?.batch.messages).toEqual(first?.batch.messages);
    expect(first?.batch.offsets?.[0]).toBe(0);
    expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThanOrEqual(250);
    expect(fourth?.batch.offsets?.[0]).toBe(60);

    // A new member of the group starts after the last handled batch: both were committed.
    await bus.publish(TOPICS.events, messages(100, 5));
    const later: number[] = [];
    const again = await bus.subscribe(TOPICS.events, options(config), async (b) => {
      later.push(...b.messages.map(valueOf));
    });
    await waitFor(() => later.length >= 5, { timeoutMs: 30_000, what: 'messages after the committed offset' });
    await again.close();
    expect(later).toEqual([100, 101, 102, 103, 104]);
  });

  it('does not commit a batch whose handler never resolved: the next member of the group gets it again', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 1 } });
    const bus = await newBus(config);
    await bus.publish(TOPICS.events, messages(0, 30));
    let handed = 0;
    const sub = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 10 }), async (b) => {
      handed++;
      if (handed === 1) return;
      throw new Error(`not stored ${b.dedupToken}`);
    });
    await waitFor(() => handed >= 2, { timeoutMs: 30_000, what: 'two batches' });
    await sub.close();
    const seen: number[] = [];
    const next = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 10 }), async (b) => {
      seen.push(...b.messages.map(valueOf));
    });
    await waitFor(() => seen.length >= 20, { timeoutMs: 30_000, what: 'the uncommitted messages' });
    await next.close();
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 10));
  });

  it('close() finishes and commits the batch in hand before leaving the group', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 1 } });
    const bus = await newBus(config);
    await bus.publish(TOPICS.events, messages(0, 20));
    let started = false;
    let finished = false;
    const sub = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 20 }), async () => {
      started = true;
      await new Promise((r) => setTimeout(r, 400));
      finished = true;
    });
    await waitFor(() => started, { timeoutMs: 30_000, what: 'the batch to start' });
    await sub.close();
    expect(finished).toBe(true);
    await bus.publish(TOPICS.events, messages(20, 1));
    const seen: number[] = [];
    const next = await bus.subscribe(TOPICS.events, options(config), async (b) => {
      seen.push(...b.messages.map(valueOf));
    });
    await waitFor(() => seen.length >= 1, { timeoutMs: 30_000, what: 'the next message' });
    await next.close();
    expect(seen).toEqual([20]);
  });

  it('shares partitions among the members of a group, and a member reads only the topics it subscribed to', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 4 } });
    const busA = await newBus(config);
    const busB = await newBus(config);
    const byMember = { a: new Set<number>(), b: new Set<number>() };
    const values: number[] = [];
    const letters: string[] = [];
    const opts = options(config, { maxBatchWaitMs: 50 });
    const subA = await busA.subscribe(TOPICS.events, opts, async (b) => {
      byMember.a.add(b.partition as number);
      values.push(...b.messages.map(valueOf));
    });
    // The same group also reads dead letters, through another member with another subscription.
    const subLetters = await busA.subscribe(TOPICS.deadLetters, opts, async (b) => {
      letters.push(...b.messages.map((m) => m.value));
    });
    const subB = await busB.subscribe(TOPICS.events, opts, async (b) => {
      byMember.b.add(b.partition as number);
      values.push(...b.messages.map(valueOf));
    });
    // Let the group settle with all three members before publishing.
    await new Promise((r) => setTimeout(r, 3_000));
    await busA.publish(TOPICS.events, messages(0, 400, 50));
    await busA.publish(TOPICS.deadLetters, [{ key: 'envoy', value: 'dead-1' }]);
    await waitFor(() => values.length >= 400 && letters.length >= 1, { timeoutMs: 45_000, what: 'both members to read' });
    await Promise.all([subA.close(), subB.close(), subLetters.close()]);
    expect(new Set(values).size).toBe(400);
    expect(values.length).toBe(400);
    expect(letters).toEqual(['dead-1']);
    expect(byMember.a.size).toBeGreaterThan(0);
    expect(byMember.b.size).toBeGreaterThan(0);
    expect([...byMember.a].filter((p) => byMember.b.has(p))).toEqual([]);
  });

  it('reports saturation while more than maxInFlightMessages are unacknowledged, and holds publishers until there is room', async () => {
    const config = createKafkaTestConfig(broker.brokers, { bus: { maxInFlightMessages: 1000 } });
    const metrics = createMetrics();
    const bus = await newBus(config, metrics);
    expect(bus.isSaturated()).toBe(false);
    const big = bus.publish(TOPICS.events, messages(0, 5000));
    expect(bus.isSaturated()).toBe(true);
    let secondDone = false;
    const second = bus.publish(TOPICS.events, messages(5000, 10)).then(() => {
      secondDone = true;
    });
    expect(secondDone).toBe(false);
    await big;
    await second;
    expect(bus.isSaturated()).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_bus_in_flight_messages')).toMatch(/ztwatch_bus_in_flight_messages 0$/m);
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_stage_sent_events_total')).toMatch(/stage="bus"\} 5010/);
  });

  it('exports consumer lag per partition, back to 0 once everything is handled', async () => {
    const config = createKafkaTestConfig(broker.brokers, { kafka: { partitions: 2 } });
    const metrics = createMetrics();
    const bus = await newBus(config, metrics);
    await bus.publish(TOPICS.events, messages(0, 200));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    const sub = await bus.subscribe(TOPICS.events, options(config, { maxBatchMessages: 50 }), async (b) => {
      await gate;
      handled += b.messages.length;
    });
    const lagSum = async () => {
      const metric = await metrics.registry.getSingleMetric('ztwatch_consumer_lag_messages')?.get();
      return (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
    };
    await waitFor(async () => (await lagSum()) >= 200, { timeoutMs: 20_000, what: 'a lag of 200 messages' });
    expect(await lagSum()).toBe(200);
    release();
    await waitFor(() => handled >= 200, { timeoutMs: 30_000, what: 'all messages' });
    await waitFor(async () => (await lagSum()) === 0, { timeoutMs: 10_000, what: 'the lag to drain' });
    const labels = (await metrics.registry.getSingleMetric('ztwatch_consumer_lag_messages')?.get())?.values.map((v) => v.labels.partition);
    expect(labels?.sort()).toEqual(['0', '1']);
    await sub.close();
  });

  it('fails with a retryable ZTW_BUS_UNAVAILABLE when no broker answers', async () => {
    const port = await findFreePortPair();
    const config = createKafkaTestConfig([`127.0.0.1:${port}`]);
    const started = Date.now();
    const err = await createKafkaBus(config, createMetrics()).catch((e: unknown) => e);
    expect(hasCode(err, 'ZTW_BUS_UNAVAILABLE')).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
