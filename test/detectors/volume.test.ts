import { describe, expect, it } from 'vitest';
import { computeRobustStats, computeRobustZ } from '../../detectors/baseline.ts';
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

  it('computes robust statistics', () => {
    const stats = computeRobustStats([1, 2, 3, 4, 100]);
    expect(stats.median).toBe(3);
    expect(stats.mad).toBe(1);
    expect(stats.max).toBe(100);
    expect(computeRobustZ(3, stats)).toBe(0);
    expect(computeRobustZ(100, stats)).toBeGreaterThan(30);
  });
});
