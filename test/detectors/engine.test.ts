import { describe, expect, it } from 'vitest';
import { DETECTOR_BUCKET_SECONDS } from '../../detectors/detector.ts';
import { createDetectorEngine, MAX_FIRING_SERIES } from '../../detectors/engine.ts';
import { DETECTORS } from '../../detectors/registry.ts';
import { createMetrics } from '../../core/metrics.ts';
import { hasCode } from '../../core/errors.ts';
import type { Anomaly } from '../../core/anomaly.ts';
import { MIGRATIONS } from '../../store/schema.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { MINUTE, T0, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const frontend = spiffe('shop', 'frontend');

/** Two hours of frontend → cart with 1% denials, and a fully denied stretch [fromMin, toMin). */
function spikeTraffic(spikes: Array<[fromMin: number, toMin: number]>, endMin = 150) {
  const events = [];
  let cursor = 0;
  for (const [from, to] of spikes) {
    events.push(...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + cursor * MINUTE, toMs: T0 + from * MINUTE, perMinute: 20, denyRatio: 0.01, seed: cursor + 1 }));
    events.push(...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + from * MINUTE, toMs: T0 + to * MINUTE, perMinute: 20, denyRatio: 1, seed: from + 7 }));
    cursor = to;
  }
  events.push(...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + cursor * MINUTE, toMs: T0 + endMin * MINUTE, perMinute: 20, denyRatio: 0.01, seed: 99 }));
  return events;
}

describe('detector engine', () => {
  it('keeps the detectors’ bucket width in step with the rollups', () => {
    const ctx = { database: 'd', cluster: '', retentionDays: 1, anomalyRetentionDays: 1, deadLetterRetentionDays: 1, auditRetentionDays: 1 };
    const rollups = MIGRATIONS.filter((m) => m.id >= 100 && m.id < 200);
    expect(rollups.map((m) => m.id)).toEqual([100, 101, 102, 103, 104, 105]);
    for (const m of rollups) expect(m.statements(ctx).join('\n')).toContain(`toStartOfInterval(time, INTERVAL ${DETECTOR_BUCKET_SECONDS} SECOND)`);
    // Every rollup a registered detector reads is one of these (the engine scans what they declare).
    const created = rollups.flatMap((m) => m.statements(ctx)).join('\n');
    for (const d of Object.values(DETECTORS)) for (const table of d.rollups) expect(created, `${d.name} reads ${table}`).toContain(`CREATE TABLE IF NOT EXISTS d.${table}`);
  });

  it('opens an anomaly once, updates it while it persists, and resolves it after quiet event time', async () => {
    const run = await runDetectors(spikeTraffic([[100, 112]]), { enabled: ['deny_spike'], resolveAfterSeconds: 300 }, true);
    try {
      const ids = new Set(run.changes.map((c) => c.anomaly.id));
      expect(ids.size).toBe(1);
      const kinds = run.changes.map((c) => c.change);
      expect(kinds[0]).toBe('opened');
      expect(kinds.filter((k) => k === 'opened')).toHaveLength(1);
      expect(kinds[kinds.length - 1]).toBe('resolved');
      const resolved = run.changes[run.changes.length - 1]?.anomaly as Anomaly;
      // Last active window ends within a step of the spike's end; resolution comes after 5 quiet minutes.
      expect(Date.parse(resolved.last_seen)).toBeGreaterThanOrEqual(T0 + 111 * MINUTE);
      // (the long 300 s window of deny_spike keeps seeing the denials for a few minutes after)
      expect(Date.parse(resolved.last_seen)).toBeLessThanOrEqual(T0 + 118 * MINUTE);
      expect(resolved.first_seen < resolved.last_seen).toBe(true);

      // One row per change with a rising version (ReplacingMergeTree may fold them on insert or
      // merge); FINAL gives the last: resolved, with the version of the last change.
      const rows = await run.store.query<{ version: string }>(`SELECT max(version) AS version FROM ${run.store.database}.anomalies`);
      expect(Number(rows[0]?.version)).toBe(run.changes.length);
      const [final] = await run.store.query<{ status: string; subject: string; detected_at: string }>(
        `SELECT status, subject, formatDateTime(detected_at, '%Y-%m-%dT%H:%i:%S.000Z', 'UTC') AS detected_at FROM ${run.store.database}.anomalies FINAL`,
      );
      expect(final?.status).toBe('resolved');
      expect(final?.subject).toBe(`${frontend} -> cart`);
      expect(final?.detected_at).toMatch(/^2026-01-05T09:4\d:\d\d\.000Z$/);

      const metrics = await run.metrics.registry.getMetricsAsJSON();
      const opened = metrics.find((m) => m.name === 'ztwatch_anomalies_opened_total');
      expect(opened?.values).toEqual([expect.objectContaining({ value: 1, labels: { detector: 'deny_spike', severity: 'medium' } })]);
      // Resolved: no firing series left, nothing active.
      expect(metrics.find((m) => m.name === 'ztwatch_anomaly_firing')?.values).toEqual([]);
      expect(metrics.find((m) => m.name === 'ztwatch_anomalies_active')?.values ?? []).toEqual([]);
      const watermark = metrics.find((m) => m.name === 'ztwatch_detector_watermark_timestamp_seconds')?.values[0]?.value as number;
      expect(watermark).toBeGreaterThanOrEqual((T0 + 149 * MINUTE) / 1000);
    } finally {
      await dropTestStore(run.store);
    }
  });

  it('does not re-fire while a condition persists, and opens a new anomaly after a resolved one', async () => {
    const run = await runDetectors(spikeTraffic([[100, 130], [150, 155]], 170), { enabled: ['deny_spike'] });
    const opened = run.changes.filter((c) => c.change === 'opened');
    expect(opened).toHaveLength(2);
    expect(opened[0]?.anomaly.id).not.toBe(opened[1]?.anomaly.id);
    // The 30-minute spike: updates only on change or as a heartbeat, far fewer than its 90 windows.
    const firstId = opened[0]?.anomaly.id;
    expect(run.changes.filter((c) => c.anomaly.id === firstId && c.change === 'updated').length).toBeLessThanOrEqual(6);
  });

  it('suppresses lower-level findings explained by a higher-level one about the same source', async () => {
    const background = [
      ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 20, seed: 1 }),
      ...makeTraffic({ src: frontend, dst: 'catalog', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 20, seed: 2 }),
    ];
    // A slow scan: two new services a minute, few enough per window that new_edge alone would raise each.
    const targets = ['orders', 'users', 'search', 'reviews', 'pricing', 'shipping', 'ledger', 'auth', 'media', 'tax', 'geo', 'ads'];
    const scan = targets.flatMap((dst, i) =>
      makeTraffic({ src: frontend, dst, fromMs: T0 + 100 * MINUTE + i * 30_000, toMs: T0 + 100 * MINUTE + i * 30_000 + 2000, perMinute: 60, denyRatio: 1, seed: 10 + i }),
    );
    const both = await runDetectors([...background, ...scan], { enabled: ['fanout', 'new_edge'] });
    const fan = both.anomalies.filter((a) => a.detector === 'fanout');
    expect(fan).toHaveLength(1);
    const fanoutAt = Date.parse(fan[0]?.detected_at as string);
    const edges = both.anomalies.filter((a) => a.detector === 'new_edge');
    // new_edge raised the first few, before fan-out had enough evidence; none after it fired.
    expect(edges.length).toBeGreaterThan(0);
    expect(edges.length).toBeLessThan(targets.length);
    for (const e of edges) expect(Date.parse(e.detected_at)).toBeLessThan(fanoutAt);

    // Alone, new_edge raises more of them: each until the source has opened more than
    // maxNewEdgesPerSource new edges inside one window (then the rest is fanout's to report).
    const alone = await runDetectors([...background, ...scan], { enabled: ['new_edge'] });
    expect(alone.anomalies.length).toBeGreaterThan(edges.length);
  });

  it('rejects unknown detectors and invalid options', () => {
    const store = { database: 'x' } as never;
    const metrics = createMetrics();
    const bad = (detectors: Record<string, unknown>) => () => createDetectorEngine({ store, metrics, config: createTestConfig({ detectors }) });
    expect(bad({ enabled: ['no_such_detector'] })).toThrow(/unknown detector 'no_such_detector'/);
    expect(bad({ options: { deny_spike: { minDenies: 'many' } } })).toThrow(/detectors\.options\.deny_spike\.minDenies/);
    expect(bad({ options: { volume: { windowSeconds: 45 } } })).toThrow(/windowSeconds/);
    try {
      bad({ options: { fanout: { surprise: 1 } } })();
      expect.unreachable();
    } catch (err) {
      expect(hasCode(err, 'ZTW_CONFIG_INVALID')).toBe(true);
    }
  });

  it('runs live: warms up silently on stored history, then raises what arrives after', async () => {
    const config = createTestConfig({ clickhouse: { retentionDays: 20_000, anomalyRetentionDays: 20_000 }, detectors: { enabled: ['deny_spike'], intervalSeconds: 0.1, allowedLatenessSeconds: 0 } });
    const store = await createTestStore(config);
    try {
      await store.insertEvents(makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 90 * MINUTE, perMinute: 20, denyRatio: 0.01 }));
      const seen: Array<{ a: Anomaly; change: string }> = [];
      const metrics = createMetrics();
      const engine = createDetectorEngine({ store, metrics, config, onAnomaly: (a, change) => seen.push({ a, change }) });
      const live = engine.startLive();
      try {
        await expect.poll(async () => (await metrics.registry.getSingleMetricAsString('ztwatch_detector_watermark_timestamp_seconds')).includes(' 1767'), { timeout: 45_000 }).toBe(true);
        expect(seen).toEqual([]);
        await store.insertEvents(makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + 90 * MINUTE, toMs: T0 + 96 * MINUTE, perMinute: 20, denyRatio: 1, seed: 5 }));
        await expect.poll(() => seen.filter((s) => s.change === 'opened').length, { timeout: 45_000 }).toBe(1);
        expect(seen[0]?.a.detector).toBe('deny_spike');
        expect(seen[0]?.a.status).toBe('firing');
        const firing = await metrics.registry.getSingleMetricAsString('ztwatch_anomaly_firing');
        expect(firing).toContain(`subject="${frontend} -> cart"`);
      } finally {
        await live.close();
      }
    } finally {
      await dropTestStore(store);
    }
  }, 120_000);

  it('survives a restart: an anomaly open before it is neither re-opened nor lost, and resolves under its own id', async () => {
    const config = createTestConfig({ clickhouse: { retentionDays: 20_000, anomalyRetentionDays: 20_000 }, detectors: { enabled: ['deny_spike'], intervalSeconds: 0.1, allowedLatenessSeconds: 0 } });
    const store = await createTestStore(config);
    const traffic = (fromMin: number, toMin: number, denyRatio: number, seed: number) =>
      makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + fromMin * MINUTE, toMs: T0 + toMin * MINUTE, perMinute: 20, denyRatio, seed });
    try {
      await store.insertEvents(traffic(0, 90, 0.01, 1));
      await store.insertEvents(traffic(90, 96, 1, 2));
      const before: Array<{ a: Anomaly; change: string }> = [];
      const first = createDetectorEngine({ store, metrics: createMetrics(), config, onAnomaly: (a, change) => before.push({ a, change }) });
      // The first process starts on history that already holds the start of the spike: it warms up
      // silently on it, so feed the rest of the spike after it is live.
      let live = first.startLive();
      const opened = await (async () => {
        try {
          await store.insertEvents(traffic(96, 100, 1, 3));
          await expect.poll(() => before.filter((s) => s.change === 'opened').length, { timeout: 45_000 }).toBe(1);
          return before.find((s) => s.change === 'opened')?.a as Anomaly;
        } finally {
          await live.close();
        }
      })();

      // A new process on the same store while the denials go on, then quiet traffic.
      const after: Array<{ a: Anomaly; change: string }> = [];
      const metrics = createMetrics();
      const second = createDetectorEngine({ store, metrics, config, onAnomaly: (a, change) => after.push({ a, change }) });
      live = second.startLive();
      try {
        await expect.poll(async () => (await metrics.registry.getSingleMetricAsString('ztwatch_anomaly_firing')).includes(`subject="${frontend} -> cart"`), { timeout: 45_000 }).toBe(true);
        await store.insertEvents(traffic(100, 104, 1, 4));
        await store.insertEvents(traffic(104, 120, 0.01, 5));
        await expect.poll(() => after.filter((s) => s.change === 'resolved').length, { timeout: 45_000 }).toBe(1);
      } finally {
        await live.close();
      }
      expect(after.filter((s) => s.change === 'opened')).toEqual([]);
      const resolved = after.find((s) => s.change === 'resolved')?.a;
      expect(resolved?.id).toBe(opened.id);
      expect(resolved?.first_seen).toBe(opened.first_seen);
      expect(resolved?.detected_at).toBe(opened.detected_at);
      // Active until the denials stopped at minute 104, well after the restart.
      expect(Date.parse(resolved?.last_seen ?? '')).toBeGreaterThanOrEqual(T0 + 103 * MINUTE);
      const rows = await store.query<{ n: string }>(`SELECT count(DISTINCT id) AS n FROM ${store.database}.anomalies`);
      expect(Number(rows[0]?.n)).toBe(1);
    } finally {
      await dropTestStore(store);
    }
  }, 180_000);

  it('runs live without letting an event from the far future carry the watermark past the clock', async () => {
    const config = createTestConfig({
      clickhouse: { retentionDays: 20_000, anomalyRetentionDays: 20_000 },
      ingest: { maxFutureSeconds: 600 },
      detectors: { enabled: ['deny_spike'], intervalSeconds: 0.1, allowedLatenessSeconds: 0 },
    });
    const store = await createTestStore(config);
    try {
      await store.insertEvents(makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 30 * MINUTE, perMinute: 20, denyRatio: 0.01 }));
      // Written straight to the store, as another producer on the bus could: a month ahead.
      const aheadMs = Date.now() + 30 * 24 * 60 * MINUTE;
      const [future] = makeTraffic({ src: frontend, dst: 'cart', fromMs: aheadMs, toMs: aheadMs + MINUTE, perMinute: 1, denyRatio: 0 });
      await store.insertEvents([future as NonNullable<typeof future>]);
      const metrics = createMetrics();
      const engine = createDetectorEngine({ store, metrics, config });
      const live = engine.startLive();
      const watermark = async () => Number((await metrics.registry.getSingleMetricAsString('ztwatch_detector_watermark_timestamp_seconds')).trim().split(' ').pop());
      try {
        const startedS = Date.now() / 1000;
        await expect.poll(watermark, { timeout: 45_000 }).toBeGreaterThan(startedS);
        expect(await watermark()).toBeLessThanOrEqual(Date.now() / 1000 + 600);
      } finally {
        await live.close();
      }
    } finally {
      await dropTestStore(store);
    }
  }, 120_000);

  it('caps the firing series', () => {
    expect(MAX_FIRING_SERIES).toBe(200);
  });
});
