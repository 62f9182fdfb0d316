// The in-memory bus of the embedded deployment: one process, bounded queues, the same
// at-least-once contract as Kafka (a rejected batch is redelivered with the same dedup token).
import type { Bus, BatchHandler, BusMessage, ConsumedBatch, SubscribeOptions, Subscription, Topic } from './port.ts';
import { createError } from '../core/errors.ts';

export interface MemoryBusOptions {
  /** Messages published but not yet handled by every group, before `publish` waits. @default 200000 */
  maxInFlightMessages?: number;
  /** Wait before redelivering a batch whose handler rejected, in milliseconds. @default 500 */
  retryBackoffMs?: number;
  /** Called with the in-flight count whenever it changes (metrics). */
  onInFlight?: (count: number) => void;
}

interface GroupState {
  readonly options: SubscribeOptions;
  readonly handler: BatchHandler;
  /** Sequence number of the next message this group will read. */
  cursor: number;
  running: boolean;
  closed: boolean;
  wake: (() => void) | undefined;
  loop: Promise<void>;
}

interface TopicState {
  /** Messages not yet consumed by every group; `base` is the sequence number of log[0]. */
  log: BusMessage[];
  base: number;
  groups: Map<string, GroupState>;
}

/** The embedded bus; `whenIdle()` lets backtests and tests wait until every message is handled. */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly #topics = new Map<string, TopicState>();
  readonly #maxInFlight: number;
  readonly #retryBackoffMs: number;
  readonly #onInFlight: ((count: number) => void) | undefined;
  #inFlight = 0;
  #closed = false;
  #roomWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];

  constructor(options: MemoryBusOptions = {}) {
    this.#maxInFlight = options.maxInFlightMessages ?? 200_000;
    this.#retryBackoffMs = options.retryBackoffMs ?? 500;
    this.#onInFlight = options.onInFlight;
  }

  isSaturated(): boolean {
    return this.#inFlight >= this.#maxInFlight;
  }

  async publish(topic: Topic, messages: readonly BusMessage[]): Promise<void> {
    if (this.#closed) throw createError('BUS_CLOSED');
    while (this.isSaturated()) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      if (this.#closed) throw createError('BUS_CLOSED');
    }
    const state = this.#topic(topic);
    // Messages are kept only for groups that exist; with no subscriber yet, they wait for the first.
    for (const m of messages) state.log.push(m);
    this.#setInFlight(this.#inFlight + messages.length);
    for (const group of state.groups.values()) group.wake?.();
  }

  async subscribe(topic: Topic, options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
    if (this.#closed) throw createError('BUS_CLOSED');
    const state = this.#topic(topic);
    if (state.groups.has(options.group)) throw createError('BUS_UNAVAILABLE', `group ${options.group} already consumes ${topic} in this process`);
    const group: GroupState = { options, handler, cursor: state.base, running: true, closed: false, wake: undefined, loop: Promise.resolve() };
    state.groups.set(options.group, group);
    group.loop = this.#consume(topic, state, group);
    return {
      close: async () => {
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
        group.wake?.();
        loops.push(group.loop);
      }
    }
    await Promise.all(loops);
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  #topic(topic: string): TopicState {
    let state = this.#topics.get(topic);
    if (!state) {
      state = { log: [], base: 0, groups: new Map() };
      this.#topics.set(topic, state);
    }
    return state;
  }

  async #consume(topic: string, state: TopicState, group: GroupState): Promise<void> {
    const { maxBatchMessages, maxBatchWaitMs } = group.options;
    while (group.running) {
      const available = state.base + state.log.length - group.cursor;
      if (available === 0) {
        await new Promise<void>((resolve) => (group.wake = resolve));
        group.wake = undefined;
        continue;
      }
      if (available < maxBatchMessages) {
        // Let a partial batch fill for up to maxBatchWaitMs, or until it is full or we stop.
        const deadline = Date.now() + maxBatchWaitMs;
        while (group.running && state.base + state.log.length - group.cursor < maxBatchMessages && Date.now() < deadline) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
            group.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          group.wake = undefined;
        }
      }
      const start = group.cursor - state.base;
      const count = Math.min(maxBatchMessages, state.base + state.log.length - group.cursor);
      const batch: ConsumedBatch = {
        topic,
        messages: state.log.slice(start, start + count),
        dedupToken: `memory:${topic}:${group.options.group}:${group.cursor}-${group.cursor + count - 1}`,
      };
      for (;;) {
        try {
          await group.handler(batch);
          break;
        } catch {
          // At-least-once: the same batch, with the same token, again after a pause.
          await new Promise((resolve) => setTimeout(resolve, this.#retryBackoffMs));
          if (this.#closed) return;
        }
      }
      group.cursor += count;
      this.#trim(state);
    }
  }

  /** Drops messages every group has handled, and releases producers waiting for room. */
  #trim(state: TopicState): void {
    if (state.groups.size === 0) return;
    let low = Infinity;
    for (const g of state.groups.values()) low = Math.min(low, g.cursor);
    const done = low - state.base;
    if (done <= 0) return;
    state.log.splice(0, done);
    state.base = low;
    this.#setInFlight(this.#inFlight - done);
  }

  #setInFlight(count: number): void {
    this.#inFlight = count;
    this.#onInFlight?.(count);
    if (!this.isSaturated()) for (const wake of this.#roomWaiters.splice(0)) wake();
    if (count === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
