// Migration 301: a sink batch bigger than ClickHouse's default wide-part size (10 MiB uncompressed)
// is written as one compact part, for `events` and for its identity projection, instead of a
// directory of files per column.
import { describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../../core/event.ts';
import type { Store } from '../../../store/client.ts';
import { IDENTITY_PROJECTION } from '../../../store/migrations/compliance.ts';
import { EVENTS_COMPACT_PART_BYTES } from '../../../store/migrations/sink.ts';
import { useTestStore } from '../../helpers/store.ts';

/** ClickHouse's default `min_bytes_for_wide_part`. */
const CLICKHOUSE_DEFAULT_WIDE_BYTES = 10 * 1024 * 1024;
// Half past the previous hour: a batch's few seconds fall in one day, so in one partition.
const BASE_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 1_800_000;

/** `count` events of about 1 KB each (a raw line of 900 characters, as proxies log them). */
function batch(count: number, offset: number): NormalizedEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `c${offset + i}`,
    src_identity: `spiffe://cluster.local/ns/shop/sa/client-${i % 40}`,
    dst_service: `svc-${i % 10}`,
    decision: 'allow' as const,
    raw: `${offset + i} ${'x'.repeat(900)}`,
  }));
}

interface PartRow {
  part_type: string;
  rows: string;
  bytes: string;
}

async function newestPart(store: Store, from: 'parts' | 'projection_parts'): Promise<PartRow | undefined> {
  const [row] = await store.query<PartRow>(
    `SELECT part_type, toString(rows) AS rows, toString(data_uncompressed_bytes) AS bytes FROM system.${from}
     WHERE database = {db:String} AND table = 'events' AND active ${from === 'projection_parts' ? `AND name = {projection:String}` : ''}
     ORDER BY modification_time DESC, ${from === 'projection_parts' ? 'parent_name' : 'name'} DESC LIMIT 1`,
    { db: store.database, projection: IDENTITY_PROJECTION },
  );
  return row;
}

describe('migration 301: events parts of a sink batch', () => {
  const db = useTestStore();

  it('stores a batch above the default wide-part size as one compact part, projection included', { timeout: 60_000 }, async () => {
    await db.store.insertEvents(batch(12_000, 0), 'compact-1');
    const part = await newestPart(db.store, 'parts');
    // The premise: with ClickHouse's default this batch would have been a wide part.
    expect(Number(part?.bytes)).toBeGreaterThan(CLICKHOUSE_DEFAULT_WIDE_BYTES);
    expect(Number(part?.bytes)).toBeLessThan(EVENTS_COMPACT_PART_BYTES);
    expect(part).toMatchObject({ part_type: 'Compact', rows: '12000' });
    expect((await newestPart(db.store, 'projection_parts'))?.part_type).toBe('Compact');

    // The same batch size with the default setting back: wide (what the migration changed).
    await db.store.command(`ALTER TABLE ${db.store.database}.events MODIFY SETTING min_bytes_for_wide_part = ${CLICKHOUSE_DEFAULT_WIDE_BYTES}`);
    await db.store.insertEvents(batch(12_000, 12_000), 'compact-2');
    expect((await newestPart(db.store, 'parts'))?.part_type).toBe('Wide');
  });
});
