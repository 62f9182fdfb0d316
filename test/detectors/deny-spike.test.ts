import { describe, expect, it } from 'vitest';
import { computePoissonSurprise } from '../../detectors/baseline.ts';
import { MINUTE, T0, alerting, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const only = { enabled: ['deny_spike'] };
const frontend = spiffe('shop', 'frontend');

describe('deny_spike', () => {
  it('flags an edge whose denials jump far above its own baseline, with evidence', async () => {
    const events = [
      ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 100 * MINUTE, perMinute: 20, denyRatio: 0.01 }),
      // A policy change: every request of the edge is now denied, for five minutes.
      ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + 100 * MINUTE, toMs: T0 + 105 * MINUTE, perMinute: 20, denyRatio: 1, decisionReason: 'ns[shop]-policy[cart-callers]-rule[0]' }),
      ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0 + 105 * MINUTE, toMs: T0 + 115 * MINUTE, perMinute: 20, denyRatio: 0.01 }),
    ];
    const { anomalies } = await runDetectors(events, only);
    const found = alerting(anomalies, 'deny_spike');
    expect(found).toHaveLength(1);
    const a = found[0];
    expect(a?.src).toBe(frontend);
    expect(a?.dst).toBe('cart');
    expect(a?.status).toBe('resolved');
    // first_seen is the first bucket holding a denial in the detecting window (background ones included).
    expect(Date.parse(a?.first_seen ?? '')).toBeGreaterThanOrEqual(T0 + 99 * MINUTE);
    expect(Date.parse(a?.first_seen ?? '')).toBeLessThan(T0 + 101 * MINUTE);
    expect(a?.evidence.level).toBe('edge');
    expect(a?.evidence.denies as number).toBeGreaterThanOrEqual(15);
    expect(a?.evidence.baseline_deny_ratio as number).toBeLessThan(0.03);
    expect((a?.evidence.sample_request_ids as string[]).length).toBeGreaterThan(0);
    expect(Object.keys(a?.evidence.policies as object)).toContain('ns[shop]-policy[cart-callers]-rule[0]');
    expect(a?.summary).toMatch(/^Denials from .* to cart: \d+ of \d+ requests/);
  });

  it('names the top sources of a destination-level finding, with their share, and dates it from the onset', async () => {
    const mallory = spiffe('tools', 'debug-shell');
    const events = [
      ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 20, denyRatio: 0.01, seed: 4 }),
      // A source never seen before is denied at cart: its edge and the source itself have no
      // baseline yet, so only the destination can be judged — and must say who is behind it.
      ...makeTraffic({ src: mallory, dst: 'cart', fromMs: T0 + 100 * MINUTE, toMs: T0 + 103 * MINUTE, perMinute: 30, decision: 'deny', seed: 5 }),
    ];
    const { anomalies } = await runDetectors(events, only);
    const found = alerting(anomalies, 'deny_spike');
    expect(found).toHaveLength(1);
    const a = found[0];
    expect(a?.evidence.level).toBe('destination');
    expect([a?.src, a?.dst]).toEqual([mallory, 'cart']);
    expect((a?.evidence.actors as Array<{ src: string; share: number }>)[0]).toEqual(expect.objectContaining({ src: mallory, share: expect.any(Number) }));
    expect((a?.evidence.actors as Array<{ src: string; share: number }>)[0]?.share).toBeGreaterThan(0.9);
    expect(a?.summary).toContain(`Mostly from ${mallory} (`);
    // The window looked back over holds background denials too; first_seen is the attack's onset.
    expect(Date.parse(a?.first_seen ?? '')).toBeGreaterThanOrEqual(T0 + 100 * MINUTE - 10_000);
    expect(Date.parse(a?.first_seen ?? '')).toBeLessThan(T0 + 101 * MINUTE);
  });

  it('does not flag a steady background denial rate, nor traffic growth at a constant deny ratio', async () => {
    const events = [
      // 5% of requests always denied (a legacy client hitting a retired route).
      ...makeTraffic({ src: frontend, dst: 'catalog', fromMs: T0, toMs: T0 + 150 * MINUTE, perMinute: 40, denyRatio: 0.05, seed: 1 }),
      // Growth: three times the traffic, same 5% denied.
      ...makeTraffic({ src: spiffe('shop', 'checkout'), dst: 'payments', dstNamespace: 'payments', fromMs: T0, toMs: T0 + 90 * MINUTE, perMinute: 20, denyRatio: 0.05, seed: 2 }),
      ...makeTraffic({ src: spiffe('shop', 'checkout'), dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 90 * MINUTE, toMs: T0 + 150 * MINUTE, perMinute: 60, denyRatio: 0.05, seed: 3 }),
    ];
    const { anomalies } = await runDetectors(events, only);
    expect(anomalies.filter((a) => a.detector === 'deny_spike')).toEqual([]);
  });

  it('scores counts by their Poisson tail', () => {
    expect(computePoissonSurprise(0, 1)).toBe(0);
    expect(computePoissonSurprise(1, 1)).toBeCloseTo(-Math.log10(1 - Math.exp(-1)), 6);
    expect(computePoissonSurprise(20, 0.2)).toBeGreaterThan(20);
    expect(computePoissonSurprise(3, 3)).toBeLessThan(1);
  });
});
