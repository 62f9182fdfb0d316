// The Bus port: how stages hand data to each other. `memory.ts` (embedded) and `kafka.ts`
// (distributed) implement it; nothing else knows which one runs.

/** Topic names (DESIGN §4). Versioned: a schema change is a new topic, not a mutation. */
export const TOPICS = {
  events: 'ztwatch.events.v1',
  deadLetters: 'ztwatch.deadletter.v1',
  anomalies: 'ztwatch.anomalies.v1',
} as const;
export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** One message: `key` orders related messages (events are keyed by `dst_service`). */
export interface BusMessage {
  readonly key: string;
  /** JSON text of the payload. */
  readonly value: string;
  /**
   * The object `value` is the JSON text of, exactly as the consumer would store it (an event
   * already through repairEvent), handed over by its producer, which no longer changes it. Only the
   * memory bus delivers it, so an in-process consumer need not parse `value` again; it never
   * leaves the process (Kafka sends `key` and `value`).
   */
  readonly payload?: unknown;
}

/** A batch handed to a subscriber. Offsets are committed only after the handler resolves. */
export interface ConsumedBatch {
  readonly topic: string;
  readonly messages: readonly BusMessage[];
  /**
   * Stable identity of exactly these messages (topic, partition and offset range): a retried
   * delivery of the same batch carries the same token, so writes keyed by it are idempotent.
   */
  readonly dedupToken: string;
  /** Kafka only: the partition every message of the batch comes from (a batch never mixes partitions). */
  readonly partition?: number;
  /** Kafka only: each message's offset, ascending, in the order of `messages`. */
  readonly offsets?: readonly number[];
  /**
   * Kafka only: while batches of a partition carry the same number, no other consumer can have
   * held that partition between them, so what this consumer wrote for it is still the latest. A new
   * number (never reused in the process) on every rebalance, rejoin, leave, failed heartbeat or
   * commit and change of assigned partitions, and when the group has not confirmed this member for
   * half a session timeout.
   */
  readonly assignmentEpoch?: number;
}

export interface SubscribeOptions {
  /** Consumer group; members of one group share the topic's messages. */
  readonly group: string;
  /** Most messages per batch. */
  readonly maxBatchMessages: number;
  /** Longest wait for a batch to fill, in milliseconds. */
  readonly maxBatchWaitMs: number;
}

/** A rejected handler means "not processed": the batch is delivered again after a backoff. */
export type BatchHandler = (batch: ConsumedBatch) => Promise<void>;

export interface Subscription {
  /** Stops fetching, waits for the batch in hand, commits it, and leaves the group. */
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'kafka';
  /**
   * Resolves once the bus holds the messages durably (Kafka: acks=all). Waits while too many
   * messages are in flight (backpressure); rejects with a ZTW_BUS_* error when it cannot deliver.
   */
  publish(topic: Topic, messages: readonly BusMessage[]): Promise<void>;
  /** True while publishing would wait for room; collectors answer 429/503 instead of queueing. */
  isSaturated(): boolean;
  subscribe(topic: Topic, options: SubscribeOptions, handler: BatchHandler): Promise<Subscription>;
  /** Flushes pending work and releases connections. */
  close(): Promise<void>;
}
