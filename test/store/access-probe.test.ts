// Access-history pages read through time-bounded probes (the newest hour first, then wider) equal
// the pages of the unbounded query and of an independent computation, whatever the probes find:
// a full first probe, probes that widen, probes that give up and read the whole range.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { queryAccessPage, type AccessFilters, type AccessOrder, type AccessPosition, type AccessProbePlan } from '../../store/access-queries.ts';
import { makeEvent } from '../helpers/access-events.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const NOW_MS = Date.now();

/**
 * Dense recent traffic (every 20 s over the last two hours), sparse history (every 5 h over 20
 * days), a few rows stamped in the future (a reporter's clock ahead) and ties on time; denials on
 * `payments` are rare (every 13th row), so a page of them needs wide probes.
 */
function buildEvents(): NormalizedEvent[] {
  const events: NormalizedEvent[] = [];
  const add = (i: number, timeMs: number) =>
    events.push(
      makeEvent(i, {
        event_id: randomUUID(),
        time: timeMs,
        decision: i % 13 === 0 ? 'deny' : 'allow',
        status: i % 13 === 0 ? 403 : 200,
      }),
    );
  let i = 0;
  for (let t = NOW_MS - 2 * HOUR_MS; t < NOW_MS; t += 20_000) {
    add(i++, t);
    if (i % 10 === 0) add(i++, t); // the same millisecond twice
  }
  for (let t = NOW_MS - 20 * 24 * HOUR_MS; t < NOW_MS - 2 * HOUR_MS; t += 5 * HOUR_MS) add(i++, t);
  for (let k = 1; k <= 3; k++) add(i++, NOW_MS + k * 10 * MINUTE_MS);
  return events;
}

const EVENTS = buildEvents();

/** The matching event ids in keyset order, computed without the store. */
function expected(filters: AccessFilters, order: AccessOrder): string[] {
  const match = EVENTS.filter(
    (e) =>
      (filters.service === undefined || e.dst_service === filters.service) &&
      (filters.decision === undefined || e.decision === filters.decision) &&
      (filters.identity === undefined || e.src_identity === filters.identity) &&
      (filters.fromMs === undefined || e.time >= filters.fromMs) &&
      (filters.toMs === undefined || e.time < filters.toMs),
  );
  const sign = order === 'asc' ? 1 : -1;
  match.sort((a, b) => sign * (a.time - b.time || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0)));
  return match.map((e) => e.event_id);
}

async function readAll(store: Store, filters: AccessFilters, order: AccessOrder, limit: number, plan: AccessProbePlan): Promise<string[][]> {
  const pages: string[][] = [];
  let after: AccessPosition | undefined;
  for (let n = 0; n < 1000; n++) {
    const page = await queryAccessPage(store, filters, { limit, order, after, includeRaw: false }, plan);
    pages.push(page.rows.map((r) => r.event_id));
    if (!page.next) return pages;
    after = page.next;
  }
  throw new Error('pagination did not end');
}

describe('access-history pages through time-bounded probes', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    await store.insertEvents(EVENTS, 'probe-seed');
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  const unprobed: AccessProbePlan = { firstSpanMs: 0, maxProbes: 0 };
  const plans: Array<[string, AccessProbePlan]> = [
    ['the default plan (an hour first)', { firstSpanMs: HOUR_MS, maxProbes: 3 }],
    ['a one-minute first probe, three probes', { firstSpanMs: MINUTE_MS, maxProbes: 3 }],
    ['a one-second first probe, one probe', { firstSpanMs: 1000, maxProbes: 1 }],
  ];
  const cases: Array<[string, AccessFilters]> = [
    ['all history', {}],
    ['denials of one service', { service: 'payments', decision: 'deny' }],
    ['one identity, a day that ends in the past', { identity: EVENTS[1]?.src_identity, fromMs: NOW_MS - 30 * HOUR_MS, toMs: NOW_MS - 90 * MINUTE_MS }],
    ['from a bound, no end', { fromMs: NOW_MS - 10 * 24 * HOUR_MS }],
    ['no match', { service: 'nowhere' }],
  ];

  for (const [caseName, filters] of cases) {
    it(`pages "${caseName}" exactly as the unbounded query, both orders, under every plan`, async () => {
      for (const order of ['desc', 'asc'] as const) {
        const want = expected(filters, order);
        const raw = await readAll(store, filters, order, 25, unprobed);
        expect(raw.flat()).toEqual(want);
        for (const [, plan] of plans) {
          // Same pages, same boundaries: the cursors equal the unbounded query's.
          expect(await readAll(store, filters, order, 25, plan)).toEqual(raw);
        }
      }
    });
  }

  it('includes rows stamped after now in the newest page of all history', async () => {
    const page = await queryAccessPage(store, {}, { limit: 5, order: 'desc', includeRaw: false });
    expect(page.rows.slice(0, 3).map((r) => r.time)).toEqual([NOW_MS + 30 * MINUTE_MS, NOW_MS + 20 * MINUTE_MS, NOW_MS + 10 * MINUTE_MS]);
  });

  it('answers the newest page of all history from one probe of the last hour', async () => {
    // The real store, with the statements it is sent written down.
    const sent: string[] = [];
    const recording: Store = Object.create(store) as Store;
    recording.query = <T>(sql: string, params?: Record<string, unknown>) => {
      if (sql.includes('.events')) sent.push(sql);
      return store.query<T>(sql, params);
    };
    const page = await queryAccessPage(recording, {}, { limit: 20, order: 'desc', includeRaw: false });
    expect(page.rows.map((r) => r.event_id)).toEqual(expected({}, 'desc').slice(0, 20));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toContain('{probe_ms:Int64}');
    // Rare rows (fewer than a page): every probe comes back short, then the whole range is read.
    sent.length = 0;
    const denied = await queryAccessPage(recording, { service: 'payments', decision: 'deny' }, { limit: 20, order: 'desc', includeRaw: false });
    expect(denied.rows.map((r) => r.event_id)).toEqual(expected({ service: 'payments', decision: 'deny' }, 'desc').slice(0, 20));
    expect(sent.length).toBeGreaterThan(1);
  });
});
