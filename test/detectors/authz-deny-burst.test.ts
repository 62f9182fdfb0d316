import { describe, expect, it } from 'vitest';
import type { NormalizedEvent } from '../../core/event.ts';
import { MINUTE, T0, alerting, makeTraffic, runDetectors } from './helpers.ts';

const only = { enabled: ['authz_deny_burst'] };

/** Users asking the policy engine, with an occasional denial. */
function background(): NormalizedEvent[] {
  return ['alice@example.com', 'bob@example.com', 'carol@example.com'].flatMap((user, i) =>
    makeTraffic({ src: user, dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0, toMs: T0 + 100 * MINUTE, perMinute: 6, denyRatio: 0.02, path: `/api/v1/profile/${i}`, decisionReason: 'profile/authz/allow', seed: i + 1 }),
  );
}

describe('authz_deny_burst', () => {
  it('flags one principal denied across many distinct actions', async () => {
    const probes = Array.from({ length: 12 }, (_, i) =>
      makeTraffic({ src: 'mallory@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0 + 90 * MINUTE + i * 8000, toMs: T0 + 90 * MINUTE + i * 8000 + 1000, perMinute: 60, decision: 'deny', path: `/api/v1/admin/${['users', 'roles', 'keys', 'export', 'billing', 'audit'][i % 6]}/${i}`, decisionReason: 'profile/authz/allow', seed: 100 + i }),
    ).flat();
    const { anomalies } = await runDetectors([...background(), ...probes], only);
    const found = alerting(anomalies, 'authz_deny_burst');
    expect(found).toHaveLength(1);
    expect(found[0]?.src).toBe('mallory@example.com');
    expect(found[0]?.evidence.distinct_actions as number).toBeGreaterThanOrEqual(5);
    expect(found[0]?.evidence.policies).toEqual({ 'profile/authz/allow': expect.any(Number) });
    expect((found[0]?.evidence.sample_request_ids as string[]).length).toBeGreaterThan(0);
  });

  it('works on application decision logs alone, without a destination service', async () => {
    const user = (email: string, seed: number) => makeTraffic({ src: email, dst: '', source: 'opa', reporter: 'authz', fromMs: T0, toMs: T0 + 60 * MINUTE, perMinute: 4, denyRatio: 0.02, path: '/reports/{id}', seed });
    const probes = Array.from({ length: 8 }, (_, i) =>
      makeTraffic({ src: 'eve@example.com', dst: '', source: 'opa', reporter: 'authz', fromMs: T0 + 50 * MINUTE + i * 5000, toMs: T0 + 50 * MINUTE + i * 5000 + 1000, perMinute: 60, decision: 'deny', path: `/admin/${i}/grant`, seed: 200 + i }),
    ).flat();
    const { anomalies } = await runDetectors([...user('ann@example.com', 1), ...user('ben@example.com', 2), ...probes], only);
    // No service is named by application decision logs: the policy that denied is the target.
    expect(alerting(anomalies, 'authz_deny_burst').map((a) => [a.src, a.dst])).toEqual([['eve@example.com', 'policy ns[shop]-policy[test]-rule[0]']]);
  });

  it('counts distinct concrete paths, so enumerating ids under one route template is probing too', async () => {
    const probes = Array.from({ length: 10 }, (_, i) =>
      makeTraffic({ src: 'mallory@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0 + 90 * MINUTE + i * 6000, toMs: T0 + 90 * MINUTE + i * 6000 + 1000, perMinute: 60, decision: 'deny', path: `/api/v1/users/${1000 + i}`, decisionReason: 'profile/authz/allow', seed: 300 + i }),
    )
      .flat()
      .map((e) => ({ ...e, route: '/api/v1/users/{id}' }));
    const { anomalies } = await runDetectors([...background(), ...probes], only);
    const found = alerting(anomalies, 'authz_deny_burst');
    expect(found.map((a) => a.src)).toEqual(['mallory@example.com']);
    expect(found[0]?.evidence.distinct_actions as number).toBeGreaterThanOrEqual(8);
  });

  it('finds a slow probe: five actions over ten minutes, never more than two in one short window', async () => {
    const probes = Array.from({ length: 5 }, (_, i) =>
      makeTraffic({ src: 'mallory@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0 + 85 * MINUTE + i * 150_000, toMs: T0 + 85 * MINUTE + i * 150_000 + 1000, perMinute: 60, decision: 'deny', path: `/api/v1/${['users', 'roles', 'keys', 'export', 'billing'][i]}/all`, decisionReason: 'profile/authz/allow', seed: 400 + i }),
    ).flat();
    const { anomalies } = await runDetectors([...background(), ...probes], only);
    const found = alerting(anomalies, 'authz_deny_burst');
    expect(found.map((a) => a.src)).toEqual(['mallory@example.com']);
    expect(found[0]?.evidence.slow).toBe(true);
    expect(found[0]?.evidence.window_seconds).toBe(900);
    expect(found[0]?.evidence.distinct_actions).toBe(5);
    // With the slow window off, the short window alone does not see it.
    const { anomalies: without } = await runDetectors([...background(), ...probes], { ...only, options: { authz_deny_burst: { slowWindowSeconds: 0 } } });
    expect(alerting(without, 'authz_deny_burst')).toEqual([]);
  });

  it('finds a slow probe by a busy principal whose own background denials hide it in the counts: routes it was never denied on', async () => {
    // dave asks 12 times a minute about orders/{id} and invoices/{id}, denied 5% of the time, each
    // denial a different id; the decision log names concrete paths only (no route template).
    const busy = (['orders', 'invoices'] as const).flatMap((word, w) =>
      makeTraffic({ src: 'dave@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 6, denyRatio: 0.05, decisionReason: 'profile/authz/allow', seed: 50 + w }).map((e, i) => ({ ...e, path: `/api/v1/${word}/${1000 + i}`, route: '' })),
    );
    // Six ids under a route dave never used, one every 100 s.
    const probes = Array.from({ length: 6 }, (_, i) =>
      makeTraffic({ src: 'dave@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0 + 95 * MINUTE + i * 100_000, toMs: T0 + 95 * MINUTE + i * 100_000 + 1000, perMinute: 60, decision: 'deny', path: `/api/v1/admin/users/${7000 + i * 13}`, decisionReason: 'profile/authz/allow', seed: 500 + i }),
    )
      .flat()
      .map((e) => ({ ...e, route: '' }));
    const { anomalies: quiet } = await runDetectors([...background(), ...busy], only);
    expect(alerting(quiet, 'authz_deny_burst')).toEqual([]);
    const { anomalies } = await runDetectors([...background(), ...busy, ...probes], only);
    const found = alerting(anomalies, 'authz_deny_burst');
    expect(found.map((a) => a.src)).toEqual(['dave@example.com']);
    expect(found[0]?.evidence.slow).toBe(true);
    expect(found[0]?.evidence.novel_actions as number).toBeGreaterThanOrEqual(5);
    expect(Date.parse(found[0]?.first_seen ?? '')).toBeGreaterThanOrEqual(T0 + 95 * MINUTE - 10_000);
  });

  it('does not flag one request retried many times', async () => {
    const retries = makeTraffic({ src: 'bob@example.com', dst: 'profile', source: 'opa', reporter: 'authz', fromMs: T0 + 90 * MINUTE, toMs: T0 + 91 * MINUTE, perMinute: 20, decision: 'deny', path: '/api/v1/profile/settings', seed: 9 });
    const { anomalies } = await runDetectors([...background(), ...retries], only);
    expect(anomalies).toEqual([]);
  });
});
