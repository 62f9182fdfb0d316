import { describe, expect, it } from 'vitest';
import { MINUTE, T0, alerting, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const cart = spiffe('shop', 'cart');

describe('plaintext', () => {
  it('flags a caller without mTLS reaching a service that normally sees only mTLS', async () => {
    const events = [
      ...makeTraffic({ src: cart, dst: 'orders', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 20 }),
      ...makeTraffic({ src: '10.99.0.5', dst: 'orders', fromMs: T0 + 100 * MINUTE, toMs: T0 + 105 * MINUTE, perMinute: 10, mtls: 'no', seed: 7 }),
    ];
    const { anomalies } = await runDetectors(events, { enabled: ['plaintext'] });
    const found = alerting(anomalies, 'plaintext');
    expect(found).toHaveLength(1);
    expect(found[0]?.src).toBe('10.99.0.5');
    expect(found[0]?.dst).toBe('orders');
    expect(found[0]?.severity).toBe('high');
    expect(found[0]?.evidence.baseline_mtls_share).toBe(1);
    expect(found[0]?.evidence.source_ips).toEqual({ '10.99.0.5': expect.any(Number) });
  });

  it('flags any plaintext to a service declared STRICT, even without a baseline', async () => {
    const events = makeTraffic({ src: '10.99.0.6', dst: 'ledger', dstNamespace: 'payments', fromMs: T0, toMs: T0 + 3 * MINUTE, perMinute: 6, mtls: 'no' });
    const { anomalies } = await runDetectors(events, { enabled: ['plaintext'], options: { plaintext: { strictServices: ['ledger'] } } });
    const found = alerting(anomalies, 'plaintext');
    expect(found).toHaveLength(1);
    // payments is a sensitive namespace by default.
    expect(found[0]?.severity).toBe('critical');
    expect(found[0]?.evidence.declared_strict).toBe(true);
  });

  it('does not flag plaintext to a service that always received some (PERMISSIVE with plaintext callers)', async () => {
    const events = [
      ...makeTraffic({ src: cart, dst: 'legacy', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 20 }),
      ...makeTraffic({ src: '10.20.0.9', dst: 'legacy', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 10, mtls: 'no', seed: 3 }),
      ...makeTraffic({ src: '10.20.0.10', dst: 'legacy', fromMs: T0 + 100 * MINUTE, toMs: T0 + 105 * MINUTE, perMinute: 10, mtls: 'no', seed: 4 }),
    ];
    const { anomalies } = await runDetectors(events, { enabled: ['plaintext'] });
    expect(anomalies).toEqual([]);
  });

  it('leaves plaintext health checks out, so probes outnumbering mTLS on a quiet service hide no client', async () => {
    // Kubelet probes through the sidecar (no probe rewrite): plaintext from three node addresses,
    // three times the service's own mTLS traffic.
    const probes = ['10.0.1.21', '10.0.2.21', '10.0.3.21'].flatMap((node, i) =>
      makeTraffic({ src: node, dst: 'fraud', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 3, mtls: 'no', path: i === 2 ? '/app-health/fraud/readyz' : '/healthz/ready', seed: 20 + i }),
    );
    const events = [
      ...makeTraffic({ src: cart, dst: 'fraud', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 3 }),
      ...probes,
      ...makeTraffic({ src: '10.42.244.16', dst: 'fraud', fromMs: T0 + 100 * MINUTE, toMs: T0 + 106 * MINUTE, perMinute: 12, mtls: 'no', path: '/v1/score', seed: 9 }),
    ];
    const { anomalies } = await runDetectors(events, { enabled: ['plaintext'] });
    const found = alerting(anomalies, 'plaintext');
    expect(found.map((a) => a.src)).toEqual(['10.42.244.16']);
    expect(found[0]?.evidence.baseline_mtls_share).toBe(1);
    expect(found[0]?.evidence.paths).toEqual({ 'GET /v1/score': expect.any(Number) });
  });

  it('does not flag a new node address whose plaintext requests are health checks', async () => {
    const events = [
      ...makeTraffic({ src: cart, dst: 'fraud', fromMs: T0, toMs: T0 + 110 * MINUTE, perMinute: 20 }),
      ...makeTraffic({ src: '10.0.4.21', dst: 'fraud', fromMs: T0 + 100 * MINUTE, toMs: T0 + 106 * MINUTE, perMinute: 6, mtls: 'no', path: '/livez', seed: 5 }),
    ];
    const { anomalies } = await runDetectors(events, { enabled: ['plaintext'] });
    expect(alerting(anomalies, 'plaintext')).toEqual([]);
  });
});
