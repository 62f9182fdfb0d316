// Every ClickHouse query the dashboards ship (panel targets and variable queries) runs on the
// embedded ClickHouse over demo traffic, expanded the way Grafana and the ClickHouse plugin
// expand it, and must return rows. Key panels are also checked against totals computed here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_VALUE, expandClickHouseQuery, type QueryContext, type VariableState } from '../../dashboards/macros.ts';
import { DASHBOARDS } from '../../dashboards/src/index.ts';
import { COMPLIANCE_SQL } from '../../dashboards/src/compliance.ts';
import { EDGE_DENY_RATIO_RED, GRAPH_COLORS, SERVICE_GRAPH_SQL } from '../../dashboards/src/service-graph.ts';
import { SOC_OVERVIEW_SQL } from '../../dashboards/src/soc-overview.ts';
import type { NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { DEMO_MINUTES, DEMO_START_MS, GATEWAY_IDENTITY, insertDemoData, spiffe } from './demo-data.ts';
import { listQueries, type DashboardModel, type DashboardQuery } from './walk.ts';

const CLICKHOUSE_UID = 'ztwatch-clickhouse';
const INTERVAL_MS = 60_000;
const RANGE = { fromMs: DEMO_START_MS - 30 * 60_000, toMs: DEMO_START_MS + (DEMO_MINUTES + 30) * 60_000, intervalMs: INTERVAL_MS };

/** Variables as Grafana sends them when every filter is "All" (its default). */
const ALL_FILTERS: Record<string, VariableState> = {
  namespace: { value: [ALL_VALUE] },
  identity: { value: [ALL_VALUE] },
  service: { value: [ALL_VALUE] },
  decision: { value: [ALL_VALUE] },
  path_prefix: { value: '' },
};

let store: Store;
let events: NormalizedEvent[];

async function run<T = Record<string, unknown>>(sql: string, variables: Record<string, VariableState> = ALL_FILTERS, range: Omit<QueryContext, 'variables'> = RANGE): Promise<T[]> {
  const expanded = expandClickHouseQuery(sql, { ...range, variables });
  if (!expanded.ok) throw new Error(`expansion failed: ${expanded.reason}`);
  return store.query<T>(expanded.query);
}

const sum = (list: readonly NormalizedEvent[], pick: (e: NormalizedEvent) => boolean): number => list.filter(pick).reduce((n, e) => n + e.count, 0);

beforeAll(async () => {
  // Long enough for the 2025 demo traffic; 36500 days would overflow the DateTime TTL (past 2106)
  // and expire every row at insert.
  store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
  events = await insertDemoData(store);
  // Grafana's datasource sets the default database (defaultDatabase: ztwatch); panel SQL is unqualified.
  await store.command(`USE ${store.database}`);
});

afterAll(async () => {
  if (store) await dropTestStore(store);
});

const clickhouseQueries: Array<[string, DashboardQuery]> = DASHBOARDS.flatMap((d) =>
  listQueries(d.build() as unknown as DashboardModel)
    .filter((q) => q.datasourceUid === CLICKHOUSE_UID)
    .map((q): [string, DashboardQuery] => [`${d.uid} ${q.where}`, q]),
);

describe('every ClickHouse query in the dashboards', () => {
  it('covers exactly the exported SQL of each dashboard (no inline or dead queries)', () => {
    const shipped = new Set(clickhouseQueries.map(([, q]) => q.text));
    const exported = new Set<string>([...Object.values(SOC_OVERVIEW_SQL), ...Object.values(SERVICE_GRAPH_SQL), ...Object.values(COMPLIANCE_SQL)]);
    expect([...shipped].sort()).toEqual([...exported].sort());
  });

  it.each(clickhouseQueries)('%s returns rows with every filter at "All"', async (_name, query) => {
    const rows = await run(query.text);
    expect(rows.length).toBeGreaterThan(0);
  });

  it.each(clickhouseQueries.filter(([, q]) => q.format === 'timeseries'))('%s is a time series Grafana can widen (time first, ascending)', async (_name, query) => {
    const rows = await run<Record<string, unknown>>(query.text);
    const times = rows.map((r) => Date.parse(`${String(Object.values(r)[0])}Z`));
    expect(times.every((t) => Number.isFinite(t))).toBe(true);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // Buckets follow $__timeInterval: aligned to the panel interval.
    expect(times.every((t) => t % INTERVAL_MS === 0)).toBe(true);
  });

  it('returns nothing outside the time range (the time filter is applied)', async () => {
    const before = { fromMs: DEMO_START_MS - 3 * 3_600_000, toMs: DEMO_START_MS - 3_600_000, intervalMs: INTERVAL_MS };
    expect(await run(SOC_OVERVIEW_SQL.denialsByReason, ALL_FILTERS, before)).toEqual([]);
    expect(await run(COMPLIANCE_SQL.accessHistory, ALL_FILTERS, before)).toEqual([]);
    expect(await run(SERVICE_GRAPH_SQL.edges, ALL_FILTERS, before)).toEqual([]);
  });
});

describe('SOC overview', () => {
  it('posture stats match totals computed from the demo events', async () => {
    const [row] = await run<Record<string, string | number>>(SOC_OVERVIEW_SQL.posture);
    const plaintext = sum(events, (e) => e.mtls === 'no');
    const mtls = sum(events, (e) => e.mtls === 'yes');
    expect(Number(row?.['Requests'])).toBe(sum(events, () => true));
    expect(Number(row?.['Denied'])).toBe(sum(events, (e) => e.decision === 'deny'));
    expect(Number(row?.['TLS failures'])).toBe(sum(events, (e) => e.tls_failure !== ''));
    expect(Number(row?.['Deny ratio'])).toBeCloseTo(sum(events, (e) => e.decision === 'deny') / events.length, 9);
    expect(Number(row?.['Plaintext share'])).toBeCloseTo(plaintext / (plaintext + mtls), 9);
  });

  it('lists only anomalies whose latest lifecycle row is firing, most severe first', async () => {
    const rows = await run<{ id: string; severity: string }>(SOC_OVERVIEW_SQL.openAnomalies);
    expect(rows.map((r) => [r.id, r.severity])).toEqual([
      ['a1', 'high'],
      ['a3', 'low'],
    ]);
    const [count] = await run<{ 'Open anomalies': string }>(SOC_OVERVIEW_SQL.openAnomalyCount);
    expect(Number(count?.['Open anomalies'])).toBe(2);
  });

  it('splits denials by destination and by reason', async () => {
    const byDestination = await run<{ destination: string; denials_per_minute: number }>(SOC_OVERVIEW_SQL.denialsByDestination);
    expect(new Set(byDestination.map((r) => r.destination))).toEqual(new Set(['payments', 'ledger', 'frontend']));
    // One RBAC denial per minute on payments, in 60-second buckets.
    expect(byDestination.filter((r) => r.destination === 'payments').every((r) => Number(r.denials_per_minute) === 1)).toBe(true);
    const reasons = await run<{ reason: string; denials: string }>(SOC_OVERVIEW_SQL.denyReasons);
    expect(Object.fromEntries(reasons.map((r) => [r.reason, Number(r.denials)]))).toEqual({
      'rbac:payments-allow-list': DEMO_MINUTES,
      'ledger.authz.deny': DEMO_MINUTES,
      email_not_allowed: DEMO_MINUTES / 3,
    });
  });

  it('counts TLS failures by reason', async () => {
    const rows = await run<{ destination: string; reason: string; failures: string }>(SOC_OVERVIEW_SQL.tlsFailuresByDestination);
    const got = Object.fromEntries(rows.map((r) => [`${r.destination} ${r.reason}`, Number(r.failures)]));
    expect(got).toEqual({
      'inventory CERTIFICATE_VERIFY_FAILED': sum(events, (e) => e.tls_failure === 'CERTIFICATE_VERIFY_FAILED'),
      'payments SSLV3_ALERT_CERTIFICATE_EXPIRED': 3,
    });
  });
});

describe('service graph', () => {
  it('draws a node for both ends of every edge, with arcs that add up to 1', async () => {
    const nodes = await run<Record<string, unknown>>(SERVICE_GRAPH_SQL.nodes);
    const edges = await run<Record<string, unknown>>(SERVICE_GRAPH_SQL.edges);
    const ids = new Set(nodes.map((n) => String(n.id)));
    expect(ids.size).toBe(nodes.length);
    for (const edge of edges) {
      expect(ids.has(String(edge.source)), `node for ${String(edge.source)}`).toBe(true);
      expect(ids.has(String(edge.target)), `node for ${String(edge.target)}`).toBe(true);
    }
    for (const node of nodes) {
      expect(Number(node.arc__allowed) + Number(node.arc__denied) + Number(node.arc__outbound_only)).toBeCloseTo(1, 9);
      for (const field of ['title', 'subtitle', 'mainstat', 'secondarystat']) expect(node).toHaveProperty(field);
    }
    for (const edge of edges) for (const field of ['id', 'source', 'target', 'mainstat', 'secondarystat', 'color']) expect(edge).toHaveProperty(field);
  });

  it('draws callers as the service their identity serves, and colours edges by deny ratio and mTLS share', async () => {
    const edges = await run<{ id: string; color: string; strokeDasharray: string; secondarystat: number }>(SERVICE_GRAPH_SQL.edges);
    const byId = Object.fromEntries(edges.map((e) => [e.id, e]));
    expect(Object.keys(byId).sort()).toEqual(
      [
        'alice@example.com -> frontend',
        'bob@example.com -> frontend',
        'checkout -> inventory',
        'checkout -> payments',
        'frontend -> checkout',
        '(no identity) -> ledger',
        'payments -> ledger',
        `${GATEWAY_IDENTITY} -> frontend`,
      ].sort(),
    );
    // One RBAC denial in every four requests: above the red threshold.
    expect(Number(byId['checkout -> payments']?.secondarystat)).toBeGreaterThanOrEqual(EDGE_DENY_RATIO_RED);
    expect(byId['checkout -> payments']?.color).toBe(GRAPH_COLORS.denied);
    expect(byId['(no identity) -> ledger']?.color).toBe(GRAPH_COLORS.plaintext);
    expect(byId['(no identity) -> ledger']?.strokeDasharray).not.toBe('');
    expect(byId['checkout -> inventory']?.color).toBe(GRAPH_COLORS.tlsFailure);
    expect(byId['frontend -> checkout']?.color).toBe(GRAPH_COLORS.healthy);
    expect(byId['frontend -> checkout']?.strokeDasharray).toBe('');
    const nodes = await run<{ id: string; title: string; arc__outbound_only: number }>(SERVICE_GRAPH_SQL.nodes);
    expect(nodes.find((n) => n.id === 'alice@example.com')?.arc__outbound_only).toBe(1);
    // Workloads that are also called appear once, as their service; the gateway keeps its identity, shortened.
    expect(nodes.filter((n) => n.id.startsWith('spiffe://')).map((n) => [n.id, n.title])).toEqual([[GATEWAY_IDENTITY, 'istio-ingressgateway-service-account.istio-system']]);
  });

  it('filters the graph by namespace', async () => {
    const edges = await run<{ source: string; target: string }>(SERVICE_GRAPH_SQL.edges, { ...ALL_FILTERS, namespace: { value: ['finance'] } });
    expect(edges.length).toBeGreaterThan(0);
    expect(new Set(edges.map((e) => e.target))).toEqual(new Set(['ledger']));
    const nodes = await run(SERVICE_GRAPH_SQL.nodes, { ...ALL_FILTERS, namespace: { value: ['finance', 'web'] } });
    expect(nodes.length).toBeGreaterThan(0);
  });

  it('lists edges first seen in the range, and none when the range starts after them', async () => {
    const rows = await run<{ source_identity: string; destination: string }>(SERVICE_GRAPH_SQL.newEdges);
    const pairs = new Set(events.filter((e) => e.src_identity !== '' && e.dst_service !== '').map((e) => `${e.src_identity} ${e.dst_service}`));
    expect(new Set(rows.map((r) => `${r.source_identity} ${r.destination}`))).toEqual(pairs);
    const later = { fromMs: DEMO_START_MS + 10 * 60_000, toMs: RANGE.toMs, intervalMs: INTERVAL_MS };
    expect(await run(SERVICE_GRAPH_SQL.newEdges, ALL_FILTERS, later)).toEqual([]);
  });
});

describe('compliance access history', () => {
  const alice = { ...ALL_FILTERS, identity: { value: ['alice@example.com'] } };

  it('offers the identities and services seen in the range as variable values', async () => {
    const identities = (await run<{ src_identity: string }>(COMPLIANCE_SQL.identityVariable)).map((r) => r.src_identity);
    expect(identities).toContain('alice@example.com');
    expect(identities).toContain(spiffe('shop', 'checkout'));
    expect(identities).not.toContain('');
    const services = (await run<{ dst_service: string }>(COMPLIANCE_SQL.serviceVariable)).map((r) => r.dst_service);
    expect(services.sort()).toEqual(['checkout', 'frontend', 'inventory', 'ledger', 'payments']);
  });

  it.each(Object.entries(COMPLIANCE_SQL).filter(([name]) => !['identityVariable', 'serviceVariable', 'auditTrail'].includes(name)))(
    '%s returns rows for one identity, service, decision and path prefix',
    async (_name, sql) => {
      const rows = await run(sql, { ...alice, service: { value: ['frontend'] }, decision: { value: ['allow'] }, path_prefix: { value: '/acc' } });
      expect(rows.length).toBeGreaterThan(0);
    },
  );

  it('keeps only the selected identities, decisions and path prefix', async () => {
    const rows = await run<{ identity: string; decision: string; path: string }>(COMPLIANCE_SQL.accessHistory, {
      ...ALL_FILTERS,
      identity: { value: ['alice@example.com', 'bob@example.com'] },
      decision: { value: ['deny'] },
      path_prefix: { value: '/admin' },
    });
    expect(rows.length).toBe(DEMO_MINUTES / 3);
    expect(rows.every((r) => r.identity === 'bob@example.com' && r.decision === 'deny' && r.path.startsWith('/admin'))).toBe(true);
    const [summary] = await run<Record<string, string | number>>(COMPLIANCE_SQL.summary, alice);
    expect(Object.fromEntries(Object.entries(summary ?? {}).map(([k, v]) => [k, Number(v)]))).toEqual({ Requests: DEMO_MINUTES, Denied: 0, Identities: 1, Services: 1 });
  });

  it('treats a quote in a filter value as data, not SQL', async () => {
    const rows = await run(COMPLIANCE_SQL.accessHistory, { ...ALL_FILTERS, identity: { value: ["x' OR 1=1 --"] }, path_prefix: { value: "'" } });
    expect(rows).toEqual([]);
  });

  it('shows the audited access-history queries', async () => {
    const rows = await run<{ actor: string; action: string }>(COMPLIANCE_SQL.auditTrail);
    expect(rows).toEqual([expect.objectContaining({ actor: 'auditor-1', action: 'access_history' })]);
  });
});
