import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { countAccess, iterateAccess, queryAccessPage, queryAuthzDecisions, type AccessFilters, type AccessOrder } from '../../store/access-queries.ts';
import { IDENTITY_PROJECTION } from '../../store/migrations/compliance.ts';
import { BASE_MS, EVENTS, IDENTITIES, createAccessTestConfig, makeEvent, useAccessStore } from '../helpers/access-events.ts';
import { createTestStore, dropTestStore, useTestStore } from '../helpers/store.ts';

const HOUR_MS = 3_600_000;

/** Every event matching `filters`, in keyset order, computed independently of the store. */
function expected(filters: AccessFilters, order: AccessOrder): string[] {
  const match = EVENTS.filter(
    (e) =>
      (filters.identity === undefined || e.src_identity === filters.identity) &&
      (filters.identityPrefix === undefined || e.src_identity.startsWith(filters.identityPrefix)) &&
      (filters.service === undefined || e.dst_service === filters.service) &&
      (filters.namespace === undefined || e.dst_namespace === filters.namespace) &&
      (filters.decision === undefined || e.decision === filters.decision) &&
      (filters.method === undefined || e.method === filters.method) &&
      (filters.pathPrefix === undefined || e.path.startsWith(filters.pathPrefix)) &&
      (filters.status === undefined || e.status === filters.status) &&
      (filters.fromMs === undefined || e.time >= filters.fromMs) &&
      (filters.toMs === undefined || e.time < filters.toMs),
  );
  const sign = order === 'asc' ? 1 : -1;
  match.sort((a, b) => sign * (a.time - b.time || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0)));
  return match.map((e) => e.event_id);
}

async function readAll(store: Store, filters: AccessFilters, order: AccessOrder, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let after;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await queryAccessPage(store, filters, { limit, order, after, includeRaw: false });
    ids.push(...page.rows.map((r) => r.event_id));
    if (!page.next) return ids;
    after = page.next;
  }
  throw new Error('pagination did not end');
}

describe('access-history queries', () => {
  const db = useAccessStore();

  it('has the identity projection on events', async () => {
    const rows = await db.store.query<{ name: string }>('SELECT name FROM system.projections WHERE database = {db:String} AND table = {t:String}', { db: db.store.database, t: 'events' });
    expect(rows.map((r) => r.name)).toContain(IDENTITY_PROJECTION);
  });

  const cases: Array<[string, AccessFilters]> = [
    ['no filter', {}],
    ['identity', { identity: IDENTITIES[0] }],
    ['identity with a quote', { identity: "o'brien@example.com" }],
    ['identity prefix', { identityPrefix: 'spiffe://cluster.local/ns/shop/' }],
    ['service denied', { service: 'payments', decision: 'deny' }],
    ['namespace, method, status', { namespace: 'prod', method: 'GET', status: 200 }],
    ['path prefix', { pathPrefix: '/api/v1/' }],
    ['time range', { fromMs: BASE_MS + 10 * 60_000, toMs: BASE_MS + 50 * 60_000 }],
  ];
  for (const [name, filters] of cases) {
    it(`pages through "${name}" without duplicates or gaps, both orders`, async () => {
      for (const order of ['desc', 'asc'] as const) {
        const want = expected(filters, order);
        expect(want.length).toBeGreaterThan(0);
        expect(await readAll(db.store, filters, order, 37)).toEqual(want);
      }
      expect(await countAccess(db.store, filters)).toBe(expected(filters, 'asc').length);
    });
  }

  it('returns decision reasons, and raw lines only when asked', async () => {
    const page = await queryAccessPage(db.store, { decision: 'deny' }, { limit: 5, order: 'desc', includeRaw: false });
    expect(page.rows[0]?.decision_reason).toContain('rbac_access_denied');
    expect(page.rows[0]).not.toHaveProperty('raw');
    expect(page.rows[0]?.bytes_in).toEqual(expect.any(Number));
    const raw = await queryAccessPage(db.store, { decision: 'deny' }, { limit: 5, order: 'desc', includeRaw: true });
    expect(raw.rows[0]?.raw).toMatch(/^raw line/);
  });

  it('stays stable while data arrives: new rows neither repeat nor shift earlier pages', async () => {
    const filters = { identity: IDENTITIES[1] };
    const want = expected(filters, 'desc');
    const ids: string[] = [];
    let after;
    let n = 0;
    for (;;) {
      const page = await queryAccessPage(db.store, filters, { limit: 20, order: 'desc', after, includeRaw: false });
      ids.push(...page.rows.map((r) => r.event_id));
      // Newer events for the same identity land between page reads.
      await db.store.insertEvents([makeEvent(1, { time: Date.now() - 1000 + n, src_identity: IDENTITIES[1] as string, dst_service: 'late' })], `arrive-${n++}`);
      if (!page.next) break;
      after = page.next;
    }
    expect(ids).toEqual(want);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('treats hostile filter values as data', async () => {
    const hostile = ["' OR 1=1 --", "payments'; DROP TABLE events; --", '\\', '{identity:String}', '%', '_', "\u0000'", 'x'.repeat(5000)];
    for (const value of hostile) {
      for (const filters of [{ identity: value }, { identityPrefix: value }, { service: value }, { pathPrefix: value }, { method: value }, { namespace: value }] as AccessFilters[]) {
        const page = await queryAccessPage(db.store, filters, { limit: 10, order: 'desc', includeRaw: false });
        expect(page.rows).toEqual([]);
      }
    }
    expect(await countAccess(db.store, {})).toBeGreaterThanOrEqual(EVENTS.length);
  });

  it('iterates everything page by page, bounded by maxRows', async () => {
    const pages: number[] = [];
    const ids: string[] = [];
    for await (const rows of iterateAccess(db.store, { service: 'ledger' }, { order: 'asc', includeRaw: false, pageRows: 64 })) {
      pages.push(rows.length);
      ids.push(...rows.map((r) => r.event_id));
    }
    expect(ids).toEqual(expected({ service: 'ledger' }, 'asc'));
    expect(Math.max(...pages)).toBeLessThanOrEqual(64);
    let capped = 0;
    for await (const rows of iterateAccess(db.store, {}, { order: 'desc', includeRaw: false, pageRows: 50, maxRows: 120 })) capped += rows.length;
    expect(capped).toBe(120);
  });

});

describe('OPA decisions joined by request id', () => {
  const db = useTestStore(createAccessTestConfig());

  it('backfills OPA rows stored before its migration', async () => {
    const fresh = await createTestStore(createAccessTestConfig());
    try {
      const requestId = randomUUID();
      await fresh.insertEvents(
        [
          { ...createEmptyEvent('opa', BASE_MS), event_id: randomUUID(), request_id: requestId, decision_id: 'before', decision: 'allow', decision_reason: 'p/allow' },
          { ...createEmptyEvent('envoy', BASE_MS), event_id: randomUUID(), src_identity: 'backfill', request_id: requestId },
        ],
        'backfill',
      );
      await fresh.command(`TRUNCATE TABLE ${fresh.database}.authz_by_request`);
      await fresh.command(`ALTER TABLE ${fresh.database}.schema_migrations DELETE WHERE id = 203 SETTINGS mutations_sync = 1`);
      await fresh.command(`DROP VIEW ${fresh.database}.authz_by_request_mv`);
      await fresh.migrate();
      const page = await queryAccessPage(fresh, { identity: 'backfill' }, { limit: 5, order: 'asc', includeRaw: false });
      expect(page.rows[0]).toMatchObject({ authz_decision_id: 'before', authz_decision: 'allow', authz_reason: 'p/allow' });
    } finally {
      await dropTestStore(fresh);
    }
  });

  it('carries the OPA decision of the same request on Envoy rows, in pages and iteration', async () => {
    const joined = randomUUID();
    const alone = randomUUID();
    const timeMs = BASE_MS + 30 * HOUR_MS;
    const envoy = makeEvent(7, { time: timeMs, src_identity: 'authz-join', request_id: joined, dst_service: 'payments', decision: 'deny', decision_reason: 'ext_authz_denied' });
    const unmatched = makeEvent(8, { time: timeMs + 1, src_identity: 'authz-join', request_id: alone });
    const noId = makeEvent(9, { time: timeMs + 2, src_identity: 'authz-join', request_id: '' });
    const opa = (decisionId: string, offsetMs: number, reason: string): NormalizedEvent => ({
      ...createEmptyEvent('opa', timeMs),
      event_id: randomUUID(),
      time: timeMs + offsetMs,
      reporter: 'authz',
      src_identity: 'authz-join',
      request_id: joined,
      decision_id: decisionId,
      decision: 'deny' as const,
      decision_reason: reason,
    });
    // An earlier decision on the same request, stored in another insert: the latest one wins.
    await db.store.insertEvents([opa('opa-old', -5, 'envoy/authz/old')], 'authz-join-old');
    await db.store.insertEvents([envoy, unmatched, noId, opa('opa-42', -1, 'envoy/authz/allow')], 'authz-join');
    const page = await queryAccessPage(db.store, { identity: 'authz-join' }, { limit: 10, order: 'asc', includeRaw: false });
    const byId = new Map(page.rows.map((r) => [r.event_id, r]));
    expect(byId.get(envoy.event_id)).toMatchObject({ request_id: joined, authz_decision_id: 'opa-42', authz_decision: 'deny', authz_reason: 'envoy/authz/allow' });
    expect(byId.get(unmatched.event_id)).toMatchObject({ authz_decision_id: '', authz_decision: '', authz_reason: '' });
    expect(byId.get(noId.event_id)).toMatchObject({ authz_decision_id: '', authz_decision: '', authz_reason: '' });
    // OPA rows carry their own decision_id and are not joined with themselves.
    const opaRows = page.rows.filter((r) => r.source === 'opa');
    expect(opaRows.map((r) => r.decision_id).sort()).toEqual(['opa-42', 'opa-old']);
    expect(opaRows.every((r) => r.authz_decision_id === '')).toBe(true);
    const iterated = [];
    for await (const rows of iterateAccess(db.store, { identity: 'authz-join' }, { order: 'desc', includeRaw: false, pageRows: 2 })) iterated.push(...rows);
    expect(iterated.find((r) => r.event_id === envoy.event_id)?.authz_decision_id).toBe('opa-42');
  });

  it('looks up OPA decisions for many and hostile request ids, in bounded chunks', async () => {
    const ids = [...Array.from({ length: 3000 }, (_, i) => `missing-${i}-${'x'.repeat(30)}`), "' OR 1=1 --", 'y'.repeat(70_000), ''];
    const rows = Array.from({ length: 3 }, (_, i) => ({
      ...createEmptyEvent('opa', BASE_MS),
      event_id: randomUUID(),
      time: BASE_MS + i,
      request_id: ids[i * 1500] as string,
      decision_id: `bulk-${i}`,
      decision: 'allow' as const,
      decision_reason: 'p',
    }));
    await db.store.insertEvents(rows, 'authz-bulk');
    const found = await queryAuthzDecisions(db.store, ids);
    expect([...found.keys()].sort()).toEqual([ids[0], ids[1500], ids[3000]].sort());
    expect(found.get(ids[3000] as string)?.decisionId).toBe('bulk-2');
    expect(found.get(ids[1500] as string)).toEqual({ decisionId: 'bulk-1', decision: 'allow', reason: 'p' });
  });

});
