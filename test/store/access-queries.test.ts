import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { countAccess, iterateAccess, queryAccessPage, queryAuthzDecisions, type AccessFilters, type AccessOrder } from '../../store/access-queries.ts';
import { insertAuditRecord, queryAuditLog } from '../../store/audit-queries.ts';
import { queryServiceGraph } from '../../store/graph-edge-queries.ts';
import { getAnomaly, queryAnomalies } from '../../store/anomaly-queries.ts';
import { IDENTITY_PROJECTION } from '../../store/migrations/compliance.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const HOUR_MS = 3_600_000;
const BASE_MS = Date.now() - 48 * HOUR_MS;
const IDENTITIES = ['spiffe://cluster.local/ns/shop/sa/frontend', 'spiffe://cluster.local/ns/shop/sa/cart', 'alice@example.com', "o'brien@example.com"];
const SERVICES = ['payments', 'ledger', 'catalog'];

function makeEvent(i: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS),
    event_id: randomUUID(),
    // Several events share each millisecond, so ties on time are exercised.
    time: BASE_MS + Math.floor(i / 3) * 60_000,
    src_identity: IDENTITIES[i % IDENTITIES.length] as string,
    src_namespace: 'shop',
    dst_service: SERVICES[i % SERVICES.length] as string,
    dst_namespace: i % 2 ? 'prod' : 'staging',
    method: i % 5 ? 'GET' : 'POST',
    path: `/api/v${i % 2}/items/${i}`,
    status: i % 7 === 0 ? 403 : 200,
    decision: i % 7 === 0 ? 'deny' : 'allow',
    decision_reason: i % 7 === 0 ? 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-all]-rule[0]]' : '',
    mtls: i % 4 ? 'yes' : 'no',
    bytes_in: i,
    bytes_out: 2 * i,
    raw: `raw line ${i}`,
    ...overrides,
  };
}

const EVENTS = Array.from({ length: 600 }, (_, i) => makeEvent(i));

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
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    await store.insertEvents(EVENTS, 'seed');
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('has the identity projection on events', async () => {
    const rows = await store.query<{ name: string }>('SELECT name FROM system.projections WHERE database = {db:String} AND table = {t:String}', { db: store.database, t: 'events' });
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
        expect(await readAll(store, filters, order, 37)).toEqual(want);
      }
      expect(await countAccess(store, filters)).toBe(expected(filters, 'asc').length);
    });
  }

  it('returns decision reasons, and raw lines only when asked', async () => {
    const page = await queryAccessPage(store, { decision: 'deny' }, { limit: 5, order: 'desc', includeRaw: false });
    expect(page.rows[0]?.decision_reason).toContain('rbac_access_denied');
    expect(page.rows[0]).not.toHaveProperty('raw');
    expect(page.rows[0]?.bytes_in).toEqual(expect.any(Number));
    const raw = await queryAccessPage(store, { decision: 'deny' }, { limit: 5, order: 'desc', includeRaw: true });
    expect(raw.rows[0]?.raw).toMatch(/^raw line/);
  });

  it('stays stable while data arrives: new rows neither repeat nor shift earlier pages', async () => {
    const filters = { identity: IDENTITIES[1] };
    const want = expected(filters, 'desc');
    const ids: string[] = [];
    let after;
    let n = 0;
    for (;;) {
      const page = await queryAccessPage(store, filters, { limit: 20, order: 'desc', after, includeRaw: false });
      ids.push(...page.rows.map((r) => r.event_id));
      // Newer events for the same identity land between page reads.
      await store.insertEvents([makeEvent(1, { time: Date.now() - 1000 + n, src_identity: IDENTITIES[1] as string, dst_service: 'late' })], `arrive-${n++}`);
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
        const page = await queryAccessPage(store, filters, { limit: 10, order: 'desc', includeRaw: false });
        expect(page.rows).toEqual([]);
      }
    }
    expect(await countAccess(store, {})).toBeGreaterThanOrEqual(EVENTS.length);
  });

  it('iterates everything page by page, bounded by maxRows', async () => {
    const pages: number[] = [];
    const ids: string[] = [];
    for await (const rows of iterateAccess(store, { service: 'ledger' }, { order: 'asc', includeRaw: false, pageRows: 64 })) {
      pages.push(rows.length);
      ids.push(...rows.map((r) => r.event_id));
    }
    expect(ids).toEqual(expected({ service: 'ledger' }, 'asc'));
    expect(Math.max(...pages)).toBeLessThanOrEqual(64);
    let capped = 0;
    for await (const rows of iterateAccess(store, {}, { order: 'desc', includeRaw: false, pageRows: 50, maxRows: 120 })) capped += rows.length;
    expect(capped).toBe(120);
  });

  it('builds the service graph from the edge rollup', async () => {
    const edges = await queryServiceGraph(store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, limit: 100 });
    const total = edges.reduce((sum, e) => sum + e.requests, 0);
    expect(total).toBe(EVENTS.length);
    const denies = edges.reduce((sum, e) => sum + e.denies, 0);
    expect(denies).toBe(EVENTS.filter((e) => e.decision === 'deny').length);
    const plaintext = edges.reduce((sum, e) => sum + e.plaintext, 0);
    expect(plaintext).toBe(EVENTS.filter((e) => e.mtls === 'no').length);
    expect(edges[0]!.requests).toBeGreaterThanOrEqual(edges[edges.length - 1]!.requests);
    const prod = await queryServiceGraph(store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, namespace: 'prod', limit: 100 });
    expect(prod.every((e) => e.dst_namespace === 'prod' || e.src_namespace === 'prod')).toBe(true);
    expect((await queryServiceGraph(store, { fromMs: BASE_MS, toMs: BASE_MS + 24 * HOUR_MS, limit: 2 })).length).toBe(2);
  });
});

describe('OPA decisions joined by request id', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('backfills OPA rows stored before its migration', async () => {
    const fresh = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
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
    await store.insertEvents([opa('opa-old', -5, 'envoy/authz/old')], 'authz-join-old');
    await store.insertEvents([envoy, unmatched, noId, opa('opa-42', -1, 'envoy/authz/allow')], 'authz-join');
    const page = await queryAccessPage(store, { identity: 'authz-join' }, { limit: 10, order: 'asc', includeRaw: false });
    const byId = new Map(page.rows.map((r) => [r.event_id, r]));
    expect(byId.get(envoy.event_id)).toMatchObject({ request_id: joined, authz_decision_id: 'opa-42', authz_decision: 'deny', authz_reason: 'envoy/authz/allow' });
    expect(byId.get(unmatched.event_id)).toMatchObject({ authz_decision_id: '', authz_decision: '', authz_reason: '' });
    expect(byId.get(noId.event_id)).toMatchObject({ authz_decision_id: '', authz_decision: '', authz_reason: '' });
    // OPA rows carry their own decision_id and are not joined with themselves.
    const opaRows = page.rows.filter((r) => r.source === 'opa');
    expect(opaRows.map((r) => r.decision_id).sort()).toEqual(['opa-42', 'opa-old']);
    expect(opaRows.every((r) => r.authz_decision_id === '')).toBe(true);
    const iterated = [];
    for await (const rows of iterateAccess(store, { identity: 'authz-join' }, { order: 'desc', includeRaw: false, pageRows: 2 })) iterated.push(...rows);
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
    await store.insertEvents(rows, 'authz-bulk');
    const found = await queryAuthzDecisions(store, ids);
    expect([...found.keys()].sort()).toEqual([ids[0], ids[1500], ids[3000]].sort());
    expect(found.get(ids[3000] as string)?.decisionId).toBe('bulk-2');
    expect(found.get(ids[1500] as string)).toEqual({ decisionId: 'bulk-1', decision: 'allow', reason: 'p' });
  });

});

describe('audit log and anomaly queries', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig());
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('writes every audit record, even identical ones in the same millisecond, and pages newest first', async () => {
    const timeMs = Date.now();
    for (let i = 0; i < 25; i++) {
      await insertAuditRecord(store, { timeMs: timeMs + (i % 5), actor: i % 2 ? 'alice' : 'bob', role: 'auditor', action: 'access.query', filters: { identity: 'x' }, rows: 3, status: 200, remoteAddr: '127.0.0.1' });
    }
    const seen: string[] = [];
    let after;
    for (;;) {
      const page = await queryAuditLog(store, { limit: 4, after });
      seen.push(...page.rows.map((r) => `${r.time}/${r.row_key}`));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toHaveLength(25);
    const alice = await queryAuditLog(store, { actor: 'alice', limit: 100 });
    expect(alice.rows).toHaveLength(12);
    expect(alice.rows[0]).toMatchObject({ actor: 'alice', role: 'auditor', action: 'access.query', filters: '{"identity":"x"}', rows: 3, status: 200, remote_addr: '127.0.0.1' });
  });

  it('reads anomalies in their latest version, filtered and paged', async () => {
    const row = (id: string, version: number, status: string, firstMs: number, severity = 'high') => ({
      id,
      detector: id.startsWith('d') ? 'deny_spike' : 'mtls_failure',
      severity,
      status,
      first_seen: firstMs,
      last_seen: firstMs + 60_000 * version,
      src: 'spiffe://cluster.local/ns/shop/sa/frontend',
      dst: id.startsWith('d') ? 'payments' : null,
      subject: `subject-${id}`,
      score: 3.5,
      summary: `anomaly ${id}`,
      evidence: JSON.stringify({ baseline: 1, observed: 10 }),
      version,
    });
    const now = Date.now() - HOUR_MS;
    await store.insertRows(
      'anomalies',
      [row('d1', 1, 'firing', now), row('d1', 2, 'resolved', now), row('d2', 1, 'firing', now + 1000), row('m1', 1, 'firing', now + 2000, 'low'), row('m2', 1, 'firing', now + 2000)],
      { insert_deduplication_token: 'anomalies-seed' },
    );
    const all = await queryAnomalies(store, {}, { limit: 10 });
    expect(all.anomalies.map((a) => a.id)).toEqual(['m2', 'm1', 'd2', 'd1']);
    expect(all.anomalies.find((a) => a.id === 'd1')?.status).toBe('resolved');
    const firing = await queryAnomalies(store, { status: 'firing', detector: 'deny_spike' }, { limit: 10 });
    expect(firing.anomalies.map((a) => a.id)).toEqual(['d2']);
    const low = await queryAnomalies(store, { severity: 'low' }, { limit: 10 });
    expect(low.anomalies.map((a) => a.id)).toEqual(['m1']);
    const first = await queryAnomalies(store, {}, { limit: 3 });
    const second = await queryAnomalies(store, {}, { limit: 3, after: first.next });
    expect([...first.anomalies, ...second.anomalies].map((a) => a.id)).toEqual(['m2', 'm1', 'd2', 'd1']);
    expect(second.next).toBeUndefined();
    const one = await getAnomaly(store, 'd1');
    expect(one).toMatchObject({ id: 'd1', status: 'resolved', dst: 'payments', evidence: { baseline: 1, observed: 10 } });
    expect(one?.first_seen).toBe(new Date(now).toISOString());
    expect((await getAnomaly(store, 'm1'))?.dst).toBeNull();
    expect(await getAnomaly(store, "' OR 1=1 --")).toBeUndefined();
  });
});
