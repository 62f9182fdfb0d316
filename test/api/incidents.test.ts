// /v1/incidents over the real store, with rows written by the live incidents stage (correlator +
// `incidents` table), and the stage's restart: firing incidents come back from the table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Anomaly, Severity } from '../../core/anomaly.ts';
import { createMetrics } from '../../core/metrics.ts';
import { createIncidentStage } from '../../incidents/stage.ts';
import { createTestApi, type TestApi } from './helpers.ts';

const T0 = Date.now() - 3_600_000;
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const scanner = '10.9.9.9';
const mallory = 'spiffe://cluster.local/ns/batch/sa/report';

function anomaly(id: string, detector: string, fields: { src?: string; dst?: string; severity?: Severity; firstS: number; detectedS: number; evidence?: Record<string, unknown> }): Anomaly {
  return {
    id,
    detector,
    severity: fields.severity ?? 'high',
    status: 'firing',
    first_seen: iso(fields.firstS),
    detected_at: iso(fields.detectedS),
    last_seen: iso(fields.detectedS),
    src: fields.src ?? null,
    dst: fields.dst ?? null,
    score: 5,
    summary: `${detector} ${id}`,
    evidence: fields.evidence ?? {},
  };
}

/** The anomaly rows the engine would have written. */
function anomalyRow(a: Anomaly, version: number) {
  return { ...a, first_seen: Date.parse(a.first_seen), detected_at: Date.parse(a.detected_at), last_seen: Date.parse(a.last_seen), subject: a.id, evidence: JSON.stringify(a.evidence), version };
}

describe('incidents API', () => {
  let api: TestApi;
  const scan = anomaly('f1', 'fanout', { src: scanner, firstS: 0, detectedS: 20, evidence: { targets: ['cart:8080', 'ledger:8080'] } });
  const denial = anomaly('d1', 'deny_spike', { dst: 'cart', firstS: 5, detectedS: 30, severity: 'medium' });
  const exfil = anomaly('v1', 'volume', { src: mallory, dst: 'ledger', firstS: 100, detectedS: 120, severity: 'medium' });
  const info = anomaly('n1', 'new_edge', { src: 'spiffe://cluster.local/ns/shop/sa/new', dst: 'cart', firstS: 200, detectedS: 220, severity: 'info' });

  beforeAll(async () => {
    api = await createTestApi({ withIngest: false });
    const store = api.store!;
    await store.insertRows('anomalies', [scan, denial, exfil, info].map((a) => anomalyRow(a, 1)));
    const stage = createIncidentStage({ store, metrics: createMetrics() });
    await stage.restore();
    for (const a of [scan, denial, exfil, info]) stage.observe(a, 'opened');
    // The exfiltration escalates, then resolves.
    stage.observe({ ...exfil, severity: 'critical', last_seen: iso(180) }, 'updated');
    stage.observe({ ...exfil, severity: 'critical', status: 'resolved', last_seen: iso(200) }, 'resolved');
    stage.advanceTo(T0 + 400_000);
    await stage.flush();
  });
  afterAll(async () => {
    await api.close();
  });

  it('lists incidents, most recently raised first, with filters and keyset pages', async () => {
    const all = await api.app.inject({ method: 'GET', url: '/v1/incidents', headers: api.auth('analyst') });
    expect(all.statusCode).toBe(200);
    const items = all.json().items as Array<{ id: string; title: string; status: string; severity: string; members: string[]; actors: string[]; notify: boolean; detected_at: string }>;
    expect(items).toHaveLength(3);
    expect(items.map((i) => i.members)).toEqual([['n1'], ['v1'], ['f1', 'd1']]);
    const [newEdge, volume, scanIncident] = items;
    expect(scanIncident).toMatchObject({ actors: [scanner], status: 'firing', severity: 'high', notify: true, detected_at: iso(20) });
    expect(scanIncident?.title).toMatch(/^Scan or lateral movement by 10\.9\.9\.9 reaching 2 destinations \(cart, ledger\)\.$/);
    expect(volume).toMatchObject({ status: 'resolved', severity: 'critical', notify: true });
    expect(newEdge).toMatchObject({ severity: 'info', notify: false });

    const firing = await api.app.inject({ method: 'GET', url: '/v1/incidents?status=firing&notify=true', headers: api.auth('analyst') });
    expect(firing.json().items.map((i: { members: string[] }) => i.members[0])).toEqual(['f1']);
    const critical = await api.app.inject({ method: 'GET', url: '/v1/incidents?severity=critical', headers: api.auth('analyst') });
    expect(critical.json().items.map((i: { members: string[] }) => i.members[0])).toEqual(['v1']);
    const since = await api.app.inject({ method: 'GET', url: `/v1/incidents?since=${encodeURIComponent(iso(190))}`, headers: api.auth('analyst') });
    expect(since.json().items.map((i: { members: string[] }) => i.members[0]).sort()).toEqual(['n1', 'v1']);
    const until = await api.app.inject({ method: 'GET', url: `/v1/incidents?until=${encodeURIComponent(iso(100))}`, headers: api.auth('analyst') });
    expect(until.json().items.map((i: { members: string[] }) => i.members[0])).toEqual(['f1']);

    const page = await api.app.inject({ method: 'GET', url: '/v1/incidents?limit=2', headers: api.auth('analyst') });
    expect(page.json().items).toHaveLength(2);
    const rest = await api.app.inject({ method: 'GET', url: `/v1/incidents?limit=2&cursor=${page.json().next_cursor}`, headers: api.auth('analyst') });
    expect(rest.json()).toEqual({ items: [expect.objectContaining({ id: scanIncident?.id })], next_cursor: null });
    // A cursor belongs to its filters.
    const mismatched = await api.app.inject({ method: 'GET', url: `/v1/incidents?limit=2&status=firing&cursor=${page.json().next_cursor}`, headers: api.auth('analyst') });
    expect(mismatched.statusCode).toBe(400);
    expect(mismatched.json().error.code).toBe('ZTW_API_BAD_CURSOR');
  });

  it('shows one incident with its timeline and member anomalies', async () => {
    const list = await api.app.inject({ method: 'GET', url: '/v1/incidents?severity=high', headers: api.auth('analyst') });
    const id = list.json().items[0].id as string;
    const one = await api.app.inject({ method: 'GET', url: `/v1/incidents/${id}`, headers: api.auth('analyst') });
    expect(one.statusCode).toBe(200);
    const body = one.json();
    expect(body.incident.id).toBe(id);
    expect(body.incident.timeline.map((t: { anomaly: string; change: string }) => `${t.change} ${t.anomaly}`)).toEqual(['opened f1', 'opened d1']);
    expect(body.incident.evidence).toMatchObject({ kind: 'scan', links: { d1: 'scan_explains' } });
    expect(body.anomalies.map((a: { id: string; detected_at: string }) => [a.id, a.detected_at])).toEqual([
      ['f1', iso(20)],
      ['d1', iso(30)],
    ]);
  });

  it('refuses bad input with coded 4xx and other roles with 403', async () => {
    const missing = await api.app.inject({ method: 'GET', url: "/v1/incidents/nope'--", headers: api.auth('analyst') });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ZTW_API_NOT_FOUND');
    for (const url of ['/v1/incidents?severity=apocalyptic', '/v1/incidents?status=open', '/v1/incidents?since=yesterday', '/v1/incidents?limit=0', '/v1/incidents?cursor=%%%']) {
      const res = await api.app.inject({ method: 'GET', url, headers: api.auth('analyst') });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toMatch(/^ZTW_API_/);
    }
    expect((await api.app.inject({ method: 'GET', url: '/v1/incidents', headers: api.auth('auditor') })).statusCode).toBe(403);
    expect((await api.app.inject({ method: 'GET', url: '/v1/incidents', headers: api.auth('ingest') })).statusCode).toBe(403);
    expect((await api.app.inject({ method: 'GET', url: '/v1/incidents' })).statusCode).toBe(401);
  });

  it('takes firing incidents back after a restart: a new member joins the same incident, no new page', async () => {
    const metrics = createMetrics();
    const restarted = createIncidentStage({ store: api.store!, metrics });
    await restarted.restore();
    const before = await api.app.inject({ method: 'GET', url: '/v1/incidents?status=firing&notify=true', headers: api.auth('analyst') });
    const scanId = before.json().items[0].id as string;
    expect((await metrics.registry.getSingleMetricAsString('ztwatch_incident_firing')).split('\n')).toContain(`ztwatch_incident_firing{incident="${scanId}"} 3`);

    const more = anomaly('d2', 'deny_spike', { dst: 'ledger', firstS: 250, detectedS: 260, severity: 'critical' });
    await api.store!.insertRows('anomalies', [anomalyRow(more, 1)]);
    restarted.observe(more, 'opened');
    await restarted.flush();
    const after = await api.app.inject({ method: 'GET', url: `/v1/incidents/${scanId}`, headers: api.auth('analyst') });
    expect(after.json().incident).toMatchObject({ members: ['f1', 'd1', 'd2'], severity: 'critical', notify: true, detected_at: iso(20) });
    expect(after.json().anomalies.map((a: { id: string }) => a.id)).toEqual(['f1', 'd1', 'd2']);
    // Same series, new value: an escalation updates its alert instead of firing another.
    expect((await metrics.registry.getSingleMetricAsString('ztwatch_incident_firing')).split('\n')).toContain(`ztwatch_incident_firing{incident="${scanId}"} 4`);
    const all = await api.app.inject({ method: 'GET', url: '/v1/incidents', headers: api.auth('analyst') });
    expect(all.json().items).toHaveLength(3);
  });

  it('resolves on restart an incident whose members resolved after its last row was written', async () => {
    const store = api.store!;
    const firing = await api.app.inject({ method: 'GET', url: '/v1/incidents?status=firing&notify=true', headers: api.auth('analyst') });
    const incident = firing.json().items[0] as { id: string; members: string[] };
    // The members resolved in the anomalies table, and the process stopped before the incident row followed.
    const resolvedRows = incident.members.map((id) => {
      const base = [scan, denial].find((a) => a.id === id) ?? anomaly(id, 'deny_spike', { dst: 'ledger', firstS: 250, detectedS: 260, severity: 'critical' });
      return anomalyRow({ ...base, status: 'resolved', last_seen: iso(600) }, 10);
    });
    await store.insertRows('anomalies', resolvedRows);
    const restarted = createIncidentStage({ store, metrics: createMetrics() });
    await restarted.restore();
    await restarted.flush();
    const after = await api.app.inject({ method: 'GET', url: `/v1/incidents/${incident.id}`, headers: api.auth('analyst') });
    expect(after.json().incident).toMatchObject({ status: 'resolved', last_seen: iso(600) });
  });
});
