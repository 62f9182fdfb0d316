import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_FIELDS, NormalizedEventSchema } from '../../core/event.ts';
import { EVENT_COLUMNS, MIGRATIONS, type SchemaContext } from '../../store/schema.ts';
import type { Store } from '../../store/client.ts';
import { createTestStore, dropTestStore } from '../helpers/store.ts';

/** The ClickHouse type family each JSON-schema type must map to. */
function expectedFamily(schema: { type?: string; anyOf?: unknown[] }): RegExp {
  if (schema.anyOf) return /^LowCardinality\(String\)$/;
  switch (schema.type) {
    case 'integer':
      return /^U?Int(8|16|32|64)$/;
    case 'array':
      return /^Array\(LowCardinality\(String\)\)$/;
    default:
      return /^(LowCardinality\()?String\)?( CODEC.*)?$/;
  }
}

describe('events schema', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore();
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('has exactly the event fields, in order, with matching types', () => {
    expect(EVENT_COLUMNS.map(([name]) => name)).toEqual(EVENT_FIELDS);
    for (const [name, type] of EVENT_COLUMNS) {
      const field = NormalizedEventSchema.properties[name as keyof typeof NormalizedEventSchema.properties] as { type?: string; anyOf?: unknown[] };
      if (name === 'time' || name === 'observed_time') expect(type).toMatch(/^DateTime64\(3/);
      else expect(type, name).toMatch(expectedFamily(field));
    }
  });

  it('matches what ClickHouse actually created', async () => {
    const rows = await store.query<{ name: string; type: string }>(`SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events' ORDER BY position`, {
      db: store.database,
    });
    expect(rows.map((r) => r.name)).toEqual(EVENT_FIELDS);
  });

  it('has unique, ordered migration ids', () => {
    const ids = MIGRATIONS.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('generates ON CLUSTER, Replicated engines and Distributed tables for a cluster', () => {
    const ctx: SchemaContext = { database: 'zt', cluster: 'prod', retentionDays: 400, anomalyRetentionDays: 1, deadLetterRetentionDays: 1, auditRetentionDays: 1 };
    const sql = MIGRATIONS.flatMap((m) => m.statements(ctx)).join('\n');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS zt.events_local ON CLUSTER prod');
    expect(sql).toMatch(/ReplicatedMergeTree\('\/clickhouse\/tables\/\{shard\}\/zt\/events', '\{replica\}'\)/);
    expect(sql).toContain('ENGINE = Distributed(prod, zt, events_local');
    expect(sql).not.toMatch(/ENGINE = MergeTree/);
  });
});
