// The Kafka adapter of the Bus port (distributed deployment): this file (the producer and the bus
// itself) and bus/kafka/ (topic admin, partition assigner, consumer, client calls, limits) are the
// only code that imports the Kafka client (STYLE §3).
//
// Producer: idempotent, acks=all, compressed. The client in use computes an idempotent batch's
// sequence number when the request is built and advances it only on success, so two concurrent
// sends to one partition would carry the same sequence and the broker would drop the second as a
// "duplicate" while acknowledging it. Publishes are therefore queued and sent one request at a
// time; requests that queue up meanwhile go out together in the next one (natural batching), up to
// MAX_BATCH_BYTES per partition and MAX_REQUEST_BYTES per request. The wrapper picks each message's
// partition itself (murmur2 of the key, as the Java client does) to size the partitions' batches. After
// a failed send the producer takes a new producer id, because the failed batch may have landed and
// its sequence numbers must not be reused for different messages.
//
// Consumer: one group member per subscription, with manual commits. A fetch loop keeps up to one
// batch per partition queued while a dispatch loop hands batches to the handler, one at a time.
// Batches hold messages of one partition; a batch's offsets are committed only after the handler
// resolved; a rejected batch is put back in front of its partition's queue (a seek back to its
// first offset) and handed again after a backoff. Every client call has a deadline.
import { Producer, murmur2, stringSerializers } from '@platformatic/kafka';
import type { FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';
import type { Metrics } from '../core/metrics.ts';
import type { BatchHandler, Bus, BusMessage, SubscribeOptions, Subscription, Topic } from './port.ts';
import { withDeadline, wrapError } from './kafka/client-calls.ts';
import { CALL_DEADLINE_MS, MAX_BATCH_BYTES, MAX_REQUEST_BYTES, SEND_DEADLINE_MS } from './kafka/limits.ts';
import { KafkaSubscription } from './kafka/subscription.ts';
import { ensureTopics } from './kafka/topics.ts';

export interface KafkaBusOptions {
  /** First wait before a rejected batch is handed again, doubling up to 10 s, in milliseconds. @default 500 */
  readonly retryBackoffMs?: number;
}

interface PendingPublish {
  readonly topic: string;
  readonly messages: readonly BusMessage[];
  /** Messages already put in a request; the rest wait for the next one. */
  taken: number;
  /** Requests carrying some of its messages that have not settled yet. */
  unsettled: number;
  /** The first failure of any of its requests. */
  failure: unknown;
  resolve(): void;
  reject(err: unknown): void;
}

/** One produce request: its messages, with their partitions, and the publishes they come from. */
interface ProduceRequest {
  readonly messages: Array<{ topic: string; key: string; value: string; partition: number }>;
  readonly publishes: PendingPublish[];
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

  /**
   * Takes the next request from the queue: whole publishes, and the head of one that does not fit,
   * up to MAX_BATCH_BYTES per partition and MAX_REQUEST_BYTES in all (at least one message).
   */
  const takeRequest = (partitionCounts: ReadonlyMap<string, number>): ProduceRequest => {
    const request: ProduceRequest = { messages: [], publishes: [] };
    const batchBytes = new Map<string, number>();
    let requestBytes = 0;
    while (queue.length > 0) {
      const pending = queue[0] as PendingPublish;
      const partitions = partitionCounts.get(pending.topic) ?? 1;
      const start = pending.taken;
      while (pending.taken < pending.messages.length) {
        const m = pending.messages[pending.taken] as BusMessage;
        const partition = partitionOf(m.key, partitions);
        const batchKey = `${pending.topic}:${partition}`;
        const size = m.value.length + m.key.length + RECORD_OVERHEAD_BYTES;
        const batch = batchBytes.get(batchKey) ?? 0;
        if (request.messages.length > 0 && (batch + size > MAX_BATCH_BYTES || requestBytes + size > MAX_REQUEST_BYTES)) break;
        request.messages.push({ topic: pending.topic, key: m.key, value: m.value, partition });
        batchBytes.set(batchKey, batch + size);
        requestBytes += size;
        pending.taken++;
      }
      if (pending.taken > start) {
        pending.unsettled++;
        request.publishes.push(pending);
      }
      if (pending.taken < pending.messages.length) break;
      queue.shift();
    }
    return request;
  };

  /** A request settled: each publish whose messages all went out and settled resolves or rejects. */
  const settle = (request: ProduceRequest, failure: unknown) => {
    for (const pending of request.publishes) {
      if (failure !== undefined && pending.failure === undefined) pending.failure = failure;
      if (--pending.unsettled > 0 || pending.taken < pending.messages.length) continue;
      if (pending.failure === undefined) pending.resolve();
      else pending.reject(pending.failure);
    }
  };

  const pump = async () => {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        let request: ProduceRequest | undefined;
        try {
          if (renewProducerId) {
            await withDeadline(producer.initIdempotentProducer({}), SEND_DEADLINE_MS, 'initProducerId');
            renewProducerId = false;
          }
          // The client's cached metadata (refreshed by its own max age): partitions per topic.
          const topics = [...new Set(queue.map((p) => p.topic))];
          const metadata = await withDeadline(producer.metadata({ topics }), SEND_DEADLINE_MS, 'metadata');
          const partitionCounts = new Map(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount ?? 1]));
          request = takeRequest(partitionCounts);
          await withDeadline(producer.send({ messages: request.messages }), SEND_DEADLINE_MS, 'produce');
          stage.sent(request.messages.length);
          settle(request, undefined);
        } catch (cause) {
          renewProducerId = true;
          const err = wrapError('publish failed', cause);
          stage.error(err.code, 1);
          // A failure before a request was formed fails the publish at the head of the queue.
          request ??= takeRequest(new Map());
          settle(request, err);
        } finally {
          if (request) setInFlight(inFlight - request.messages.length);
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
      // A publish larger than one request goes out in several that settle together.
      const done = new Promise<void>((resolve, reject) => queue.push({ topic: physical(topic), messages, taken: 0, unsettled: 0, failure: undefined, resolve, reject }));
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

/** Bytes a record adds to its batch beyond its key and value (length, attributes, deltas, headers), a bound. */
const RECORD_OVERHEAD_BYTES = 16;

/** The partition of a key, as the Java client's default partitioner picks it (murmur2 of its UTF-8 bytes, positive; hashes of recent keys cached). */
function partitionOf(key: string, partitions: number): number {
  return (murmur2(key, true) & 0x7fffffff) % partitions;
}
