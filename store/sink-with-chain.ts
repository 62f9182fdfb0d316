// The sink as every deployment runs it: batches from the bus stored in ClickHouse, each stored
// batch then appended to the tamper-evidence hash chain (store/chain.ts) before it is
// acknowledged. Live roles, the backtest and the benchmarks all start their sink here, so none of
// them can store rows the chain does not cover.
import { repairEvent, type DeadLetter, type NormalizedEvent } from '../core/event.ts';
import { MemoryBus } from '../bus/memory.ts';
import { TOPICS, type BusMessage, type Topic } from '../bus/port.ts';
import { createBatchChain } from './chain.ts';
import { createSink, type Sink, type SinkOptions } from './sink.ts';

export interface SinkWithChainOptions extends Omit<SinkOptions, 'afterInsert' | 'whileInserting'> {
  /**
   * Name of this writer's chain: each concurrent sink process needs its own (see
   * BatchChainOptions.chainId). @default 'default'
   */
  readonly chainId?: string;
}

/** Loads the chain's head, then starts the sink with the chain recording every stored batch. */
export async function createSinkWithChain(options: SinkWithChainOptions): Promise<Sink> {
  const { chainId, ...sinkOptions } = options;
  const chain = await createBatchChain(options.store, chainId === undefined ? {} : { chainId });
  return createSink({
    ...sinkOptions,
    // The batch is hashed while the engine inserts it, and recorded once the insert succeeded.
    whileInserting: (events, rows) => chain.prepare(events, rows),
    afterInsert: (events, dedupToken, rows) => chain.record(events, dedupToken, rows),
  });
}

/** Failed attempts to store one batch before a bus-sink path gives up (a live sink retries forever). */
const MAX_STORE_ATTEMPTS = 5;
/** Pause before the bus hands a failed batch to the sink again, in milliseconds. */
const RETRY_BACKOFF_MS = 200;

/** The sink's store, metrics and config (as SinkOptions declares them), and the bus's bound. */
export interface BusSinkPathOptions extends Pick<SinkOptions, 'store' | 'metrics' | 'config'> {
  /** Messages queued on the bus before a write waits. @default config.bus.maxInFlightMessages */
  readonly maxInFlightMessages?: number;
}

/** Writes that travel the live path and resolve once the sink has stored (and chained) them. */
export interface BusSinkPath {
  storeEvents(events: readonly NormalizedEvent[]): Promise<void>;
  storeDeadLetters(letters: readonly DeadLetter[]): Promise<void>;
  /** Stops the sink (after what is in hand) and the bus. */
  close(): Promise<void>;
}

/**
 * The live path inside one process, for replays (backtest, evaluation): a memory bus whose
 * publish resolves once the sink with its chain has stored the messages, serialized as the
 * collector serializes them. Unlike a live sink, a store that fails the same batch
 * MAX_STORE_ATTEMPTS times in a row ends the path: the pending write rejects with its error.
 */
export async function createBusSinkPath(options: BusSinkPathOptions): Promise<BusSinkPath> {
  const { store, metrics, config } = options;
  const bus = new MemoryBus({
    acknowledgeWhenHandled: true,
    maxInFlightMessages: options.maxInFlightMessages ?? config.bus.maxInFlightMessages,
    retryBackoffMs: RETRY_BACKOFF_MS,
  });
  let failure: unknown;
  // Failed writes since a batch was last stored whole (events, chain record and all).
  let failures = 0;
  const giveUpAfterRepeatedFailures =
    <A extends unknown[]>(write: (...args: A) => Promise<void>, completesBatch: boolean) =>
    async (...args: A): Promise<void> => {
      try {
        await write(...args);
        if (completesBatch) failures = 0;
      } catch (err) {
        if (++failures >= MAX_STORE_ATTEMPTS) {
          failure = err;
          void bus.close();
        }
        throw err;
      }
    };
  const sink = await createSinkWithChain({
    bus,
    store: {
      ...store,
      // An events insert is complete only once the chain has recorded it (onStored below).
      insertEvents: giveUpAfterRepeatedFailures(store.insertEvents, false),
      insertDeadLetters: giveUpAfterRepeatedFailures(store.insertDeadLetters, true),
      insertRows: giveUpAfterRepeatedFailures(store.insertRows, false),
    },
    metrics,
    config,
    onStored: () => {
      failures = 0;
    },
  });
  const publish = async (topic: Topic, messages: BusMessage[]): Promise<void> => {
    if (messages.length === 0) return;
    try {
      await bus.publish(topic, messages);
    } catch (err) {
      throw failure ?? err;
    }
  };
  return {
    // Each event travels with its text (repaired first, as the collector does), so the sink stores the text without parsing it.
    storeEvents: (events) => publish(TOPICS.events, events.map((e) => ({ key: e.dst_service, value: JSON.stringify(repairEvent(e)), payload: e }))),
    storeDeadLetters: (letters) => publish(TOPICS.deadLetters, letters.map((d) => ({ key: d.source, value: JSON.stringify(d) }))),
    async close() {
      await sink.close();
      await bus.close();
    },
  };
}
