// Picks the bus for this process: the in-memory bus (embedded) when no Kafka broker is configured,
// otherwise Kafka. The Kafka client is loaded only in the second case.
import type { FrozenConfig } from '../core/config.ts';
import type { Metrics } from '../core/metrics.ts';
import { MemoryBus } from './memory.ts';
import type { Bus } from './port.ts';

export interface CreateBusOptions {
  /**
   * In-memory bus only: `publish` resolves once the consumers (the sink, in this process) have
   * handled the messages, so an ingest answer means stored. Set when this process runs the sink.
   * @default false
   */
  readonly acknowledgeWhenHandled?: boolean;
}

/** Creates the configured bus: MemoryBus when `kafka.brokers` is empty, else the Kafka bus. */
export async function createBus(config: FrozenConfig, metrics: Metrics, options: CreateBusOptions = {}): Promise<Bus> {
  if (config.kafka.brokers.length === 0) {
    return new MemoryBus({
      maxInFlightMessages: config.bus.maxInFlightMessages,
      onInFlight: (count) => metrics.busInFlight.set(count),
      acknowledgeWhenHandled: options.acknowledgeWhenHandled ?? false,
      stage: metrics.stage('bus'),
    });
  }
  const { createKafkaBus } = await import('./kafka.ts');
  return createKafkaBus(config, metrics);
}
