import { describe, expect, it } from 'vitest';
import { createIndependentScenario, INDEPENDENT_LEARNING_MS } from '../../../ingest/simulate/independent/index.ts';
import { ATTACK_CLASSES, EXPECTED_DETECTOR } from '../../../ingest/simulate/index.ts';
import { PARSERS, detectFormat } from '../../../ingest/parsers/index.ts';
import type { NormalizedEvent } from '../../../core/event.ts';

const START = Date.UTC(2026, 2, 4, 9, 0, 0);
const HOUR = 3_600_000;
const DURATION = 4 * HOUR;

describe('independent scenario generator', () => {
  const scenario = createIndependentScenario({ seed: 7, startMs: START, durationMs: DURATION, maxPeakRps: 8 });
  const lines = scenario.generate(START, START + DURATION);
  const parsed = lines.map((l) => ({ line: l, result: PARSERS[l.format]?.parse(l.line, START) }));
  const events = parsed.flatMap((p) => (p.result?.ok ? [{ line: p.line, event: p.result.event }] : []));

  it('is deterministic by seed, whatever the chunking, and differs between seeds', () => {
    const again = createIndependentScenario({ seed: 7, startMs: START, durationMs: DURATION, maxPeakRps: 8 });
    const window = [START + 100 * 60_000, START + 112 * 60_000] as const;
    const whole = again.generate(...window);
    expect(whole.length).toBeGreaterThan(500);
    const chunked = [];
    for (let t = window[0]; t < window[1]; t += 6_543) chunked.push(...again.generate(t, Math.min(t + 6_543, window[1])));
    expect(chunked.map((l) => l.line)).toEqual(whole.map((l) => l.line));
    expect(lines.filter((l) => l.timeMs >= window[0] && l.timeMs < window[1]).map((l) => l.line)).toEqual(whole.map((l) => l.line));
    expect(again.labels).toEqual(scenario.labels);
    const other = createIndependentScenario({ seed: 8, startMs: START, durationMs: DURATION, maxPeakRps: 8 });
    expect(other.generate(...window).map((l) => l.line)).not.toEqual(whole.map((l) => l.line));
  });

  it('emits every line in event-time order in a registered wire format its parser reads without a dead letter', () => {
    expect(lines.length).toBeGreaterThan(20_000);
    const failures: string[] = [];
    let previous = -Infinity;
    let ordered = true;
    for (const { line, result } of parsed) {
      if (line.timeMs < previous) ordered = false;
      previous = line.timeMs;
      if (detectFormat(line.line) !== line.format) failures.push(`detected ${String(detectFormat(line.line))} for ${line.format}: ${line.line.slice(0, 100)}`);
      if (!result?.ok) failures.push(`${result ? result.reason : 'no parser'}: ${line.line.slice(0, 100)}`);
      else if (Math.abs(result.event.time - line.timeMs) > 1) failures.push(`time ${result.event.time} != ${line.timeMs}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(ordered).toBe(true);
    expect(new Set(lines.map((l) => l.format))).toEqual(new Set(['envoy', 'opa', 'hubble']));
  });

  it('models benign noise: background denials, TLS failures outside attacks, retries sharing a request id, plaintext probes, timeouts', () => {
    const labels = scenario.labels.map((l) => [Date.parse(l.start), Date.parse(l.end)] as const);
    const outside = (e: NormalizedEvent) => !labels.some(([s, t]) => e.time >= s - 60_000 && e.time <= t + 60_000);
    const benign = events.filter((x) => outside(x.event)).map((x) => x.event);
    expect(benign.filter((e) => e.decision === 'deny' && e.source === 'envoy').length).toBeGreaterThan(20);
    expect(benign.filter((e) => e.tls_failure !== '').length).toBeGreaterThan(0);
    expect(benign.filter((e) => e.mtls === 'no' && e.path === '/healthz/ready').length + benign.filter((e) => e.response_flags.includes('UT')).length).toBeGreaterThan(0);
    const retried = new Map<string, number>();
    for (const e of benign) if (e.reporter === 'inbound' && e.status === 503 && e.request_id !== '') retried.set(e.request_id, 0);
    for (const e of benign) if (retried.has(e.request_id) && e.reporter === 'inbound') retried.set(e.request_id, (retried.get(e.request_id) as number) + 1);
    expect([...retried.values()].some((n) => n >= 2)).toBe(true);
    // The profile tells what was scheduled.
    expect(scenario.profile.benign.background_denials).toBe(1);
    expect(scenario.profile.services).toBeGreaterThanOrEqual(8);
  });

  it('labels one attack of every class, well formed, after the learning period, with its lines inside its window', () => {
    expect(scenario.labels.map((l) => l.class).sort()).toEqual([...ATTACK_CLASSES].sort());
    expect(scenario.profile.attackVariants).toHaveLength(ATTACK_CLASSES.length);
    const identities = new Set(scenario.mesh.services.map((s) => s.identity));
    for (const label of scenario.labels) {
      const start = Date.parse(label.start);
      const end = Date.parse(label.end);
      expect(label.detector).toBe(EXPECTED_DETECTOR[label.class]);
      expect(start).toBeGreaterThanOrEqual(START + INDEPENDENT_LEARNING_MS);
      expect(end).toBeGreaterThan(start);
      expect(end).toBeLessThanOrEqual(START + DURATION);
      expect(label.src !== null || label.dst !== null).toBe(true);
      expect(label.note.length).toBeGreaterThan(10);
      if (label.src?.startsWith('spiffe://')) expect(identities.has(label.src)).toBe(true);
      const inWindow = events.filter((x) => x.event.time >= start && x.event.time <= end).map((x) => x.event);
      const before = events.filter((x) => x.event.time < START + INDEPENDENT_LEARNING_MS).map((x) => x.event);
      const evidence = (e: NormalizedEvent): boolean => {
        switch (label.class) {
          case 'lateral_movement':
            return e.src_identity === label.src && e.decision === 'deny';
          case 'policy_misconfiguration':
            return e.dst_service === label.dst && e.decision === 'deny' && e.decision_reason === 'none';
          case 'cert_expiry':
            return (e.tls_failure === 'SSLV3_ALERT_CERTIFICATE_EXPIRED' || e.tls_failure === 'CERTIFICATE_VERIFY_FAILED') && (e.dst_service === label.dst || e.src_identity === label.src);
          case 'plaintext_client':
            return e.src_ip === label.src && e.dst_service === label.dst && e.mtls === 'no';
          case 'exfiltration':
            return e.src_identity === label.src && e.dst_service === label.dst && e.bytes_out > 0;
          case 'new_edge':
            return e.src_identity === label.src && e.dst_service === label.dst;
          case 'privilege_probing':
            return e.source === 'opa' && e.src_identity === label.src && e.decision === 'deny';
        }
      };
      const hits = inWindow.filter(evidence);
      expect(hits.length, `${label.class}: ${label.note}`).toBeGreaterThan(0);
      // A new edge and a plaintext client are new: no such event before the learning period ends.
      if (label.class === 'new_edge' || label.class === 'plaintext_client') expect(before.filter(evidence).length, label.class).toBe(0);
      if (label.class === 'exfiltration') {
        const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
        expect(median(hits.filter((e) => e.reporter === 'inbound').map((e) => e.bytes_out))).toBeGreaterThan(3 * median(before.filter(evidence).filter((e) => e.reporter === 'inbound').map((e) => e.bytes_out)));
      }
    }
  });

  it('accepts a list of attack classes, none, and a fixed mesh size', () => {
    const only = createIndependentScenario({ seed: 3, startMs: START, durationMs: DURATION, attacks: ['cert_expiry', 'exfiltration'], services: 10 });
    expect(only.labels.map((l) => l.class).sort()).toEqual(['cert_expiry', 'exfiltration']);
    expect(only.profile.services).toBe(10);
    expect(createIndependentScenario({ seed: 3, startMs: START, durationMs: DURATION, attacks: [] }).labels).toEqual([]);
  });
});
