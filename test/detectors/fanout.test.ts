import { describe, expect, it } from 'vitest';
import type { NormalizedEvent } from '../../core/event.ts';
import { MINUTE, T0, alerting, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const only = { enabled: ['fanout'] };
const frontend = spiffe('shop', 'frontend');
const SERVICES = ['cart', 'catalog', 'orders', 'users', 'search', 'reviews', 'pricing', 'shipping', 'ledger', 'vault', 'auth', 'media'];

function background(): NormalizedEvent[] {
  return [
    ...makeTraffic({ src: frontend, dst: 'cart', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 20, seed: 1 }),
    ...makeTraffic({ src: frontend, dst: 'catalog', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 20, seed: 2 }),
  ];
}

describe('fanout', () => {
  it('flags an established source reaching many new destinations and ports (L7 denials and Hubble drops)', async () => {
    const scan = SERVICES.slice(2).flatMap((dst, i) => [
      ...makeTraffic({ src: frontend, dst, dstNamespace: dst === 'vault' ? 'vault' : 'shop', fromMs: T0 + 100 * MINUTE + i * 10_000, toMs: T0 + 100 * MINUTE + i * 10_000 + 2000, perMinute: 60, denyRatio: 1, seed: 10 + i }),
      ...makeTraffic({ src: frontend, dst, source: 'hubble', reporter: 'network', dstPort: 6379, fromMs: T0 + 100 * MINUTE + i * 10_000, toMs: T0 + 100 * MINUTE + i * 10_000 + 1000, perMinute: 60, denyRatio: 1, decisionReason: 'POLICY_DENIED', seed: 40 + i }),
    ]);
    const { anomalies } = await runDetectors([...background(), ...scan], only);
    const found = alerting(anomalies, 'fanout');
    expect(found).toHaveLength(1);
    const a = found[0];
    expect(a?.src).toBe(frontend);
    expect(a?.evidence.established_source).toBe(true);
    expect(a?.evidence.new_targets as number).toBeGreaterThanOrEqual(6);
    expect(a?.evidence.sensitive_namespaces).toEqual(['vault']);
    expect(a?.severity).toBe('critical');
    expect(Object.keys(a?.evidence.reported_by as object).sort()).toEqual(['envoy', 'hubble']);
  });

  it('flags a slow scan — one denied target every three minutes — that no single window shows, and not rare edges that succeed', async () => {
    const orders = spiffe('shop', 'orders');
    const slow = SERVICES.slice(2, 10).flatMap((dst, i) =>
      makeTraffic({ src: frontend, dst, fromMs: T0 + 90 * MINUTE + i * 3 * MINUTE, toMs: T0 + 90 * MINUTE + i * 3 * MINUTE + 1000, perMinute: 60, denyRatio: 1, seed: 60 + i }),
    );
    // orders has rare edges that succeed, one every three minutes too.
    const rare = SERVICES.slice(2, 10).flatMap((dst, i) =>
      makeTraffic({ src: orders, dst: `${dst}-api`, fromMs: T0 + 90 * MINUTE + i * 3 * MINUTE, toMs: T0 + 90 * MINUTE + i * 3 * MINUTE + 1000, perMinute: 60, seed: 80 + i }),
    );
    const busy = makeTraffic({ src: orders, dst: 'cart', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 20, seed: 3 });
    const { anomalies } = await runDetectors([...background(), ...busy, ...slow, ...rare], only);
    const found = alerting(anomalies, 'fanout');
    expect(found.map((a) => a.src)).toEqual([frontend]);
    expect(found[0]?.evidence.slow_new_targets as number).toBeGreaterThanOrEqual(6);
    expect(found[0]?.summary).toContain('slow scan');
    // Detected once the sixth target is reached (+105 min), dated from the first (+90 min).
    expect(Date.parse(found[0]?.detected_at ?? '')).toBeLessThan(T0 + 107 * MINUTE);
    expect(Date.parse(found[0]?.first_seen ?? '')).toBeLessThan(T0 + 91 * MINUTE);
  });

  it('does not count targets first reached during the warm-up as never reached (a hub at the start of the data)', async () => {
    // frontend also calls ten services at a low rate; the data starts while their first calls are
    // still coming in (+6 … +10.5 min), before the 15-minute warm-up has ended.
    const hub = SERVICES.slice(2).flatMap((dst, i) => makeTraffic({ src: frontend, dst, fromMs: T0 + 6 * MINUTE + i * 30_000, toMs: T0 + 60 * MINUTE, perMinute: 0.5, seed: 100 + i }));
    const { anomalies } = await runDetectors([...background(), ...hub], only);
    expect(alerting(anomalies, 'fanout')).toEqual([]);
  });

  it('does not flag a periodic batch job that always reaches the same targets', async () => {
    const job = spiffe('ops', 'nightly-export');
    const runs: NormalizedEvent[] = [];
    for (let start = T0 + 20 * MINUTE; start < T0 + 140 * MINUTE; start += 30 * MINUTE) {
      SERVICES.slice(0, 10).forEach((dst, i) => runs.push(...makeTraffic({ src: job, dst, fromMs: start, toMs: start + 2 * MINUTE, perMinute: 3, seed: start + i })));
    }
    const { anomalies } = await runDetectors([...background(), ...runs], only);
    // Its first run is a brand-new source fanning out successfully: info at most; later runs nothing.
    expect(alerting(anomalies, 'fanout')).toEqual([]);
    expect(anomalies.filter((a) => a.detector === 'fanout').length).toBeLessThanOrEqual(1);
  });
  it('says when every attempt failed the TLS handshake, and which workload was seen on the source address before', async () => {
    const web = spiffe('storefront', 'web-bff');
    // web-bff's pod at 10.42.0.7 calls cart and catalog with its certificate.
    const before = ['cart', 'catalog'].flatMap((dst, i) => makeTraffic({ src: web, srcIp: '10.42.0.7', dst, fromMs: T0, toMs: T0 + 100 * MINUTE, perMinute: 6, seed: 200 + i }));
    // Its certificate expired: servers see only the address, every handshake failing.
    const failing = (ip: string, seed: number) =>
      SERVICES.slice(0, 8).flatMap((dst, i) => makeTraffic({ src: ip, dst, fromMs: T0 + 100 * MINUTE + i * 10_000, toMs: T0 + 100 * MINUTE + i * 10_000 + 5000, perMinute: 60, tlsFailure: 'CERTIFICATE_VERIFY_FAILED', status: 0, responseFlags: ['UF'], seed: seed + i }));
    const { anomalies } = await runDetectors([...background(), ...before, ...failing('10.42.0.7', 300), ...failing('10.9.9.9', 400)], only);
    const byIp = (ip: string) => alerting(anomalies, 'fanout').find((a) => a.src === ip);
    expect(byIp('10.42.0.7')?.evidence).toMatchObject({ tls_failure_share: 1, tls_failures: { CERTIFICATE_VERIFY_FAILED: expect.any(Number) }, ip_identities: [web] });
    // A failed handshake is one failed attempt (it is also an error decision): never above 100%.
    expect(byIp('10.42.0.7')?.evidence.failed_share).toBe(1);
    expect(byIp('10.42.0.7')?.summary).toContain('100% denied or failed');
    // An address no workload was seen on names none.
    expect(byIp('10.9.9.9')?.evidence).toMatchObject({ tls_failure_share: 1, ip_identities: [] });
    // Requests that reached an application are no handshake failures.
    expect(alerting(anomalies, 'fanout').find((a) => a.src === frontend)).toBeUndefined();
  }, 120_000);
});
