// Topic admin: creates ztwatch's topics (partitions, replication, retention) when they are missing.
import { Admin } from '@platformatic/kafka';
import type { FrozenConfig } from '../../core/config.ts';
import { TOPICS } from '../port.ts';
import { hasApiError, wrapError } from './client-calls.ts';
import { TOPIC_MAX_MESSAGE_BYTES } from './limits.ts';

/** Creates the events and dead-letter topics under the configured prefix when they are missing. */
export async function ensureTopics(config: FrozenConfig, base: { bootstrapBrokers: string[] } & Record<string, unknown>): Promise<void> {
  const kafka = config.kafka;
  const admin = new Admin({ ...base, clientId: `${kafka.clientId}-admin` });
  admin.on('error', () => undefined);
  try {
    const existing = new Set(await admin.listTopics());
    const missing = Object.values(TOPICS)
      .map((t) => `${kafka.topicPrefix}${t}`)
      .filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({
        topics: missing,
        partitions: kafka.partitions,
        replicas: kafka.replicationFactor,
        configs: [
          { name: 'retention.ms', value: String(kafka.retentionHours * 3_600_000) },
          { name: 'max.message.bytes', value: String(TOPIC_MAX_MESSAGE_BYTES) },
        ],
      });
    } catch (err) {
      // Another process may have created them in the meantime.
      if (!hasApiError(err, 'TOPIC_ALREADY_EXISTS')) throw err;
    }
  } catch (cause) {
    throw wrapError(`cannot prepare topics on ${kafka.brokers.join(',')}`, cause);
  } finally {
    await admin.close().catch(() => undefined);
  }
}
