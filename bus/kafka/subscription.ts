// The consumer side: one consumer-group member per subscription, with its fetch loop, per-partition
// batches, manual commits and lag gauge. Every batch carries the member's assignment epoch
// (ConsumedBatch.assignmentEpoch), renewed on any sign that another member may have held a partition.
import { Consumer, ListOffsetTimestamps, type fetchV17 } from '@platformatic/kafka';
import type { FrozenConfig } from '../../core/config.ts';
import { ERRORS, createError } from '../../core/errors.ts';
import type { Metrics, StageMetrics } from '../../core/metrics.ts';
import type { BatchHandler, BusMessage, ConsumedBatch, SubscribeOptions } from '../port.ts';
import { assignBySubscription } from './assigner.ts';
import { createSleeper, hasApiError, withDeadline, wrapError } from './client-calls.ts';
import {
  CALL_DEADLINE_MS,
  COMMIT_ATTEMPTS,
  CONTROL_BATCH,
  FETCH_IDLE_WAIT_MS,
  FETCH_MAX_BYTES,
  FETCH_PARTITION_MAX_BYTES,
  LAG_REFRESH_MS,
  MAX_RETRY_BACKOFF_MS,
} from './limits.ts';

type FetchResponse = fetchV17.FetchResponse;

/** Last assignment epoch handed out in this process (ConsumedBatch.assignmentEpoch). */
let lastAssignmentEpoch = 0;

interface PartitionQueue {
  /** Fetched messages not yet handed over, with their offsets. */
  messages: BusMessage[];
  offsets: bigint[];
  /** When the oldest message arrived (ms): the batch is handed by this plus maxBatchWaitMs. */
  firstArrivalMs: number;
  /** Not handed before this time (ms): backoff after a rejected batch. */
  notBeforeMs: number;
}

/** What a subscription is built from: the bus's config, connection settings, topic and handler. */
export interface SubscriptionParts {
  readonly config: FrozenConfig;
  readonly base: { bootstrapBrokers: string[]; connectTimeout: number; timeout: number; retries: number; retryDelay: number };
  readonly topic: string;
  readonly options: SubscribeOptions;
  readonly handler: BatchHandler;
  readonly stage: StageMetrics;
  readonly metrics: Metrics;
  readonly retryBackoffMs: number;
}

/** One consumer-group member reading one topic: fetch loop, per-partition batches, manual commits. */
export class KafkaSubscription {
  readonly #parts: SubscriptionParts;
  readonly #consumer: Consumer;
  readonly #fetchSleeper = createSleeper();
  readonly #dispatchSleeper = createSleeper();
  /** Next offset to fetch, per assigned partition. */
  readonly #positions = new Map<number, bigint>();
  /** Last committed offset (next to read), per assigned partition, for the lag gauge. */
  readonly #committed = new Map<number, bigint>();
  readonly #highWatermarks = new Map<number, bigint>();
  readonly #queues = new Map<number, PartitionQueue>();
  readonly #attempts = new Map<number, number>();
  #assignmentDirty = true;
  /** Stamped on every batch: a new one whenever another member may have held a partition meanwhile. */
  #assignmentEpoch = ++lastAssignmentEpoch;
  /** When the group last confirmed this member (joined, or a heartbeat answered), in ms. */
  #confirmedAtMs = 0;
  #running = false;
  #lagTimer: NodeJS.Timeout | undefined;
  #lagRefreshing = false;
  #loop: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(parts: SubscriptionParts) {
    this.#parts = parts;
    const sessionTimeout = parts.config.kafka.sessionTimeoutMs;
    this.#consumer = new Consumer({
      ...parts.base,
      clientId: `${parts.config.kafka.clientId}-${parts.options.group}`,
      groupId: parts.options.group,
      sessionTimeout,
      heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 5)),
      rebalanceTimeout: sessionTimeout * 2,
      partitionAssigner: assignBySubscription,
      autocommit: false,
    });
    this.#consumer.on('error', () => {
      // A failed background rejoin: the fetch loop notices the lost membership and joins again.
      this.#newAssignmentEpoch();
    });
    this.#consumer.on('consumer:group:join', () => {
      this.#assignmentDirty = true;
      this.#confirmedAtMs = Date.now();
      this.#newAssignmentEpoch();
    });
    // Any sign that the membership changed or may have lapsed: batches after it get a new epoch.
    for (const event of ['consumer:group:rebalance', 'consumer:group:leave', 'consumer:heartbeat:error'] as const) {
      this.#consumer.on(event, () => this.#newAssignmentEpoch());
    }
    this.#consumer.on('consumer:heartbeat:end', () => {
      this.#confirmedAtMs = Date.now();
    });
  }

  #newAssignmentEpoch(): void {
    this.#assignmentEpoch = ++lastAssignmentEpoch;
  }

  /** Joins the group and starts the fetch loop. Rejects with BUS_UNAVAILABLE if the group cannot be joined. */
  async start(): Promise<void> {
    this.#consumer.topics.track(this.#parts.topic);
    try {
      await withDeadline(this.#consumer.joinGroup({}), CALL_DEADLINE_MS, 'joinGroup');
    } catch (cause) {
      throw wrapError(`cannot join group ${this.#parts.options.group}`, cause);
    }
    this.#running = true;
    this.#loop = Promise.all([this.#fetchLoop(), this.#dispatch()]).then(() => undefined);
    // Lag from the partitions' end offsets on a timer of its own: it keeps growing if the fetch
    // loop stalls, instead of freezing at the last value the loop saw.
    this.#lagTimer = setInterval(() => void this.#refreshLag(), LAG_REFRESH_MS);
    this.#lagTimer.unref();
  }

  /** Finishes the batch in hand (and commits it), then leaves the group. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#running = false;
      clearInterval(this.#lagTimer);
      this.#fetchSleeper.wakeAll();
      this.#dispatchSleeper.wakeAll();
      await this.#loop;
      try {
        // Without a callback the client returns a promise; its overloads type this call as void.
        await withDeadline(this.#consumer.leaveGroup(true) as unknown as Promise<void>, CALL_DEADLINE_MS, 'leaveGroup');
      } catch {
        // The broker may be gone; the session timeout then frees the partitions.
      }
      await withDeadline(this.#consumer.close(), CALL_DEADLINE_MS, 'close').catch(() => undefined);
      for (const partition of this.#positions.keys()) this.#forgetLag(partition);
    })();
    return this.#closing;
  }

  /**
   * Membership, assignment and fetching. Runs beside #dispatch, so the next batch is fetched while
   * the handler stores the previous one.
   */
  async #fetchLoop(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        if (!this.#consumer.isActive()) await withDeadline(this.#consumer.joinGroup({}), CALL_DEADLINE_MS, 'joinGroup');
        if (this.#assignmentDirty) await this.#reconcile();
        await this.#fetch();
        failures = 0;
      } catch {
        if (!this.#running) break;
        failures++;
        this.#parts.stage.error(ERRORS.BUS_UNAVAILABLE.code);
        this.#consumer.clearMetadata();
        await this.#fetchSleeper.sleep(Math.min(MAX_RETRY_BACKOFF_MS, this.#parts.retryBackoffMs * 2 ** Math.min(failures - 1, 5)));
      }
    }
  }

  /** Hands due batches to the handler one at a time, and commits them. */
  async #dispatch(): Promise<void> {
    while (this.#running) {
      const now = Date.now();
      const ready = this.#nextReady(now);
      if (ready !== undefined) {
        try {
          await this.#handle(ready);
        } catch {
          // #handle settles handler and commit failures itself; anything else must not end the loop.
          this.#parts.stage.error(ERRORS.BUS_UNAVAILABLE.code);
          await this.#dispatchSleeper.sleep(this.#parts.retryBackoffMs);
        }
        // Room in the queues again: the fetcher may be waiting for it.
        this.#fetchSleeper.wakeAll();
        continue;
      }
      let nextDueMs = now + FETCH_IDLE_WAIT_MS;
      for (const queue of this.#queues.values()) {
        if (queue.messages.length === 0) continue;
        nextDueMs = Math.min(nextDueMs, Math.max(queue.notBeforeMs, queue.firstArrivalMs + this.#parts.options.maxBatchWaitMs));
      }
      // Woken early when a fetch brings messages (a batch may be full now) or on close.
      await this.#dispatchSleeper.sleep(Math.max(1, nextDueMs - now));
    }
  }

  /** Brings positions in line with the current assignment: revoked partitions go, new ones start at their committed offset. */
  async #reconcile(): Promise<void> {
    this.#assignmentDirty = false;
    const topic = this.#parts.topic;
    const assigned = new Set(this.#consumer.assignments?.find((a) => a.topic === topic)?.partitions ?? []);
    for (const partition of [...this.#positions.keys()]) {
      if (assigned.has(partition)) continue;
      this.#newAssignmentEpoch();
      this.#positions.delete(partition);
      this.#committed.delete(partition);
      this.#queues.delete(partition);
      this.#attempts.delete(partition);
      this.#highWatermarks.delete(partition);
      this.#forgetLag(partition);
    }
    const added = [...assigned].filter((p) => !this.#positions.has(p));
    if (added.length === 0) return;
    this.#newAssignmentEpoch();
    try {
      const committed = (await withDeadline(this.#consumer.listCommittedOffsets({ topics: [{ topic, partitions: added }] }), CALL_DEADLINE_MS, 'listCommittedOffsets')).get(topic) ?? [];
      let earliest: bigint[] | undefined;
      for (const partition of added) {
        let offset = committed[partition];
        if (offset === undefined || offset < 0n) {
          earliest ??= (await withDeadline(this.#consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST }), CALL_DEADLINE_MS, 'listOffsets')).get(topic) ?? [];
          offset = earliest[partition] ?? 0n;
        }
        this.#positions.set(partition, offset);
        this.#committed.set(partition, offset);
      }
    } catch (err) {
      this.#assignmentDirty = true;
      throw err;
    }
  }

  /** The partition whose batch is due (full, or waited long enough), oldest first. */
  #nextReady(now = Date.now()): number | undefined {
    let best: number | undefined;
    let bestArrival = Infinity;
    for (const [partition, queue] of this.#queues) {
      if (queue.messages.length === 0 || now < queue.notBeforeMs) continue;
      const due = queue.messages.length >= this.#parts.options.maxBatchMessages || now >= queue.firstArrivalMs + this.#parts.options.maxBatchWaitMs;
      if (due && queue.firstArrivalMs < bestArrival) {
        best = partition;
        bestArrival = queue.firstArrivalMs;
      }
    }
    return best;
  }

  /** Hands one partition's batch to the handler; commits on success, seeks back on rejection. */
  async #handle(partition: number): Promise<void> {
    const queue = this.#queues.get(partition) as PartitionQueue;
    const count = Math.min(this.#parts.options.maxBatchMessages, queue.messages.length);
    const messages = queue.messages.splice(0, count);
    const offsets = queue.offsets.splice(0, count);
    const first = offsets[0] as bigint;
    const last = offsets[offsets.length - 1] as bigint;
    // Not confirmed by the group for half a session: it may have expired this member meanwhile.
    if (Date.now() - this.#confirmedAtMs > this.#parts.config.kafka.sessionTimeoutMs / 2) this.#newAssignmentEpoch();
    const batch: ConsumedBatch = {
      topic: this.#parts.topic,
      messages,
      dedupToken: `${this.#parts.topic}:${partition}:${first}-${last}`,
      partition,
      offsets: offsets.map(Number),
      assignmentEpoch: this.#assignmentEpoch,
    };
    const arrival = queue.firstArrivalMs;
    if (queue.messages.length === 0) this.#queues.delete(partition);
    try {
      await this.#parts.handler(batch);
    } catch {
      // Seek back: the same messages lead the partition's queue again, after a growing pause.
      const attempt = (this.#attempts.get(partition) ?? 0) + 1;
      this.#attempts.set(partition, attempt);
      if (!this.#positions.has(partition)) return;
      const rest = this.#queues.get(partition);
      this.#queues.set(partition, {
        messages: [...messages, ...(rest?.messages ?? [])],
        offsets: [...offsets, ...(rest?.offsets ?? [])],
        firstArrivalMs: arrival,
        notBeforeMs: Date.now() + Math.min(MAX_RETRY_BACKOFF_MS, this.#parts.retryBackoffMs * 2 ** Math.min(attempt - 1, 5)),
      });
      return;
    }
    this.#attempts.delete(partition);
    await this.#commit(partition, last + 1n);
  }

  async #commit(partition: number, offset: bigint): Promise<void> {
    for (let attempt = 1; attempt <= COMMIT_ATTEMPTS; attempt++) {
      try {
        await withDeadline(this.#consumer.commit({ offsets: [{ topic: this.#parts.topic, partition, offset, leaderEpoch: -1 }] }), CALL_DEADLINE_MS, 'commit');
        if (this.#positions.has(partition)) {
          this.#committed.set(partition, offset);
          this.#reportLag(partition);
        }
        return;
      } catch {
        this.#parts.stage.error(ERRORS.BUS_UNAVAILABLE.code);
        this.#newAssignmentEpoch();
        if (!this.#positions.has(partition) || !this.#running) return;
        await this.#dispatchSleeper.sleep(this.#parts.retryBackoffMs * attempt);
      }
    }
    // The batch is stored but its offset not committed: read the partition again from the last
    // committed offset (what was stored is recognised downstream and skipped).
    this.#positions.delete(partition);
    this.#queues.delete(partition);
    this.#assignmentDirty = true;
  }

  /** One fetch round over the assigned partitions whose queue has room. */
  async #fetch(): Promise<void> {
    const max = this.#parts.options.maxBatchMessages;
    let queued = 0;
    for (const queue of this.#queues.values()) queued += queue.messages.length;
    // At most one batch ahead per partition, and two batches in memory in all.
    const wanted = queued >= 2 * max ? [] : [...this.#positions.entries()].filter(([p]) => (this.#queues.get(p)?.messages.length ?? 0) < max);
    if (wanted.length === 0) {
      await this.#fetchSleeper.sleep(FETCH_IDLE_WAIT_MS);
      return;
    }
    const waitMs = FETCH_IDLE_WAIT_MS;
    const topic = this.#parts.topic;
    const metadata = await withDeadline(this.#consumer.metadata({ topics: [topic] }), CALL_DEADLINE_MS, 'metadata');
    const topicMetadata = metadata.topics.get(topic);
    if (!topicMetadata) throw createError('BUS_UNAVAILABLE', `topic ${topic} not found`);
    const byLeader = new Map<number, Array<[number, bigint]>>();
    for (const entry of wanted) {
      const leader = topicMetadata.partitions[entry[0]]?.leader ?? -1;
      if (leader < 0) continue;
      const list = byLeader.get(leader) ?? [];
      list.push(entry);
      byLeader.set(leader, list);
    }
    await Promise.all(
      [...byLeader].map(async ([leader, entries]) => {
        let response: FetchResponse;
        try {
          response = await withDeadline(this.#consumer.fetch({
            node: leader,
            maxWaitTime: waitMs,
            minBytes: 1,
            maxBytes: FETCH_MAX_BYTES,
            topics: [
              {
                topicId: topicMetadata.id,
                partitions: entries.map(([partition, fetchOffset]) => ({
                  partition,
                  fetchOffset,
                  partitionMaxBytes: FETCH_PARTITION_MAX_BYTES,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                })),
              },
            ],
          }), waitMs + CALL_DEADLINE_MS, 'fetch');
        } catch (err) {
          if (hasApiError(err, 'OFFSET_OUT_OF_RANGE')) {
            await this.#resetOutOfRange(entries.map(([p]) => p));
            return;
          }
          throw err;
        }
        this.#accept(response, new Map(entries));
      }),
    );
  }

  /** Appends fetched records to their partitions' queues. */
  #accept(response: FetchResponse, requested: Map<number, bigint>): void {
    const arrival = Date.now();
    let received = 0;
    for (const topicResponse of response.responses) {
      for (const part of topicResponse.partitions) {
        const partition = part.partitionIndex;
        // Skip answers to a position that changed meanwhile (revoked, seeked back).
        if (this.#positions.get(partition) !== requested.get(partition)) continue;
        this.#highWatermarks.set(partition, part.highWatermark);
        const batches = part.records ?? [];
        if (batches.length === 0) {
          this.#reportLag(partition);
          continue;
        }
        const position = requested.get(partition) as bigint;
        let queue = this.#queues.get(partition);
        for (const recordBatch of batches) {
          if (recordBatch.attributes & CONTROL_BATCH) continue;
          for (const record of recordBatch.records) {
            const offset = recordBatch.firstOffset + BigInt(record.offsetDelta);
            if (offset < position) continue;
            if (!queue) {
              queue = { messages: [], offsets: [], firstArrivalMs: arrival, notBeforeMs: 0 };
              this.#queues.set(partition, queue);
            }
            queue.messages.push({ key: record.key?.toString('utf8') ?? '', value: record.value?.toString('utf8') ?? '' });
            queue.offsets.push(offset);
            received++;
          }
        }
        const lastBatch = batches[batches.length - 1];
        if (lastBatch) {
          const next = lastBatch.firstOffset + BigInt(lastBatch.lastOffsetDelta) + 1n;
          if (next > position) this.#positions.set(partition, next);
        }
        this.#reportLag(partition);
      }
    }
    // Not counted as the bus stage's `received`: publish() counted these once already (in whichever
    // process published them); the consuming stage (the sink) counts them as its own received.
    if (received > 0) this.#dispatchSleeper.wakeAll();
  }

  /** auto.offset.reset = earliest: a position outside the log (retention, recreated topic) restarts at the log start. */
  async #resetOutOfRange(partitions: number[]): Promise<void> {
    const topic = this.#parts.topic;
    const earliest = (await withDeadline(this.#consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST }), CALL_DEADLINE_MS, 'listOffsets')).get(topic) ?? [];
    const latest = (await withDeadline(this.#consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.LATEST }), CALL_DEADLINE_MS, 'listOffsets')).get(topic) ?? [];
    for (const partition of partitions) {
      const position = this.#positions.get(partition);
      const low = earliest[partition] ?? 0n;
      const high = latest[partition] ?? low;
      if (position === undefined || (position >= low && position <= high)) continue;
      this.#positions.set(partition, low);
      this.#queues.delete(partition);
      this.#parts.stage.dropped('bus_offset_out_of_range');
    }
  }

  async #refreshLag(): Promise<void> {
    if (this.#lagRefreshing || this.#positions.size === 0) return;
    this.#lagRefreshing = true;
    const topic = this.#parts.topic;
    try {
      const latest = (await withDeadline(this.#consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.LATEST }), CALL_DEADLINE_MS, 'listOffsets')).get(topic) ?? [];
      for (const partition of this.#positions.keys()) {
        const high = latest[partition];
        if (high === undefined) continue;
        this.#highWatermarks.set(partition, high);
        this.#reportLag(partition);
      }
    } catch {
      // The broker is away; the next round tries again.
    } finally {
      this.#lagRefreshing = false;
    }
  }

  #reportLag(partition: number): void {
    const high = this.#highWatermarks.get(partition);
    const committed = this.#committed.get(partition);
    if (high === undefined || committed === undefined) return;
    const lag = high > committed ? Number(high - committed) : 0;
    this.#parts.metrics.consumerLag.set({ topic: this.#parts.topic, partition: String(partition) }, lag);
  }

  #forgetLag(partition: number): void {
    this.#parts.metrics.consumerLag.remove({ topic: this.#parts.topic, partition: String(partition) });
  }
}
