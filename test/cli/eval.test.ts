import { describe, expect, it, vi } from 'vitest';
import { HELD_OUT_SEEDS, PREVIOUS_HELD_OUT_SEEDS, TUNING_SEEDS, run as runEval, planScenarios, formatReport } from '../../cli/commands/eval.ts';
import { RULE_403, RULE_TLS, evaluateStaticRule, matchesLabel, scoreAlerts, type EvalAlert } from '../../detectors/evaluation.ts';
import { makeTraffic, T0, MINUTE, spiffe } from '../detectors/helpers.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

describe('ztwatch eval', () => {
  it('prints recall, latency, pages per attack and false pages per hour for incidents, anomalies and the static rules', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    let printed: string;
    try {
      code = await runEval(['--quick', '--attacks', 'policy_misconfiguration,cert_expiry']);
      printed = stdout.mock.calls.map((c) => String(c[0])).join('');
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const lines = printed.split('\n');
    expect(lines.some((l) => l.startsWith('tuning seeds (1)'))).toBe(true);
    const header = lines.find((l) => l.startsWith('recall')) ?? '';
    for (const system of ['ztwatch incidents', 'ztwatch anomalies', 'rule 403>0 1m', 'rule TLS>0.1/s 2m']) expect(header).toContain(system);
    const row = (name: string) => lines.find((l) => l.trimStart().startsWith(name)) ?? '';
    // The incidents column comes first: both attacks of this short trace are paged for.
    expect(row('policy_misconfiguration').slice(40)).toMatch(/^1\.00 \(1\/1\) \d+ s/);
    expect(row('cert_expiry').slice(40)).toMatch(/^1\.00 \(1\/1\) \d+ s/);
    // Three pages for two attacks: the certificate incident reaches critical two minutes after it
    // paged, and ZtwatchIncidentCritical notifies its group a second time.
    expect(row('pages per attack').slice(40)).toMatch(/^1\.50 \(3\/2\)/);
    expect(row('false pages per hour').slice(40)).toMatch(/^\d+\.\d\d \(\d+ in 1\.8 h\)/);
  }, 240_000);

  it('plans traces from seeds, keeps held-out seeds apart, and scores pages by entity and time', () => {
    const plans = planScenarios([1, 2, 3, 4], 'tuning', 2, 10, 'random');
    expect(new Set(plans.map((p) => p.startMs % 86_400_000)).size).toBeGreaterThan(1);
    expect(planScenarios([1], 'tuning', 2, 10, 'random')).toEqual(planScenarios([1], 'tuning', 2, 10, 'random'));
    expect(HELD_OUT_SEEDS.filter((s) => TUNING_SEEDS.includes(s))).toEqual([]);
    // A fresh held-out list shares no seed with the one seen before.
    expect(HELD_OUT_SEEDS.filter((s) => PREVIOUS_HELD_OUT_SEEDS.includes(s) || TUNING_SEEDS.includes(s))).toEqual([]);
    expect(new Set(HELD_OUT_SEEDS).size).toBe(HELD_OUT_SEEDS.length);
    expect(TUNING_SEEDS.length + HELD_OUT_SEEDS.length).toBeGreaterThanOrEqual(20);
    // The held-out list follows its written rule: the first prime from 7 000 000 + k × 181 081.
    const isPrime = (n: number) => n > 1 && Array.from({ length: Math.floor(Math.sqrt(n)) - 1 }, (_, i) => i + 2).every((d) => n % d !== 0);
    const firstPrimeFrom = (n: number): number => (isPrime(n) ? n : firstPrimeFrom(n + 1));
    expect(HELD_OUT_SEEDS).toEqual(Array.from({ length: 12 }, (_, k) => firstPrimeFrom(7_000_000 + k * 181_081)));
    expect(new Set([...TUNING_SEEDS, ...HELD_OUT_SEEDS, ...PREVIOUS_HELD_OUT_SEEDS]).size).toBe(TUNING_SEEDS.length + HELD_OUT_SEEDS.length + PREVIOUS_HELD_OUT_SEEDS.length);
    const label = { class: 'policy_misconfiguration', src: null, dst: 'cart', start: new Date(T0).toISOString(), end: new Date(T0 + 10 * MINUTE).toISOString() };
    const hit: EvalAlert = { kind: 'incident', entities: ['x', 'cart'], firedMs: T0 + 30_000, endMs: T0 + 5 * MINUTE, detail: '' };
    const elsewhere: EvalAlert = { ...hit, entities: ['orders'] };
    const before: EvalAlert = { ...hit, firedMs: T0 - 30 * MINUTE, endMs: T0 - 10 * MINUTE };
    expect(matchesLabel(hit, label)).toBe(true);
    expect(matchesLabel(elsewhere, label)).toBe(false);
    expect(matchesLabel(before, label)).toBe(false);
    const score = scoreAlerts([hit, { ...hit, firedMs: T0 + 60_000 }, elsewhere], [label], 2);
    expect(score.classes.policy_misconfiguration).toEqual({ labels: 1, detected: 1, latenciesSeconds: [30] });
    expect(score.matchedAlerts).toBe(2);
    const report = formatReport({ 'ztwatch incidents': score });
    expect(report).toContain('1.00 (1/1) 30 s');
    expect(report).toContain('2.00 (2/1)');
    expect(report).toContain('0.50 (1 in 2 h)');
  });

  it('evaluates the static rules like Prometheus would: rate window, threshold, for-duration', async () => {
    const store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 20_000 } }));
    try {
      const frontend = spiffe('shop', 'frontend');
      await store.insertEvents([
        // One 403 a minute for ten minutes: rate > 0 for well over 1m → one alert.
        ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 10 * MINUTE, perMinute: 1, denyRatio: 1 }),
        // 20 TLS failures a minute (0.33/s) for 5 minutes → fires after 2m; 5 a minute never does.
        ...makeTraffic({ src: frontend, dst: 'orders', fromMs: T0, toMs: T0 + 5 * MINUTE, perMinute: 20, reporter: 'outbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', decision: 'error', status: 503 }),
        ...makeTraffic({ src: spiffe('shop', 'cart'), dst: 'orders', fromMs: T0, toMs: T0 + 10 * MINUTE, perMinute: 5, reporter: 'outbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', decision: 'error', status: 503 }),
      ]);
      const denied = await evaluateStaticRule(store, RULE_403, T0, T0 + 30 * MINUTE);
      expect(denied).toHaveLength(1);
      expect(denied[0]?.entities).toContain('cart');
      expect(denied[0]?.firedMs).toBeGreaterThanOrEqual(T0 + MINUTE);
      expect(denied[0]?.firedMs).toBeLessThanOrEqual(T0 + 2 * MINUTE);
      const tls = await evaluateStaticRule(store, RULE_TLS, T0, T0 + 30 * MINUTE);
      expect(tls.map((a) => a.entities[0])).toEqual([frontend]);
      expect(tls[0]?.firedMs).toBeGreaterThanOrEqual(T0 + 3 * MINUTE);
    } finally {
      await dropTestStore(store);
    }
  });
});
