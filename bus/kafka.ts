// The Kafka adapter of the Bus port (distributed deployment): this file (the producer and the bus
// itself) and bus/kafka/ (topic admin, partition assigner, consumer, client calls, limits) are the
// only code that imports the Kafka client (STYLE §3).
//
// Producer: idempotent, acks=all, compressed. The client in use computes an idempotent batch's
// sequence number when the request is built and advances it only on success, so two concurrent
// sends to one partition would carry the same sequence and the broker would drop the second as a
// "duplicate" while acknowledging it. Publishes are therefore queued and sent one request at a
// time; requests that queue up meanwhile go out together in the next one (natural batching). After
// a failed send the producer takes a new producer id, because the failed batch may have landed and
// its sequence numbers must not be reused for different messages.
//
// Consumer: one group member per subscription, with manual commits. A fetch loop keeps up to one
// batch per partition queued while a dispatch loop hands batches to the handler, one at a time.
// Batches hold messages of one partition; a batch's offsets are committed only after the handler
// resolved; a rejected batch is put back in front of its partition's queue (a seek back to its
// first offset) and handed again after a backoff. Every client call has a deadline.
import { Producer, compatibilityPartitioner, stringSerializers } from '@platformatic/kafka';
import type { FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';
import type { Metrics } from '../core/metrics.ts';
import type { BatchHandler, Bus, BusMessage, SubscribeOptions, Subscription, Topic } from './port.ts';
import { withDeadline, wrapError } from './kafka/client-calls.ts';
import { CALL_DEADLINE_MS, MAX_SEND_BYTES, SEND_DEADLINE_MS } from './kafka/limits.ts';
import { KafkaSubscription } from './kafka/subscription.ts';
import { ensureTopics } from './kafka/topics.ts';

export interface KafkaBusOptions {
  /** First wait before a rejected batch is handed again, doubling up to 10 s, in milliseconds. @default 500 */
  readonly retryBackoffMs?: number;
}

interface PendingPublish {
  readonly topic: string;
  readonly messages: readonly BusMessage[];
  readonly bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** Connects to the brokers, creates missing topics and returns the Kafka bus. */
export async function createKafkaBus(config: FrozenConfig, metrics: Metrics, options: KafkaBusOptions = {}): Promise<Bus> {
  const kafka = config.kafka;
  if (kafka.brokers.length === 0) throw createError('CONFIG_INVALID', 'kafka.brokers is empty');
  const physical = (topic: string) => `${kafka.topicPrefix}${topic}`;
  const stage = metrics.stage('bus');
  const base = { bootstrapBrokers: [...kafka.brokers], connectTimeout: 5_000, timeout: 10_000, retries: 8, retryDelay: 500 };

  await ensureTopics(config, base);

  const producer = new Producer({
    ...base,
    clientId: `${kafka.clientId}-producer`,
    idempotent: true,
    acks: -1,
    compression: kafka.compression,
    partitioner: compatibilityPartitioner,
    serializers: stringSerializers,
  });
  producer.on('error', () => {
    // Failures reach the caller through send(); without a listener the emitter would throw.
  });

  const maxInFlight = config.bus.maxInFlightMessages;
  const retryBackoffMs = options.retryBackoffMs ?? 500;
  const queue: PendingPublish[] = [];
  const roomWaiters: Array<() => void> = [];
  const idleWaiters: Array<() => void> = [];
  const subscriptions = new Set<KafkaSubscription>();
  let inFlight = 0;
  let sending = false;
  let renewProducerId = false;
  let closed = false;

  const setInFlight = (count: number) => {
    inFlight = count;
    metrics.busInFlight.set(count);
    if (inFlight <= maxInFlight) for (const wake of roomWaiters.splice(0)) wake();
    if (inFlight === 0 && !sending) for (const wake of idleWaiters.splice(0)) wake();
  };

  const takeRequest = (): PendingPublish[] => {
    const group: PendingPublish[] = [];
    let bytes = 0;
    while (queue.length > 0) {
      const next = queue[0] as PendingPublish;
      if (group.length > 0 && bytes + next.bytes > MAX_SEND_BYTES) break;
      group.push(queue.shift() as PendingPublish);
      bytes += next.bytes;
    }
    return group;
  };

  const pump = async () => {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        const group = takeRequest();
        const count = group.reduce((n, p) => n + p.messages.length, 0);
        try {
          if (renewProducerId) {
            await withDeadline(producer.initIdempotentProducer({}), SEND_DEADLINE_MS, 'initProducerId');
            renewProducerId = false;
          }
          await withDeadline(
            producer.send({ messages: group.flatMap((p) => p.messages.map((m) => ({ topic: p.topic, key: m.key, value: m.value }))) }),
            SEND_DEADLINE_MS,
            'produce',
          );
          stage.sent(count);
          for (const p of group) p.resolve();
        } catch (cause) {
          renewProducerId = true;
          const err = wrapError('publish failed', cause);
          stage.error(err.code, 1);
          for (const p of group) p.reject(err);
        } finally {
          setInFlight(inFlight - count);
        }
      }
    } finally {
      sending = false;
      if (inFlight === 0) for (const wake of idleWaiters.splice(0)) wake();
    }
  };

  return {
    kind: 'kafka',
    isSaturated: () => inFlight > maxInFlight,
    async publish(topic: Topic, messages: readonly BusMessage[]) {
      if (closed) throw createError('BUS_CLOSED');
      if (messages.length === 0) return;
      while (inFlight > maxInFlight) {
        await new Promise<void>((resolve) => roomWaiters.push(resolve));
        if (closed) throw createError('BUS_CLOSED');
      }
      stage.received(messages.length);
      // A publish larger than one request goes out as several parts that settle together.
      const done = new Promise<void>((resolve, reject) => queue.push(...splitPublish({ topic: physical(topic), messages, bytes: 0, resolve, reject })));
      setInFlight(inFlight + messages.length);
      void pump();
      await done;
    },
    async subscribe(topic: Topic, subscribeOptions: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closed) throw createError('BUS_CLOSED');
      const subscription = new KafkaSubscription({
        config,
        base,
        topic: physical(topic),
        options: subscribeOptions,
        handler,
        stage,
        metrics,
        retryBackoffMs,
      });
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (err) {
        subscriptions.delete(subscription);
        await subscription.close();
        throw err;
      }
      return {
        close: async () => {
          subscriptions.delete(subscription);
          await subscription.close();
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      subscriptions.clear();
      // Publishes already accepted are sent (or fail) before the connections go.
      if (inFlight > 0 || sending) await new Promise<void>((resolve) => idleWaiters.push(resolve));
      for (const wake of roomWaiters.splice(0)) wake();
      await withDeadline(producer.close(), CALL_DEADLINE_MS, 'close').catch(() => undefined);
    },
  };
}

/** Sizes a publish and splits it into parts of at most MAX_SEND_BYTES that resolve or reject as one. */
function splitPublish(pending: PendingPublish): PendingPublish[] {
  const parts: BusMessage[][] = [[]];
  let bytes = 0;
  for (const m of pending.messages) {
    const size = m.value.length + m.key.length + 16;
    const current = parts[parts.length - 1] as BusMessage[];
    if (current.length > 0 && bytes + size > MAX_SEND_BYTES) {
      parts.push([m]);
      bytes = size;
    } else {
      current.push(m);
      bytes += size;
    }
  }
  let remaining = parts.length;
  let failed: unknown;
  const settle = (err?: unknown) => {
    if (err !== undefined && failed === undefined) failed = err;
    if (--remaining === 0) {
      if (failed === undefined) pending.resolve();
      else pending.reject(failed);
    }
  };
  return parts.map((messages) => ({
    topic: pending.topic,
    messages,
    bytes: messages.reduce((n, m) => n + m.value.length + m.key.length + 16, 0),
    resolve: () => settle(),
    reject: (err: unknown) => settle(err),
  }));
}
