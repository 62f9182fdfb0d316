// The in-memory bus of the embedded deployment: one process, bounded queues, the same
// at-least-once contract as Kafka (a rejected batch is redelivered with the same dedup token).
//
// Dedup tokens name this bus instance (a random run id) as well as the offset range: offsets start
// at 0 again on every start, and ClickHouse remembers tokens across restarts, so a token without
// the run id would make a new batch look like a retry of an old one and be dropped.
//
// With `acknowledgeWhenHandled`, `publish` resolves only once every consumer group has handled
// the messages (the sink: stored them), so a collector's answer means "stored" (group commit:
// many publishers share one handled batch).
import { randomUUID } from 'node:crypto';
import type { Bus, BatchHandler, BusMessage, ConsumedBatch, SubscribeOptions, Subscription, Topic } from './port.ts';
import { codeOf, createError } from '../core/errors.ts';
import type { StageMetrics } from '../core/metrics.ts';

export interface MemoryBusOptions {
  /** Messages published but not yet handled by every group, before `publish` waits. @default 200000 */
  maxInFlightMessages?: number;
  /** Wait before redelivering a batch whose handler rejected, in milliseconds. @default 500 */
  retryBackoffMs?: number;
  /** Called with the in-flight count whenever it changes (metrics). */
  onInFlight?: (count: number) => void;
  /**
   * When true, `publish` resolves once every consumer group has handled the messages, and rejects
   * with ZTW_BUS_CLOSED if the bus closes first. @default false (resolves once queued)
   */
  acknowledgeWhenHandled?: boolean;
  /**
   * With `acknowledgeWhenHandled`: a partial batch is handed over once no message arrived for this
   * long (still at most the subscriber's maxBatchWaitMs after it started filling), in ms. @default 10
   */
  ackLingerMs?: number;
  /** Stage counters (`metrics.stage('bus')`): received, sent, dropped{reason}, errors{code}. */
  stage?: StageMetrics;
  /** Identity of this bus instance in dedup tokens. @default a random UUID */
  runId?: string;
}

interface GroupState {
  readonly options: SubscribeOptions;
  readonly handler: BatchHandler;
  /** Sequence number of the next message this group will read. */
  cursor: number;
  running: boolean;
  /** Stopping, but first handling every message already published. */
  draining: boolean;
  closed: boolean;
  wake: (() => void) | undefined;
  loop: Promise<void>;
}

interface AckWaiter {
  /** Sequence number just past the publisher's last message. */
  readonly end: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface TopicState {
  /** Messages not yet consumed by every group; `base` is the sequence number of log[0]. */
  log: BusMessage[];
  base: number;
  groups: Map<string, GroupState>;
  /** Publishers waiting for their messages to be handled, in order of `end`. */
  acks: AckWaiter[];
}

const NO_STAGE: StageMetrics = { received: () => undefined, sent: () => undefined, dropped: () => undefined, error: () => undefined };

/** The embedded bus; `whenIdle()` lets backtests and tests wait until every message is handled. */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  /** Identity of this instance, part of every dedup token it hands out. */
  readonly runId: string;
  readonly #topics = new Map<string, TopicState>();
  readonly #maxInFlight: number;
  readonly #retryBackoffMs: number;
  readonly #onInFlight: ((count: number) => void) | undefined;
  readonly #acknowledgeWhenHandled: boolean;
  readonly #ackLingerMs: number;
  readonly #stage: StageMetrics;
  #inFlight = 0;
  #closed = false;
  #roomWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];

  constructor(options: MemoryBusOptions = {}) {
    this.#maxInFlight = options.maxInFlightMessages ?? 200_000;
    this.#retryBackoffMs = options.retryBackoffMs ?? 500;
    this.#onInFlight = options.onInFlight;
    this.#acknowledgeWhenHandled = options.acknowledgeWhenHandled ?? false;
    this.#ackLingerMs = options.ackLingerMs ?? 10;
    this.#stage = options.stage ?? NO_STAGE;
    this.runId = options.runId ?? randomUUID();
  }

  isSaturated(): boolean {
    return this.#inFlight >= this.#maxInFlight;
  }

  async publish(topic: Topic, messages: readonly BusMessage[]): Promise<void> {
    if (this.#closed) throw this.#refuse(messages.length);
    while (this.isSaturated()) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      if (this.#closed) throw this.#refuse(messages.length);
    }
    const state = this.#topic(topic);
    // Messages are kept only for groups that exist; with no subscriber yet, they wait for the first.
    for (const m of messages) state.log.push(m);
    this.#stage.received(messages.length);
    this.#setInFlight(this.#inFlight + messages.length);
    const end = state.base + state.log.length;
    const handled = this.#acknowledgeWhenHandled && messages.length > 0 ? new Promise<void>((resolve, reject) => state.acks.push({ end, resolve, reject })) : undefined;
    for (const group of state.groups.values()) group.wake?.();
    if (handled) await handled;
  }

  async subscribe(topic: Topic, options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
    if (this.#closed) throw createError('BUS_CLOSED');
    const state = this.#topic(topic);
    if (state.groups.has(options.group)) throw createError('BUS_UNAVAILABLE', `group ${options.group} already consumes ${topic} in this process`);
    const group: GroupState = { options, handler, cursor: state.base, running: true, draining: false, closed: false, wake: undefined, loop: Promise.resolve() };
    state.groups.set(options.group, group);
    group.loop = this.#consume(topic, state, group);
    return {
      // Drains: every message published before close is handled first (or the bus closes).
      close: async () => {
        group.draining = true;
        group.running = false;
        group.wake?.();
        await group.loop;
        group.closed = true;
        state.groups.delete(options.group);
        this.#trim(state);
      },
    };
  }

  /** Resolves when every published message has been handled by every group. */
  whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const loops: Promise<void>[] = [];
    for (const state of this.#topics.values()) {
      for (const group of state.groups.values()) {
        group.running = false;
        group.draining = false;
        group.wake?.();
        loops.push(group.loop);
      }
    }
    await Promise.all(loops);
    for (const state of this.#topics.values()) {
      let low = state.base;
      if (state.groups.size > 0) low = Math.min(...[...state.groups.values()].map((g) => g.cursor));
      const left = state.base + state.log.length - low;
      if (left > 0) this.#stage.dropped('bus_closed', left);
      for (const waiter of state.acks.splice(0)) waiter.reject(createError('BUS_CLOSED', 'the bus closed before these messages were handled'));
    }
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  #refuse(count: number): Error {
    this.#stage.error('ZTW_BUS_CLOSED');
    this.#stage.dropped('bus_closed', count);
    return createError('BUS_CLOSED');
  }

  #topic(topic: string): TopicState {
    let state = this.#topics.get(topic);
    if (!state) {
      state = { log: [], base: 0, groups: new Map(), acks: [] };
      this.#topics.set(topic, state);
    }
    return state;
  }

  async #consume(topic: string, state: TopicState, group: GroupState): Promise<void> {
    const { maxBatchMessages, maxBatchWaitMs } = group.options;
    const active = () => group.running || (group.draining && !this.#closed);
    while (active()) {
      const available = state.base + state.log.length - group.cursor;
      if (available === 0) {
        if (!group.running) return;
        await new Promise<void>((resolve) => (group.wake = resolve));
        group.wake = undefined;
        continue;
      }
      if (available < maxBatchMessages && group.running) {
        // Let a partial batch fill for up to maxBatchWaitMs, or until it is full or we stop. When
        // publishers wait for their acknowledgement, nothing more comes once they have all
        // published: the batch leaves as soon as arrivals pause for ackLingerMs (group commit).
        const deadline = Date.now() + maxBatchWaitMs;
        let seen = state.base + state.log.length;
        while (group.running && state.base + state.log.length - group.cursor < maxBatchMessages && Date.now() < deadline) {
          const waitMs = Math.max(1, Math.min(deadline - Date.now(), this.#acknowledgeWhenHandled ? this.#ackLingerMs : Infinity));
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, waitMs);
            group.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          group.wake = undefined;
          const now = state.base + state.log.length;
          if (this.#acknowledgeWhenHandled && now === seen) break;
          seen = now;
        }
      }
      const start = group.cursor - state.base;
      const count = Math.min(maxBatchMessages, state.base + state.log.length - group.cursor);
      const batch: ConsumedBatch = {
        topic,
        messages: state.log.slice(start, start + count),
        dedupToken: `memory:${this.runId}:${topic}:${group.options.group}:${group.cursor}-${group.cursor + count - 1}`,
      };
      for (;;) {
        try {
          await group.handler(batch);
          break;
        } catch (err) {
          this.#stage.error(codeOf(err, 'ZTW_BUS_UNAVAILABLE'));
          // At-least-once: the same batch, with the same token, again after a pause.
          await new Promise((resolve) => setTimeout(resolve, this.#retryBackoffMs));
          if (this.#closed) return;
        }
      }
      group.cursor += count;
      this.#trim(state);
    }
  }

  /** Drops messages every group has handled, and releases producers waiting for room or for their acknowledgement. */
  #trim(state: TopicState): void {
    if (state.groups.size === 0) return;
    let low = Infinity;
    for (const g of state.groups.values()) low = Math.min(low, g.cursor);
    const done = low - state.base;
    if (done <= 0) return;
    state.log.splice(0, done);
    state.base = low;
    this.#stage.sent(done);
    let acked = 0;
    while (acked < state.acks.length && (state.acks[acked] as AckWaiter).end <= low) (state.acks[acked++] as AckWaiter).resolve();
    if (acked > 0) state.acks.splice(0, acked);
    this.#setInFlight(this.#inFlight - done);
  }

  #setInFlight(count: number): void {
    this.#inFlight = count;
    this.#onInFlight?.(count);
    if (!this.isSaturated()) for (const wake of this.#roomWaiters.splice(0)) wake();
    if (count === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
