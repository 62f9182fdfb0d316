import { describe, expect, it } from 'vitest';
import { ATTACK_CLASSES, ATTACK_WARMUP_MS, EXPECTED_DETECTOR, computeDailyShape, createDemoScenario, createScenario, groupByFormat } from '../../ingest/simulate/index.ts';
import { createRandom, mixSeed } from '../../ingest/simulate/prng.ts';
import { PARSERS, detectFormat } from '../../ingest/parsers/index.ts';

const START = Date.UTC(2026, 0, 5, 6, 0, 0);
const HOUR = 3_600_000;

describe('scenario generator', () => {
  const scenario = createScenario({ seed: 11, services: 8, startMs: START, durationMs: 4 * HOUR, peakRps: 6 });
  const lines = scenario.generate(START, START + 4 * HOUR);

  it('is deterministic by seed, whatever the chunking, and differs between seeds', () => {
    const again = createScenario({ seed: 11, services: 8, startMs: START, durationMs: 4 * HOUR, peakRps: 6 });
    const window = [START + 80 * 60_000, START + 95 * 60_000] as const;
    const whole = again.generate(...window);
    const chunked = [];
    for (let t = window[0]; t < window[1]; t += 7_777) chunked.push(...again.generate(t, Math.min(t + 7_777, window[1])));
    expect(chunked).toEqual(whole);
    expect(lines.filter((l) => l.timeMs >= window[0] && l.timeMs < window[1])).toEqual(whole);
    const other = createScenario({ seed: 12, services: 8, startMs: START, durationMs: 4 * HOUR, peakRps: 6 }).generate(...window);
    expect(other.map((l) => l.line)).not.toEqual(whole.map((l) => l.line));
    const a = createRandom(mixSeed(1, 2));
    const b = createRandom(mixSeed(1, 2));
    expect([a.next(), a.uuid(), a.poisson(3)]).toEqual([b.next(), b.uuid(), b.poisson(3)]);
  });

  it('yields records in event-time order, every one read by the registered parser of its format', () => {
    expect(lines.length).toBeGreaterThan(20_000);
    const formats = new Map<string, number>();
    const failures: string[] = [];
    let previous = 0;
    let ordered = true;
    for (const l of lines) {
      if (l.timeMs < previous) ordered = false;
      previous = l.timeMs;
      formats.set(l.format, (formats.get(l.format) ?? 0) + 1);
      if (detectFormat(l.line) !== l.format) failures.push(`detected ${detectFormat(l.line)}: ${l.line.slice(0, 120)}`);
      const parser = PARSERS[l.format];
      const result = parser ? parser.parse(l.line, START) : { ok: false as const, reason: 'no parser' };
      if (!result.ok) failures.push(`${result.reason}: ${l.line.slice(0, 120)}`);
      else if (Math.abs(result.event.time - l.timeMs) > 1) failures.push(`time ${result.event.time} != ${l.timeMs}`);
      if (failures.length > 5) break;
    }
    expect(failures).toEqual([]);
    expect(ordered).toBe(true);
    expect([...formats.keys()].sort()).toEqual(['envoy', 'hubble', 'opa']);
  });

  it('labels one attack of every class, after the learning hour, each visible in the traffic', () => {
    expect(scenario.labels.map((l) => l.class).sort()).toEqual([...ATTACK_CLASSES].sort());
    for (const label of scenario.labels) {
      expect(Date.parse(label.start)).toBeGreaterThanOrEqual(START + ATTACK_WARMUP_MS);
      expect(Date.parse(label.end)).toBeGreaterThan(Date.parse(label.start));
      expect(Date.parse(label.end)).toBeLessThanOrEqual(START + 4 * HOUR);
      expect(label.detector).toBe(EXPECTED_DETECTOR[label.class]);
      expect(label.src ?? label.dst).toBeTruthy();
    }
    const during = (cls: string) => {
      const label = scenario.labels.find((l) => l.class === cls);
      return lines.filter((l) => l.timeMs >= Date.parse(label?.start ?? '') && l.timeMs < Date.parse(label?.end ?? ''));
    };
    expect(during('cert_expiry').some((l) => l.line.includes('SSLV3_ALERT_CERTIFICATE_EXPIRED'))).toBe(true);
    expect(during('policy_misconfiguration').some((l) => l.line.includes('rbac_access_denied_matched_policy'))).toBe(true);
    expect(during('lateral_movement').some((l) => l.format === 'hubble' && l.line.includes('POLICY_DENIED'))).toBe(true);
    expect(during('privilege_probing').some((l) => l.format === 'opa' && /"allowed":false|"result":false/.test(l.line))).toBe(true);
    // Ordinary traffic before any attack: no expired certificates.
    expect(lines.filter((l) => l.timeMs < START + ATTACK_WARMUP_MS).some((l) => l.line.includes('CERTIFICATE_EXPIRED'))).toBe(false);
  });

  it('writes Envoy JSON with Istio keys and with command-operator keys, and Istio default text', () => {
    const envoy = lines.filter((l) => l.format === 'envoy').map((l) => l.line);
    expect(envoy.some((l) => l.startsWith('{') && l.includes('"upstream_cluster":"inbound|') && l.includes('"downstream_peer_uri_san":"spiffe://'))).toBe(true);
    expect(envoy.some((l) => l.startsWith('{') && l.includes('":method"') && l.includes('"x-request-id"'))).toBe(true);
    expect(envoy.some((l) => l.startsWith('[') && / "GET \S+ HTTP\/1\.1" \d{3} /.test(l))).toBe(true);
  });

  it('has a daily shape: night traffic well below the afternoon peak', () => {
    expect(computeDailyShape(Date.UTC(2026, 0, 5, 4))).toBeCloseTo(0.35, 2);
    expect(computeDailyShape(Date.UTC(2026, 0, 5, 16))).toBeCloseTo(1, 2);
  });

  it('scripts the demo: normal history before start, a deny spike at +60 s and an expired certificate at +100 s', () => {
    const start = Date.UTC(2026, 0, 7, 12, 0, 0);
    const demo = createDemoScenario({ seed: 7, startMs: start });
    expect(demo.labels.map((l) => [l.class, Date.parse(l.start) - start])).toEqual([
      ['policy_misconfiguration', 60_000],
      ['cert_expiry', 100_000],
    ]);
    const history = demo.generate(start - 30 * 60_000, start);
    expect(history.length).toBeGreaterThan(10_000);
    expect(history.some((l) => l.line.includes('CERTIFICATE_EXPIRED'))).toBe(false);
    const live = demo.generate(start + 100_000, start + 160_000);
    expect(live.some((l) => l.line.includes('SSLV3_ALERT_CERTIFICATE_EXPIRED'))).toBe(true);
    expect(demo.generate(start + 60_000, start + 90_000).filter((l) => l.line.includes('rbac_access_denied_matched_policy')).length).toBeGreaterThan(10);
  });
});

describe('groupByFormat', () => {
  it('groups records by format, keeping their order within each', () => {
    const lines = [
      { format: 'envoy', line: 'a' },
      { format: 'opa', line: 'b' },
      { format: 'envoy', line: 'c' },
    ];
    expect([...groupByFormat(lines)]).toEqual([
      ['envoy', ['a', 'c']],
      ['opa', ['b']],
    ]);
  });
});
