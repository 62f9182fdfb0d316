import { describe, expect, it } from 'vitest';
import { computeRobustStats, computeRobustZ, findOnsetTs } from '../../detectors/baseline.ts';
import { VolumeOptions, createVolumeRunner, type VolumeRow } from '../../detectors/volume.ts';
import { Value } from '@sinclair/typebox/value';
import { MINUTE, T0, alerting, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const only = { enabled: ['volume'] };
const reports = spiffe('analytics', 'reports');

describe('volume', () => {
  it('flags bytes per request far above the edge baseline (exfiltration over an existing edge)', async () => {
    const events = [
      ...makeTraffic({ src: reports, dst: 'customers', fromMs: T0, toMs: T0 + 100 * MINUTE, perMinute: 20, bytesOut: 2000, seed: 1 }),
      ...makeTraffic({ src: reports, dst: 'customers', fromMs: T0 + 100 * MINUTE, toMs: T0 + 106 * MINUTE, perMinute: 20, bytesOut: 150_000, seed: 2 }),
      ...makeTraffic({ src: reports, dst: 'customers', fromMs: T0 + 106 * MINUTE, toMs: T0 + 120 * MINUTE, perMinute: 20, bytesOut: 2000, seed: 3 }),
    ];
    const { anomalies } = await runDetectors(events, only);
    const found = alerting(anomalies, 'volume');
    expect(found).toHaveLength(1);
    const a = found[0];
    expect([a?.src, a?.dst]).toEqual([reports, 'customers']);
    expect(a?.evidence.ratio as number).toBeGreaterThan(20);
    // first_seen: the first bucket of the excess, not the start of the window looked back over.
    expect(Date.parse(a?.first_seen ?? '')).toBeGreaterThanOrEqual(T0 + 100 * MINUTE - 10_000);
    expect(Date.parse(a?.first_seen ?? '')).toBeLessThan(T0 + 100 * MINUTE + 30_000);
    expect(a?.evidence.baseline_median_bytes_per_request as number).toBeGreaterThan(1500);
    expect(a?.evidence.baseline_median_bytes_per_request as number).toBeLessThan(3000);
    expect((a?.evidence.largest_requests as unknown[]).length).toBeGreaterThan(0);
  });

  it('does not flag a traffic surge that keeps bytes per request', async () => {
    const events = [
      ...makeTraffic({ src: reports, dst: 'customers', fromMs: T0, toMs: T0 + 100 * MINUTE, perMinute: 20, bytesOut: 2000, bytesSigma: 0.8, seed: 4 }),
      ...makeTraffic({ src: reports, dst: 'customers', fromMs: T0 + 100 * MINUTE, toMs: T0 + 120 * MINUTE, perMinute: 100, bytesOut: 2000, bytesSigma: 0.8, seed: 5 }),
    ];
    const { anomalies } = await runDetectors(events, only);
    expect(anomalies).toEqual([]);
  });

  it('dates the excess from its first large bucket, not from a slightly large ordinary one before it on a sparse edge', () => {
    // One request every 30 s of about 600 B; 60 s before the export one ordinary response of 3 KB
    // (5× the median), then 300 KB responses. Nothing in between drains the 3 KB bucket's excess.
    const runner = createVolumeRunner(Value.Default(VolumeOptions, {}) as never, new Set(), 20);
    const startS = T0 / 1000;
    const onsetS = startS + 3600;
    const rows: VolumeRow[] = [];
    for (let ts = startS, i = 0; ts < onsetS + 300; ts += 30, i++) {
      const bytes = ts >= onsetS ? 300_000 : ts === onsetS - 60 ? 3000 : 500 + ((i * 37) % 200);
      rows.push({ ts, src_key: reports, dst_key: 'customers', src_namespace: 'analytics', dst_namespace: 'crm', requests: 1, bytes });
    }
    const found: number[] = [];
    for (let endS = startS + 20; endS <= onsetS + 300; endS += 20) {
      const inWindow = rows.filter((r) => r.ts >= endS - 120 && r.ts < endS);
      for (const c of runner.evaluate({ startMs: (endS - 120) * 1000, endMs: endS * 1000 }, inWindow)) found.push(c.firstEvidenceMs);
    }
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toBe(onsetS * 1000);
    // The plain CUSUM onset would be the 3 KB bucket.
    const buckets = rows.filter((r) => r.ts >= onsetS - 100 && r.ts <= onsetS).map((r) => ({ ts: r.ts, observed: r.bytes, expected: 600 }));
    expect(findOnsetTs(buckets)).toBe(onsetS - 60);
    expect(findOnsetTs(buckets, 2, 0.2)).toBe(onsetS);
  });

  it('does not flag a large payload of a kind the edge has sent before (a heavy tail), and still flags every response growing', () => {
    // One 2 KB response every 30 s; every ten minutes one of 80 KB instead. The median and MAD of its
    // windows ignore that tail; the edge's p99 window does not.
    const runner = createVolumeRunner(Value.Default(VolumeOptions, {}) as never, new Set(), 20);
    const startS = T0 / 1000;
    const burstS = startS + 7200;
    const rows: VolumeRow[] = [];
    for (let ts = startS, i = 0; ts < burstS + 300; ts += 10, i++) {
      if (i % 3 !== 0) continue;
      const tail = i % 60 === 30;
      const bytes = ts >= burstS ? 40_000 : tail ? 80_000 : 1800 + ((i * 53) % 400);
      rows.push({ ts, src_key: reports, dst_key: 'customers', src_namespace: 'analytics', dst_namespace: 'crm', requests: 1, bytes });
    }
    const flagged: number[] = [];
    for (let endS = startS + 20; endS <= burstS + 300; endS += 20) {
      const inWindow = rows.filter((r) => r.ts >= endS - 120 && r.ts < endS);
      if (runner.evaluate({ startMs: (endS - 120) * 1000, endMs: endS * 1000 }, inWindow).length > 0) flagged.push(endS);
    }
    expect(flagged.length).toBeGreaterThan(0);
    expect(Math.min(...flagged)).toBeGreaterThan(burstS);
    // Once the window is mostly made of the larger responses (past the edge's own tail).
    expect(Math.min(...flagged)).toBeLessThanOrEqual(burstS + 120);
  });

  it('does not flag one large response alone, and flags a second one soon after (the excess is not carried by one bucket)', () => {
    const run = (bigAt: readonly number[]) => {
      const runner = createVolumeRunner(Value.Default(VolumeOptions, {}) as never, new Set(), 20);
      const startS = T0 / 1000;
      const rows: VolumeRow[] = [];
      for (let ts = startS, i = 0; ts < startS + 5400; ts += 30, i++) {
        const big = bigAt.some((at) => ts === startS + at);
        rows.push({ ts, src_key: reports, dst_key: 'customers', src_namespace: 'analytics', dst_namespace: 'crm', requests: 1, bytes: big ? 500_000 : 1900 + ((i * 41) % 200) });
      }
      const flagged: number[] = [];
      for (let endS = startS + 20; endS <= startS + 5400; endS += 20) {
        const inWindow = rows.filter((r) => r.ts >= endS - 120 && r.ts < endS);
        if (runner.evaluate({ startMs: (endS - 120) * 1000, endMs: endS * 1000 }, inWindow).length > 0) flagged.push(endS - startS);
      }
      return flagged;
    };
    expect(run([4500])).toEqual([]);
    const twice = run([4500, 4560]);
    expect(twice.length).toBeGreaterThan(0);
    expect(Math.min(...twice)).toBeLessThanOrEqual(4600);
  });

  it('does not flag a few heavy-tail responses on an edge mixing small and large routes, and flags every response growing', () => {
    // One request per 10 s bucket: four in five from a ~2 KB route, one in five from a ~9 KB route,
    // and about one in a hundred a heavy-tail response (30–60 KB). At 2 h, three heavy-tail responses
    // (300, 60 and 50 KB) among nine ordinary ones in two minutes: the window's mean is ten times the
    // edge's, even without its largest bucket, but three large buckets in twelve are not surprising
    // on this edge. At 1 h, every response eight times larger for ten minutes.
    const run = (withExport: boolean) => {
      const runner = createVolumeRunner(Value.Default(VolumeOptions, {}) as never, new Set(), 20);
      const startS = T0 / 1000;
      const tailS = startS + 7200;
      const exportS = startS + 3600;
      const rows: VolumeRow[] = [];
      for (let ts = startS, i = 0; ts < startS + 9000; ts += 10, i++) {
        let bytes = i % 5 === 2 ? 8500 + ((i * 53) % 1000) : 1800 + ((i * 37) % 400);
        if (i % 97 === 50) bytes = 30_000 + ((i * 131) % 30_000);
        if (ts === tailS + 10) bytes = 300_000;
        if (ts === tailS + 50) bytes = 60_000;
        if (ts === tailS + 90) bytes = 50_000;
        if (withExport && ts >= exportS && ts < exportS + 600) bytes *= 8;
        rows.push({ ts, src_key: reports, dst_key: 'customers', src_namespace: 'analytics', dst_namespace: 'crm', requests: 1, bytes });
      }
      const flagged: number[] = [];
      for (let endS = startS + 20; endS <= startS + 9000; endS += 20) {
        const inWindow = rows.filter((r) => r.ts >= endS - 120 && r.ts < endS);
        if (runner.evaluate({ startMs: (endS - 120) * 1000, endMs: endS * 1000 }, inWindow).length > 0) flagged.push(endS - startS);
      }
      return flagged;
    };
    expect(run(false)).toEqual([]);
    const exported = run(true);
    expect(exported.length).toBeGreaterThan(0);
    expect(Math.min(...exported)).toBeGreaterThan(3600);
    expect(Math.min(...exported)).toBeLessThanOrEqual(3600 + 120);
    expect(Math.max(...exported)).toBeLessThan(3600 + 720);
  });

  it('computes robust statistics', () => {
    const stats = computeRobustStats([1, 2, 3, 4, 100]);
    expect(stats.median).toBe(3);
    expect(stats.mad).toBe(1);
    expect(stats.max).toBe(100);
    expect(computeRobustZ(3, stats)).toBe(0);
    expect(computeRobustZ(100, stats)).toBeGreaterThan(30);
  });
});
