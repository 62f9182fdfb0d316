import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent } from '../../core/event.ts';
import type { FrozenConfig } from '../../core/config.ts';
import type { Store } from '../../store/client.ts';
import { readRetention, runRetention } from '../../cli/commands/retention.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { captureIo } from './io.ts';

describe('ztwatch retention', () => {
  let store: Store;
  let config: FrozenConfig;
  const oldest = Date.UTC(2024, 0, 2, 3, 4, 5);
  beforeAll(async () => {
    config = createTestConfig({ clickhouse: { retentionDays: 3650, auditRetentionDays: 3000 } });
    store = await createTestStore(config);
    await store.insertEvents(
      [oldest, Date.UTC(2025, 5, 1)].map((time) => ({ ...createEmptyEvent('envoy', time), event_id: randomUUID(), time })),
      'retention-seed',
    );
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('reports rows, bytes, oldest/newest and retention per table', async () => {
    const report = await readRetention(store, config);
    const events = report.find((r) => r.table === 'events');
    expect(events).toMatchObject({ rows: 2, timeColumn: 'time', oldest: '2024-01-02 03:04:05.000', newest: '2025-06-01 00:00:00.000', configDays: 3650, tableDays: 3650 });
    expect(events!.bytesOnDisk).toBeGreaterThan(0);
    expect(report.find((r) => r.table === 'audit_log')).toMatchObject({ configDays: 3000, tableDays: 3000, rows: 0, oldest: null });
    expect(report.find((r) => r.table === 'deadletters')).toMatchObject({ configDays: 30, tableDays: 30 });
    expect(report.map((r) => r.table)).not.toContain('schema_migrations');
  });

  it('shows where config and table disagree', async () => {
    const changed = createTestConfig({ clickhouse: { database: store.database, retentionDays: 90 } });
    const io = captureIo();
    await runRetention([], io, store, changed);
    const line = io.out().split('\n').find((l) => l.startsWith('events '));
    expect(line).toContain('3650 d (config: 90 d, applies to new tables)');
    expect(io.out().split('\n')[0]).toMatch(/^TABLE\s+ROWS\s+ON DISK\s+OLDEST\s+NEWEST\s+RETENTION$/);
  });
});
