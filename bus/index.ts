// Picks the bus for this process: the in-memory bus (embedded) when no Kafka broker is configured,
// otherwise Kafka. The Kafka client is loaded only in the second case.
import type { FrozenConfig } from '../core/config.ts';
import type { Metrics } from '../core/metrics.ts';
import { MemoryBus } from './memory.ts';
import type { Bus } from './port.ts';

/** Creates the configured bus: MemoryBus when `kafka.brokers` is empty, else the Kafka bus. */
export async function createBus(config: FrozenConfig, metrics: Metrics): Promise<Bus> {
  if (config.kafka.brokers.length === 0) {
    return new MemoryBus({ maxInFlightMessages: config.bus.maxInFlightMessages, onInFlight: (count) => metrics.busInFlight.set(count) });
  }
  const { createKafkaBus } = await import('./kafka.ts');
  return createKafkaBus(config, metrics);
}
