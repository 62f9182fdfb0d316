import { describe, expect, it } from 'vitest';
import { ATTACK_CLASSES, ATTACK_WARMUP_MS, EXPECTED_DETECTOR, RANDOM_ATTACK_WARMUP_MS, computeDailyShape, createDemoScenario, createRandomScenario, createScenario, groupByFormat, type RandomScenarioOptions } from '../../ingest/simulate/index.ts';
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

describe('randomized scenario generator', () => {
  const HOURS = 2;
  const make = (seed: number, extra: Partial<RandomScenarioOptions> = {}) => createRandomScenario({ seed, startMs: START, durationMs: HOURS * HOUR, maxPeakRps: 4, ...extra });

  it('draws topology, rates, daily shape and benign events from the seed, deterministically', () => {
    const profiles = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => make(seed, { maxPeakRps: 10 }).profile);
    expect(make(3, { maxPeakRps: 10 }).profile).toEqual(profiles[2]);
    const sizes = profiles.map((p) => p.services);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(200);
    expect(new Set(sizes).size).toBeGreaterThan(4);
    expect(new Set(profiles.map((p) => p.topology)).size).toBeGreaterThan(1);
    expect(new Set(profiles.map((p) => Math.round(p.peakHourUtc))).size).toBeGreaterThan(4);
    // Per-edge rates span two and a half orders of magnitude in every mesh, three or more in most.
    const spans = profiles.map((p) => p.edgeRpsRange[1] / p.edgeRpsRange[0]);
    expect(Math.min(...spans)).toBeGreaterThan(300);
    expect(spans.filter((x) => x >= 1000).length).toBeGreaterThan(profiles.length / 2);
    for (const kind of ['redeploy', 'rollout', 'cert_rotation']) expect(profiles.every((p) => (p.benign[kind] ?? 0) > 0)).toBe(true);
    for (const kind of ['surge', 'new_service', 'policy_change']) expect(profiles.some((p) => (p.benign[kind] ?? 0) > 0)).toBe(true);
    // Names are made up per seed, not drawn from a fixed list the detectors could know.
    expect(make(1).mesh.services.map((s) => s.name)).not.toEqual(make(2).mesh.services.slice(0, make(1).mesh.services.length).map((s) => s.name));
  });

  it('labels every attack with source or target, onset and end after the learning period, in several shapes per class', () => {
    const variants = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const scenario = createRandomScenario({ seed, startMs: START, durationMs: HOURS * HOUR, maxPeakRps: 1, services: 10 });
      for (const label of scenario.labels) {
        expect(Date.parse(label.start)).toBeGreaterThanOrEqual(START + RANDOM_ATTACK_WARMUP_MS);
        expect(Date.parse(label.end)).toBeGreaterThan(Date.parse(label.start));
        expect(label.src ?? label.dst).toBeTruthy();
      }
      for (const v of scenario.profile.attackVariants) variants.add(v);
    }
    for (const v of ['lateral_movement/dense', 'lateral_movement/slow', 'exfiltration/burst', 'exfiltration/low-and-slow', 'cert_expiry/client', 'cert_expiry/server']) expect(variants).toContain(v);
    expect([...variants].some((v) => v.startsWith('privilege_probing/many-ids'))).toBe(true);
  });

  it('writes records every parser reads, in event-time order, and shows each attack in the traffic', () => {
    const scenario = make(5, { attacks: [...ATTACK_CLASSES] });
    expect(scenario.labels.map((l) => l.class).sort()).toEqual([...ATTACK_CLASSES].sort());
    const lines = scenario.generate(START, START + HOURS * HOUR);
    const failures: string[] = [];
    let previous = 0;
    for (const l of lines) {
      if (l.timeMs < previous) failures.push(`out of order at ${l.timeMs}`);
      previous = l.timeMs;
      const result = PARSERS[l.format]?.parse(l.line, START);
      if (!result?.ok) failures.push(`${l.format}: ${l.line.slice(0, 100)}`);
      if (failures.length > 3) break;
    }
    expect(failures).toEqual([]);
    const during = (cls: string) => {
      const label = scenario.labels.find((l) => l.class === cls);
      return lines.filter((l) => l.timeMs >= Date.parse(label?.start ?? '') && l.timeMs < Date.parse(label?.end ?? ''));
    };
    const target = (cls: string) => scenario.labels.find((l) => l.class === cls)?.dst ?? '';
    expect(during('cert_expiry').some((l) => /CERTIFICATE_EXPIRED|CERTIFICATE_VERIFY_FAILED/.test(l.line))).toBe(true);
    expect(during('policy_misconfiguration').some((l) => l.line.includes(`policy[${target('policy_misconfiguration')}-authz]`))).toBe(true);
    expect(during('plaintext_client').some((l) => l.line.includes(scenario.labels.find((x) => x.class === 'plaintext_client')?.src ?? '?'))).toBe(true);
    // The same seed chunked differently yields the same records.
    const chunked = [];
    for (let t = START + 80 * 60_000; t < START + 90 * 60_000; t += 7_777) chunked.push(...scenario.generate(t, Math.min(t + 7_777, START + 90 * 60_000)));
    expect(chunked).toEqual(scenario.generate(START + 80 * 60_000, START + 90 * 60_000));
  });
});
