// Test helper: runs messages through a real sink on a fresh memory bus, start to finish.
import { MemoryBus, type MemoryBusOptions } from '../../bus/memory.ts';
import { TOPICS, type BusMessage } from '../../bus/port.ts';
import type { NormalizedEvent } from '../../core/event.ts';
import { createSink, type SinkOptions } from '../../store/sink.ts';

/** Events as the collector publishes them: keyed by destination service, JSON text. */
export function toEventMessages(events: readonly NormalizedEvent[]): BusMessage[] {
  return events.map((e) => ({ key: e.dst_service, value: JSON.stringify(e) }));
}

/**
 * Publishes `messages` on the events topic of a new memory bus, waits until a sink built with
 * `options` has handled every one of them, then closes the sink and the bus.
 */
export async function drainThroughSink(options: Omit<SinkOptions, 'bus'>, messages: readonly BusMessage[], busOptions: MemoryBusOptions = {}): Promise<void> {
  const bus = new MemoryBus(busOptions);
  const sink = await createSink({ ...options, bus });
  await bus.publish(TOPICS.events, messages);
  await bus.whenIdle();
  await sink.close();
  await bus.close();
}
