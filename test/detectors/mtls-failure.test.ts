import { describe, expect, it } from 'vitest';
import { classifyTlsFailure } from '../../detectors/mtls-failure.ts';
import { MINUTE, T0, alerting, makeTraffic, runDetectors, spiffe } from './helpers.ts';

const only = { enabled: ['mtls_failure'] };
const orders = spiffe('shop', 'orders');

/** Normal mTLS traffic from orders to its three dependencies for two hours. */
function background() {
  return ['payments', 'inventory', 'shipping'].flatMap((dst, i) =>
    makeTraffic({ src: orders, dst, fromMs: T0, toMs: T0 + 120 * MINUTE, perMinute: 15, seed: i + 1 }),
  );
}

describe('mtls_failure', () => {
  it('does not flag the blip of a certificate rotation: a few failures within seconds', async () => {
    const blip = makeTraffic({ src: orders, dst: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 100 * MINUTE + 8000, perMinute: 60, reporter: 'outbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', status: 503, decision: 'error', mtls: 'unknown', seed: 30 });
    expect(blip.length).toBeGreaterThanOrEqual(7);
    const { anomalies } = await runDetectors([...background(), ...blip], only);
    expect(alerting(anomalies, 'mtls_failure')).toEqual([]);
  });

  it('flags a workload whose own certificate expired (client side), naming the reason class', async () => {
    const failing = ['payments', 'inventory', 'shipping'].flatMap((dst, i) =>
      makeTraffic({
        src: orders,
        dst,
        fromMs: T0 + 100 * MINUTE,
        toMs: T0 + 106 * MINUTE,
        perMinute: 10,
        reporter: 'outbound',
        tlsFailure: 'SSLV3_ALERT_CERTIFICATE_EXPIRED',
        status: 503,
        decision: 'error',
        responseFlags: ['UF', 'URX'],
        mtls: 'unknown',
        seed: 10 + i,
      }),
    );
    const { anomalies } = await runDetectors([...background(), ...failing], only);
    const found = alerting(anomalies, 'mtls_failure');
    // One workload at fault: the servers' side of the same handshakes is explained by it.
    expect(found).toHaveLength(1);
    const a = found[0];
    expect(a?.src).toBe(orders);
    expect(a?.severity).toBe('high');
    expect(a?.evidence.role).toBe('client');
    expect(a?.evidence.reason_class).toBe('expired');
    expect(a?.evidence.peer_count).toBe(3);
    expect(a?.evidence.reported_by).toEqual(['client']);
    expect((a?.evidence.sample_request_ids as string[]).length).toBeGreaterThan(0);
  });

  it('blames the server when its caller cannot verify it (one caller, one server: the reason decides)', async () => {
    const failing = makeTraffic({ src: orders, dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 104 * MINUTE, perMinute: 12, reporter: 'outbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', status: 503, decision: 'error', mtls: 'unknown', seed: 40 });
    const { anomalies } = await runDetectors([...background(), ...failing], only);
    const found = alerting(anomalies, 'mtls_failure');
    expect(found).toHaveLength(1);
    expect(found[0]?.dst).toBe('payments');
    expect(found[0]?.evidence.role).toBe('server');
    expect(found[0]?.evidence.reason_class).toBe('verify_failed');
    // payments is a sensitive namespace: high, raised to critical.
    expect(found[0]?.severity).toBe('critical');
  });

  it('blames the client when only the server logs that it cannot verify its one caller (server side, one caller)', async () => {
    // The caller's certificate expired; only the server's sidecar logs (inbound), and it sees the
    // caller by address. The server's other callers keep succeeding.
    const failing = makeTraffic({ src: '10.42.7.19', dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 104 * MINUTE, perMinute: 12, reporter: 'inbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', status: 0, decision: 'error', mtls: 'unknown', seed: 41 });
    const { anomalies } = await runDetectors([...background(), ...failing], only);
    const found = alerting(anomalies, 'mtls_failure');
    expect(found).toHaveLength(1);
    expect(found[0]?.src).toBe('10.42.7.19');
    expect(found[0]?.evidence.role).toBe('client');
    expect(found[0]?.evidence.reported_by).toEqual(['server']);
  });

  it('blames the server when only it logs that its one caller rejected its certificate (server side, alert received)', async () => {
    const failing = makeTraffic({ src: orders, dst: 'payments', dstNamespace: 'payments', fromMs: T0 + 100 * MINUTE, toMs: T0 + 104 * MINUTE, perMinute: 12, reporter: 'inbound', tlsFailure: 'SSLV3_ALERT_CERTIFICATE_EXPIRED', status: 0, decision: 'error', mtls: 'unknown', seed: 42 });
    const { anomalies } = await runDetectors([...background(), ...failing], only);
    const found = alerting(anomalies, 'mtls_failure');
    expect(found).toHaveLength(1);
    expect(found[0]?.dst).toBe('payments');
    expect(found[0]?.src).toBe(orders);
    expect(found[0]?.evidence.role).toBe('server');
  });

  it('does not flag single sporadic failures, nor connection errors of a redeploy', async () => {
    const sporadic = [0, 20, 40, 60, 80, 100].map((m, i) =>
      makeTraffic({ src: orders, dst: 'payments', fromMs: T0 + m * MINUTE, toMs: T0 + m * MINUTE + 1000, perMinute: 60, reporter: 'outbound', tlsFailure: 'CERTIFICATE_VERIFY_FAILED', status: 503, decision: 'error', seed: 20 + i }),
    ).flat();
    // inventory restarts: a minute of connect refused (UF, no TLS reason) for every caller.
    const redeploy = makeTraffic({ src: orders, dst: 'inventory', fromMs: T0 + 90 * MINUTE, toMs: T0 + 91 * MINUTE, perMinute: 120, reporter: 'outbound', status: 503, decision: 'error', responseFlags: ['UF', 'URX'], mtls: 'unknown', seed: 30 });
    expect(sporadic.length).toBeGreaterThan(0);
    const { anomalies } = await runDetectors([...background(), ...sporadic, ...redeploy], only);
    expect(anomalies.filter((a) => a.detector === 'mtls_failure')).toEqual([]);
  });

  it('classifies TLS failure reasons', () => {
    expect(classifyTlsFailure('SSLV3_ALERT_CERTIFICATE_EXPIRED')).toBe('expired');
    expect(classifyTlsFailure('TLSV1_ALERT_UNKNOWN_CA')).toBe('unknown_ca');
    expect(classifyTlsFailure('CERTIFICATE_VERIFY_FAILED')).toBe('verify_failed');
    expect(classifyTlsFailure('PEER_DID_NOT_RETURN_A_CERTIFICATE')).toBe('no_client_cert');
    expect(classifyTlsFailure('SSLV3_ALERT_HANDSHAKE_FAILURE')).toBe('no_client_cert');
    expect(classifyTlsFailure('NO_SHARED_CIPHER')).toBe('protocol');
    expect(classifyTlsFailure('CONNECTION_RESET_BY_PEER')).toBe('other');
  });
});
