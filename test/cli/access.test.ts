import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { hasCode } from '../../core/errors.ts';
import type { Store } from '../../store/client.ts';
import { parseCliTime, readCliActor, runAccess } from '../../cli/commands/access.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { captureIo } from './io.ts';

const NOW = Date.now();
const ALICE = 'spiffe://cluster.local/ns/shop/sa/alice';

function makeEvent(i: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', NOW),
    event_id: randomUUID(),
    time: NOW - (i + 1) * 3_600_000,
    src_identity: i % 2 ? ALICE : 'bob@example.com',
    dst_service: 'payments',
    method: 'POST',
    path: `/charge/${i}`,
    status: i % 4 === 0 ? 403 : 200,
    decision: i % 4 === 0 ? 'deny' : 'allow',
    decision_reason: i % 4 === 0 ? 'policy[no-bob]' : '',
    raw: `raw,${i},"quoted"`,
    ...overrides,
  };
}

describe('ztwatch access', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    // 40 events, one per hour back from now: 20 for alice, 20 for bob; 10 denied.
    await store.insertEvents(
      Array.from({ length: 40 }, (_, i) => makeEvent(i)),
      'cli-seed',
    );
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  const audit = () =>
    store.query<{ actor: string; role: string; action: string; filters: string; rows: string; status: number }>(
      `SELECT actor, role, action, filters, toString(rows) AS rows, status FROM ${store.database}.audit_log ORDER BY time`,
    );

  it('prints a table of one identity, newest first, and audits the run as cli:<user>', async () => {
    const io = captureIo();
    expect(await runAccess(['--identity', ALICE, '--limit', '5'], io, store)).toBe(0);
    const lines = io.out().trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+IDENTITY\s+METHOD\s+SERVICE\s+PATH\s+STATUS\s+DECISION\s+REASON$/);
    expect(lines).toHaveLength(6);
    expect(lines[1]).toContain('/charge/1 ');
    expect(io.err()).toContain('5 row(s)');
    const [row] = (await audit()).slice(-1);
    expect(row).toMatchObject({ actor: readCliActor(), role: 'cli', action: 'access.query', rows: '5', status: 200 });
    expect(JSON.parse(row!.filters)).toMatchObject({ identity: ALICE, limit: '5' });
  });

  it('exports NDJSON and CSV with filters, oldest first', async () => {
    const nd = captureIo();
    await runAccess(['--decision', 'deny', '--format', 'ndjson', '--from', '30h'], nd, store);
    const items = nd.out().trim().split('\n').map((l) => JSON.parse(l) as { decision: string; decision_reason: string; time: string; raw?: string });
    // Denied: i = 0, 4, …, 28, i.e. 1, 5, …, 29 hours ago — all within 30 h.
    expect(items.map((i) => i.decision)).toEqual(Array(8).fill('deny'));
    expect(items[0]!.time < items[7]!.time).toBe(true);
    expect(items[0]).not.toHaveProperty('raw');
    expect((await audit()).at(-1)).toMatchObject({ action: 'access.export', rows: '8' });

    const csv = captureIo();
    await runAccess(['--identity-prefix', 'bob@', '--format', 'csv', '--raw', '--limit', '3'], csv, store);
    const lines = csv.out().split('\r\n').filter(Boolean);
    expect(lines[0]!.endsWith(',raw')).toBe(true);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain('"raw,');
    expect(lines[1]).toContain('""quoted""');
  });

  it('counts', async () => {
    const io = captureIo();
    await runAccess(['--service', 'payments', '--count'], io, store);
    expect(io.out()).toBe('40\n');
  });

  it('refuses bad flags with a usage error', async () => {
    for (const args of [['--format', 'xml'], ['--decision', 'maybe'], ['--limit', 'ten'], ['--from', 'last tuesday'], ['--no-such-flag'], ['--order', 'up']]) {
      const io = captureIo();
      await expect(runAccess(args, io, store)).rejects.toSatisfy((err: unknown) => hasCode(err, 'ZTW_CLI_USAGE'));
    }
  });

  it('reads absolute, date-only and relative times', () => {
    expect(parseCliTime('2025-03-01', '--from', NOW)).toBe(Date.UTC(2025, 2, 1));
    expect(parseCliTime('2025-03-01T12:00:00Z', '--from', NOW)).toBe(Date.UTC(2025, 2, 1, 12));
    expect(parseCliTime('30d', '--from', NOW)).toBe(NOW - 30 * 86_400_000);
    expect(parseCliTime('15m', '--from', NOW)).toBe(NOW - 900_000);
  });
});
