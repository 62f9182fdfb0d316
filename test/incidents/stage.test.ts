// The live incidents stage over a real embedded store: rows, metrics and their bounds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Anomaly } from '../../core/anomaly.ts';
import { createError } from '../../core/errors.ts';
import { createMetrics } from '../../core/metrics.ts';
import type { Store } from '../../store/client.ts';
import { createIncidentStage, MAX_INCIDENT_SERIES } from '../../incidents/stage.ts';
import { createTestStore, dropTestStore, useTestStore } from '../helpers/store.ts';

const T0 = Date.now() - 3_600_000;
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function newEdge(i: number): Anomaly {
  return {
    id: `a${i}`,
    detector: 'new_edge',
    severity: 'high',
    status: 'firing',
    first_seen: iso(i),
    detected_at: iso(i + 20),
    last_seen: iso(i + 20),
    src: `spiffe://cluster.local/ns/shop/sa/caller-${i}`,
    dst: `service-${i}`,
    score: 1,
    summary: `caller-${i} called service-${i} for the first time`,
    evidence: {},
  };
}

describe('incidents stage', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore();
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('keeps at most MAX_INCIDENT_SERIES firing series, one per incident, freeing one when an incident resolves', async () => {
    const metrics = createMetrics();
    const stage = createIncidentStage({ store, metrics });
    const count = MAX_INCIDENT_SERIES + 5;
    for (let i = 0; i < count; i++) stage.observe(newEdge(i), 'opened');
    await stage.flush();
    const series = async () => (await metrics.registry.getSingleMetricAsString('ztwatch_incident_firing')).split('\n').filter((l) => l.startsWith('ztwatch_incident_firing{'));
    expect(await series()).toHaveLength(MAX_INCIDENT_SERIES);
    for (const line of await series()) expect(line).toMatch(/^ztwatch_incident_firing\{incident="inc-[0-9a-f]{20}"\} 3$/);
    const info = (await metrics.registry.getSingleMetricAsString('ztwatch_incident_info')).split('\n').filter((l) => l.startsWith('ztwatch_incident_info{'));
    expect(info).toHaveLength(MAX_INCIDENT_SERIES);
    expect(info[0]).toContain('kind="new_edge"');

    // Every incident has its row, series or not; the active gauge counts them all.
    const [row] = await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.database}.incidents FINAL WHERE status = 'firing'`);
    expect(Number(row?.n)).toBe(count);
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_incidents_active')).toContain(`ztwatch_incidents_active{severity="high"} ${count}`);
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_incidents_paged_total')).toContain(`ztwatch_incidents_paged_total{kind="new_edge"} ${MAX_INCIDENT_SERIES}`);

    stage.observe({ ...newEdge(0), status: 'resolved', last_seen: iso(400) }, 'resolved');
    await stage.flush();
    expect(await series()).toHaveLength(MAX_INCIDENT_SERIES - 1);
    expect((await series()).some((l) => l.includes('"inc-'))).toBe(true);
    const received = await metrics.registry.getSingleMetricAsString('ztwatch_stage_received_events_total');
    expect(received).toContain(`ztwatch_stage_received_events_total{stage="incidents"} ${count + 1}`);
  });
});

describe('incidents stage, reopening', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore();
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('a reopened incident fires again under the same series (its id), without counting a new page', async () => {
    const metrics = createMetrics();
    const stage = createIncidentStage({ store, metrics });
    const a = newEdge(1);
    stage.observe(a, 'opened');
    stage.observe({ ...a, status: 'resolved', last_seen: iso(100) }, 'resolved');
    await stage.flush();
    const series = async () => (await metrics.registry.getSingleMetricAsString('ztwatch_incident_firing')).split('\n').filter((l) => l.startsWith('ztwatch_incident_firing{'));
    expect(await series()).toEqual([]);
    // The same caller at the same service ten minutes later.
    const b: Anomaly = { ...newEdge(1), id: 'again', first_seen: iso(700), detected_at: iso(720), last_seen: iso(720) };
    stage.observe(b, 'opened');
    await stage.flush();
    const rows = await store.query<{ id: string; status: string; timeline: string }>(`SELECT id, status, timeline FROM ${store.database}.incidents FINAL`);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.status).toBe('firing');
    expect((JSON.parse(rows[0]?.timeline ?? '[]') as Array<{ change: string }>).map((t) => t.change)).toEqual(['opened', 'resolved', 'reopened']);
    expect(await series()).toEqual([`ztwatch_incident_firing{incident="${rows[0]?.id}"} 3`]);
    expect(await metrics.registry.getSingleMetricAsString('ztwatch_incidents_paged_total')).toContain('ztwatch_incidents_paged_total{kind="new_edge"} 1');
  });
});

describe('incidents stage telemetry', () => {
  const db = useTestStore();

  it('counts a failed incident write under its declared code, one that is not a ztwatch error under ZTW_STORE_QUERY_FAILED', async () => {
    const metrics = createMetrics();
    // A library error's own code (ECONNRESET) is not a declared code and must not become a label.
    const failures: Error[] = [createError('STORE_UNAVAILABLE', 'server gone'), Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })];
    const store = db.store;
    const failing: Store = {
      ...store,
      insertRows: async (...args) => {
        const failure = failures.shift();
        if (failure) throw failure;
        return store.insertRows(...args);
      },
    };
    const stage = createIncidentStage({ store: failing, metrics });
    for (const i of [1, 2, 3]) {
      stage.observe(newEdge(100 + i), 'opened');
      await stage.flush();
    }
    const values = (await metrics.registry.getSingleMetric('ztwatch_stage_errors_total')?.get())?.values.filter((v) => v.labels.stage === 'incidents') ?? [];
    expect(Object.fromEntries(values.map((v) => [v.labels.code, v.value]))).toEqual({ ZTW_STORE_UNAVAILABLE: 1, ZTW_STORE_QUERY_FAILED: 1 });
    // The third write went through.
    const [row] = await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.database}.incidents FINAL`);
    expect(Number(row?.n)).toBe(1);
  });
});
