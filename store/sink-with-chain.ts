// The sink as every deployment runs it: batches from the bus stored in ClickHouse, each stored
// batch then appended to the tamper-evidence hash chain (store/chain.ts) before it is
// acknowledged. Live roles, the backtest and the benchmarks all start their sink here, so none of
// them can store rows the chain does not cover.
import { createBatchChain } from './chain.ts';
import { createSink, type Sink, type SinkOptions } from './sink.ts';

export interface SinkWithChainOptions extends Omit<SinkOptions, 'afterInsert'> {
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
  return createSink({ ...sinkOptions, afterInsert: (events, dedupToken) => chain.record(events, dedupToken) });
}
