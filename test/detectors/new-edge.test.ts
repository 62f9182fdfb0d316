import { describe, expect, it } from 'vitest';
import { isIpAddress } from '../../detectors/new-edge.ts';
import { MINUTE, T0, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const only = { enabled: ['new_edge'] };
const catalog = spiffe('shop', 'catalog');
const reviews = spiffe('shop', 'reviews');

/** Two hours of catalog → search/pricing and reviews → catalog. */
function background() {
  return [
    ...makeTraffic({ src: catalog, dst: 'search', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 10, seed: 1 }),
    ...makeTraffic({ src: catalog, dst: 'pricing', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 6, seed: 2 }),
    ...makeTraffic({ src: reviews, dst: 'catalog', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 8, seed: 3 }),
  ];
}

describe('new_edge', () => {
  it('flags an established identity calling a sensitive service it never called; denied raises it to critical', async () => {
    const probe = makeTraffic({ src: catalog, dst: 'vault', dstNamespace: 'vault', fromMs: T0 + 100 * MINUTE, toMs: T0 + 101 * MINUTE, perMinute: 3, denyRatio: 1, decisionReason: 'ns[vault]-policy[vault-callers]-rule[0]' });
    const { anomalies } = await runDetectors([...background(), ...probe], only);
    expect(anomalies).toHaveLength(1);
    const a = anomalies[0];
    expect(a?.detector).toBe('new_edge');
    expect(a?.src).toBe(catalog);
    expect(a?.dst).toBe('vault');
    expect(a?.severity).toBe('critical');
    expect(a?.evidence.established_identity).toBe(true);
    expect(a?.evidence.sensitive_namespace).toBe(true);
    expect(a?.evidence.known_destinations).toEqual(expect.arrayContaining(['search', 'pricing']));
    expect(a?.evidence.policies).toEqual({ 'ns[vault]-policy[vault-callers]-rule[0]': expect.any(Number) });
  });

  it('keeps a brand-new identity (a rollout) calling its dependencies at info, and learns silently during warm-up', async () => {
    const checkoutV2 = spiffe('shop', 'checkout-v2');
    const rollout = [
      ...makeTraffic({ src: checkoutV2, dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 110 * MINUTE, perMinute: 10, seed: 5 }),
      ...makeTraffic({ src: checkoutV2, dst: 'cart', fromMs: T0 + 100 * MINUTE, toMs: T0 + 110 * MINUTE, perMinute: 10, seed: 6 }),
    ];
    // During the first hour everything is new; nothing is raised for it.
    const early = makeTraffic({ src: reviews, dst: 'ratings', fromMs: T0 + 30 * MINUTE, toMs: T0 + 40 * MINUTE, perMinute: 5, seed: 7 });
    const { anomalies } = await runDetectors([...background(), ...rollout, ...early], only);
    expect(anomalies.length).toBeGreaterThan(0);
    expect(anomalies.every((a) => a.severity === 'info' && a.src === checkoutV2)).toBe(true);
  });

  it('counts a workload only ever seen serving as established when it first calls out', async () => {
    const images = spiffe('media', 'images');
    const served = makeTraffic({ src: catalog, dst: 'images', dstIdentity: images, fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 6, seed: 11 });
    // payments has served another caller all along: it is not a new service.
    const paid = makeTraffic({ src: reviews, dst: 'payments', dstNamespace: 'payments', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 2, seed: 13 });
    const firstCall = makeTraffic({ src: images, dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 101 * MINUTE, perMinute: 2, seed: 12 });
    const { anomalies } = await runDetectors([...background(), ...served, ...paid, ...firstCall], only);
    expect(anomalies.map((a) => [a.src, a.dst, a.severity, a.evidence.established_identity])).toEqual([[images, 'payments', 'high', true]]);
  });

  it('records an allowed new edge outside sensitive namespaces at info, and pages a denied one', async () => {
    const allowed = makeTraffic({ src: reviews, dst: 'search', fromMs: T0 + 100 * MINUTE, toMs: T0 + 101 * MINUTE, perMinute: 3, seed: 31 });
    // Two denied calls three minutes apart add up: the edge stays new for the window.
    const denied = [T0 + 105 * MINUTE, T0 + 108 * MINUTE].flatMap((at, i) => makeTraffic({ src: reviews, dst: 'pricing', fromMs: at, toMs: at + 1000, perMinute: 60, denyRatio: 1, seed: 32 + i }));
    // A single call (a rare legitimate edge looks the same) is recorded, not paged.
    const once = makeTraffic({ src: reviews, dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 110 * MINUTE, toMs: T0 + 110 * MINUTE + 1000, perMinute: 60, seed: 34 });
    const paid = makeTraffic({ src: catalog, dst: 'payments', dstNamespace: 'payments', fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 2, seed: 35 });
    const { anomalies } = await runDetectors([...background(), ...paid, ...allowed, ...denied, ...once], only);
    expect(anomalies.map((a) => [a.dst, a.severity])).toEqual([['search', 'info'], ['pricing', 'medium'], ['payments', 'info']]);
  });

  it('keeps allowed calls to a brand-new service at info, even from established identities', async () => {
    // ledger appears at +90 min (a new service) and two established workloads start calling it.
    const wiredIn = [
      ...makeTraffic({ src: catalog, dst: 'ledger', dstNamespace: 'payments', fromMs: T0 + 90 * MINUTE, toMs: T0 + 100 * MINUTE, perMinute: 4, seed: 21 }),
      ...makeTraffic({ src: reviews, dst: 'ledger', dstNamespace: 'payments', fromMs: T0 + 91 * MINUTE, toMs: T0 + 100 * MINUTE, perMinute: 4, seed: 22 }),
    ];
    const { anomalies } = await runDetectors([...background(), ...wiredIn], only);
    expect(anomalies.length).toBe(2);
    expect(anomalies.map((a) => [a.dst, a.severity, a.evidence.new_destination])).toEqual([['ledger', 'info', true], ['ledger', 'info', true]]);
  });

  it('never treats IP addresses as identities', () => {
    expect(isIpAddress('10.99.0.5')).toBe(true);
    expect(isIpAddress('fe80::1')).toBe(true);
    expect(isIpAddress(catalog)).toBe(false);
    expect(isIpAddress('alice@example.com')).toBe(false);
  });
});
