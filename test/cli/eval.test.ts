import { describe, expect, it, vi } from 'vitest';
import { run as runEval, planScenarios, formatReport } from '../../cli/commands/eval.ts';
import { RULE_403, RULE_TLS, evaluateStaticRule, matchesLabel, scoreAlerts, type EvalAlert } from '../../detectors/evaluation.ts';
import { makeTraffic, T0, MINUTE, spiffe } from '../detectors/helpers.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

describe('ztwatch eval', () => {
  it('prints recall, latency, precision and false alerts for ztwatch and the static rules', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    let printed: string;
    try {
      code = await runEval(['--quick', '--hours', '2', '--attacks', 'policy_misconfiguration,cert_expiry']);
      printed = stdout.mock.calls.map((c) => String(c[0])).join('');
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const header = printed.split('\n').find((l) => l.startsWith('recall'));
    expect(header).toContain('ztwatch');
    expect(header).toContain('403 rate > 0 for 1m');
    expect(header).toContain('TLS handshake errors > 0.1/s for 2m');
    const row = (name: string) => printed.split('\n').find((l) => l.trimStart().startsWith(name)) ?? '';
    // The ztwatch column comes first: recall 1.00 on both classes of this small trace.
    expect(row('policy_misconfiguration').slice(42)).toMatch(/^1\.00 \(1\/1\) \d+ s/);
    expect(row('cert_expiry').slice(42)).toMatch(/^1\.00 \(1\/1\) \d+ s/);
    expect(row('precision')).toMatch(/\d\.\d\d \(\d+\/\d+\)/);
    expect(row('false alerts per hour')).toMatch(/\d+\.\d\d \(\d+ in 2 h\)/);
  }, 240_000);

  it('plans varied scenarios and formats a report', () => {
    const plans = planScenarios([1, 2, 3, 4], 4, 'all');
    expect(new Set(plans.map((p) => p.services)).size).toBe(4);
    expect(new Set(plans.map((p) => p.startHour)).size).toBe(4);
    const label = { class: 'policy_misconfiguration', src: null, dst: 'cart', start: new Date(T0).toISOString(), end: new Date(T0 + 10 * MINUTE).toISOString() };
    const hit: EvalAlert = { kind: 'deny_spike', entities: ['x', 'cart'], firedMs: T0 + 30_000, endMs: T0 + 5 * MINUTE, detail: '' };
    const wrongKind: EvalAlert = { ...hit, kind: 'volume' };
    const tooEarly: EvalAlert = { ...hit, firedMs: T0 - 5 * MINUTE };
    expect(matchesLabel(hit, label)).toBe(true);
    expect(matchesLabel(wrongKind, label)).toBe(false);
    expect(matchesLabel(tooEarly, label)).toBe(false);
    const score = scoreAlerts([hit, wrongKind], [label], 2);
    expect(score.classes.policy_misconfiguration).toEqual({ labels: 1, detected: 1, latenciesSeconds: [30] });
    expect(score.matchedAlerts).toBe(1);
    const report = formatReport({ ztwatch: score });
    expect(report).toContain('1.00 (1/1) 30 s');
    expect(report).toContain('0.50 (1/2)');
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
