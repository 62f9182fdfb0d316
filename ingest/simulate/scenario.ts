// Labelled scenario traffic (DESIGN §6 "detection quality is measured"): normal mesh traffic with a
// daily shape, background denials and errors, periodic batch jobs that fan out, deploy restarts
// (connect refused, not TLS), a rollout of a new identity, traffic surges, and injected attacks of
// every class, each with a label. Pure and seeded: the same options give the same lines, and every
// one-second slot draws from its own stream, so `generate` can be called in any chunks (the live
// demo calls it every second) and yields the same trace.
import { createMesh, type SimEdge, type SimMesh, type SimWorkload } from './mesh.ts';
import { createRandom, mixSeed, type Random } from './prng.ts';
import { makeRequest, rbacDetails } from './requests.ts';
import { emitBatchJob, emitMeshRequest, emitStrayDrop, emitStrayTlsFailure, emitUserDecisions, linesBetween, type RequestEffects } from './traffic.ts';
import { renderEnvoyLine, renderHubbleFlow, renderOpaExtAuthz, renderOpaUserDecision } from './wire.ts';

/** Attack classes the generator injects, each aimed at one detector. */
export const ATTACK_CLASSES = [
  'lateral_movement',
  'policy_misconfiguration',
  'cert_expiry',
  'plaintext_client',
  'exfiltration',
  'new_edge',
  'privilege_probing',
] as const;
export type AttackClass = (typeof ATTACK_CLASSES)[number];

/** The detector expected to find each class. */
export const EXPECTED_DETECTOR: Readonly<Record<AttackClass, string>> = {
  lateral_movement: 'fanout',
  policy_misconfiguration: 'deny_spike',
  cert_expiry: 'mtls_failure',
  plaintext_client: 'plaintext',
  exfiltration: 'volume',
  new_edge: 'new_edge',
  privilege_probing: 'authz_deny_burst',
};

/** One injected attack (a line of labels.ndjson). Times are ISO-8601 UTC, event time. */
export interface ScenarioLabel {
  readonly class: AttackClass;
  /** Attacker / cause: identity, principal or IP; null when the cause is not a source. */
  readonly src: string | null;
  /** Target service; null when there is no single one. */
  readonly dst: string | null;
  readonly start: string;
  readonly end: string;
  readonly detector: string;
  readonly note: string;
}

/** One generated wire-format record. */
export interface GeneratedLine {
  /** Parser registry name: `envoy`, `opa` or `hubble`. */
  readonly format: string;
  readonly line: string;
  /** Event time of the record, in ms. */
  readonly timeMs: number;
}

/** Groups generated records by wire format (in their order), so each format is one ingest call. */
export function groupByFormat(lines: readonly Pick<GeneratedLine, 'format' | 'line'>[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { format, line } of lines) {
    let list = out.get(format);
    if (!list) out.set(format, (list = []));
    list.push(line);
  }
  return out;
}

export interface ScenarioOptions {
  readonly seed: number;
  /** Services in the mesh (at least 6). */
  readonly services: number;
  /** Event time the scenario starts at, in ms. Traffic before it is normal history. */
  readonly startMs: number;
  readonly durationMs: number;
  /** Attacks to inject after the first hour (learning): all classes, a list, or none. @default 'all' */
  readonly attacks?: 'all' | readonly AttackClass[];
  /** Mesh requests per second at the daily peak. @default 4 × services */
  readonly peakRps?: number;
}

export interface Scenario {
  readonly mesh: SimMesh;
  readonly labels: readonly ScenarioLabel[];
  /** Records with event time in [fromMs, toMs), in event-time order. */
  generate(fromMs: number, toMs: number): GeneratedLine[];
}

/** A scheduled overlay on normal traffic. */
interface Attack {
  readonly cls: AttackClass;
  readonly startMs: number;
  readonly endMs: number;
  readonly label: ScenarioLabel;
  /** Discrete records the attack adds (scans, probes, new calls), precomputed. */
  readonly extra: GeneratedLine[];
  /** Changes to ordinary requests while it lasts. */
  readonly affects?: {
    /** Every request to this service is denied by a policy. */
    denyDst?: SimWorkload;
    /** This workload's certificate has expired. */
    expired?: SimWorkload;
    /** Responses on this edge carry this many times the bytes. */
    exfilEdge?: SimEdge;
    exfilFactor?: number;
  };
}

interface Restart {
  readonly service: SimWorkload;
  readonly startMs: number;
  readonly endMs: number;
}

interface Surge {
  readonly dst: SimWorkload;
  readonly startMs: number;
  readonly endMs: number;
  readonly factor: number;
}

const HOUR_MS = 3_600_000;
/** Attacks start after this much scenario time: the detectors' learning period. */
export const ATTACK_WARMUP_MS = 75 * 60_000;
const PROBE_PATHS = ['/admin', '/admin/users', '/debug/pprof', '/.env', '/actuator/env', '/api/internal/config', '/v1/secrets', '/metrics', '/api/v1/keys', '/graphql', '/console', '/manage/health'];
const OPA_PROBE_WORDS = ['admin', 'users', 'roles', 'billing', 'export', 'keys', 'audit', 'settings', 'tokens', 'payouts', 'impersonate', 'debug', 'config', 'secrets', 'reports', 'webhooks', 'invoices', 'ledger', 'permissions', 'sessions'];
const SCAN_PORTS = [22, 80, 443, 2379, 3306, 5432, 6379, 8443, 9200, 10250, 27017];

/** Daily traffic shape: trough around 04:00 UTC, peak around 16:00. */
export function computeDailyShape(timeMs: number): number {
  const hour = (timeMs / HOUR_MS) % 24;
  return 0.35 + 0.65 * (0.5 - 0.5 * Math.cos((2 * Math.PI * (hour - 4)) / 24));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Creates a scenario. Attacks land after the first 75 minutes, spaced so they never overlap. */
export function createScenario(options: ScenarioOptions): Scenario {
  const setup = createRandom(mixSeed(options.seed, 1));
  const peakRps = options.peakRps ?? 4 * Math.max(6, options.services);
  const mesh = createMesh(setup, options.services, peakRps);
  const endMs = options.startMs + options.durationMs;
  const classes = options.attacks === undefined || options.attacks === 'all' ? [...ATTACK_CLASSES] : [...options.attacks];
  const attacks: Attack[] = [];
  const order = setup.shuffle(classes);
  const firstMs = options.startMs + ATTACK_WARMUP_MS;
  const lastMs = endMs - 10 * 60_000;
  if (order.length > 0 && lastMs > firstMs) {
    const slotMs = (lastMs - firstMs) / order.length;
    order.forEach((cls, i) => {
      const startMs = Math.round(firstMs + i * slotMs + setup.range(0.05, 0.35) * slotMs);
      const maxDurationMs = Math.max(60_000, slotMs * 0.45);
      attacks.push(createAttack(setup, mesh, cls, startMs, maxDurationMs));
    });
  }
  return buildScenario(options.seed, mesh, options.startMs, endMs, attacks, setup);
}

/**
 * The scripted scenario of `ztwatch demo`: a small mesh with normal history before `startMs` (any
 * amount can be backfilled), then, in event time, a policy misconfiguration (deny spike) from
 * about +60 s and an expired certificate from about +100 s, each lasting five minutes.
 */
export function createDemoScenario(options: { seed: number; startMs: number }): Scenario {
  const setup = createRandom(mixSeed(options.seed, 2));
  const mesh = createMesh(setup, 10, 40);
  const attacks = [
    createAttack(setup, mesh, 'policy_misconfiguration', options.startMs + 60_000, 5 * 60_000, 5 * 60_000),
    createAttack(setup, mesh, 'cert_expiry', options.startMs + 100_000, 5 * 60_000, 5 * 60_000),
  ];
  return buildScenario(options.seed, mesh, options.startMs - 24 * HOUR_MS, options.startMs + 7 * 24 * HOUR_MS, attacks, setup);
}

function inboundRate(mesh: SimMesh, dst: SimWorkload): number {
  return mesh.edges.filter((e) => e.dst === dst && e.src !== mesh.gateway).reduce((sum, e) => sum + e.peakRps, 0);
}

function createAttack(random: Random, mesh: SimMesh, cls: AttackClass, startMs: number, maxDurationMs: number, fixedDurationMs?: number): Attack {
  const duration = (minMin: number, maxMin: number) => fixedDurationMs ?? Math.min(maxDurationMs, random.range(minMin, maxMin) * 60_000);
  const label = (src: string | null, dst: string | null, endMs: number, note: string): ScenarioLabel => ({ class: cls, src, dst, start: iso(startMs), end: iso(endMs), detector: EXPECTED_DETECTOR[cls], note });
  const established = mesh.services.filter((s) => s.name !== 'vault');
  switch (cls) {
    case 'lateral_movement': {
      const attacker = random.pick(established.filter((s) => s.tier <= 2));
      const endMs = startMs + duration(3, 6);
      const others = mesh.services.filter((s) => s !== attacker);
      const targets: Array<{ dst: SimWorkload; port: number }> = [];
      for (const dst of random.shuffle(others)) {
        targets.push({ dst, port: dst.port });
        for (const port of random.shuffle(SCAN_PORTS).slice(0, random.int(0, 2))) targets.push({ dst, port });
      }
      const chosen = random.shuffle(targets).slice(0, Math.min(targets.length, random.int(12, 24)));
      const extra: GeneratedLine[] = [];
      for (const t of chosen) {
        for (let k = random.int(1, 2); k > 0; k--) {
          const timeMs = Math.floor(random.range(startMs, endMs));
          if (t.port === t.dst.port && random.chance(0.7)) {
            const req = makeRequest(random, { timeMs, direction: 'inbound', srcIdentity: attacker.identity, srcIp: attacker.ip, dst: t.dst, method: 'GET', path: random.pick(PROBE_PATHS), status: 403, flags: '', details: rbacDetails(t.dst, 'default-deny'), upstreamFailure: '', bytesIn: 0, bytesOut: 19, mtls: true, durationMs: 0 });
            extra.push({ format: 'envoy', line: renderEnvoyLine(req, t.dst.flavor), timeMs });
          } else {
            extra.push({ format: 'hubble', line: renderHubbleFlow({ timeMs, src: attacker, dst: t.dst, dstPort: t.port, srcPort: random.int(32768, 60999), dropped: true, node: 'worker-2' }), timeMs });
          }
        }
      }
      return { cls, startMs, endMs, extra, label: label(attacker.identity, null, endMs, `${attacker.name} probes ${chosen.length} destination/ports (L7 denials and Hubble policy drops)`) };
    }
    case 'policy_misconfiguration': {
      const candidates = mesh.services.filter((s) => s.tier > 0 && s.name !== 'vault').sort((a, b) => inboundRate(mesh, b) - inboundRate(mesh, a));
      const dst = random.pick(candidates.slice(0, 3));
      const endMs = startMs + duration(8, 18);
      return { cls, startMs, endMs, extra: [], affects: { denyDst: dst }, label: label(null, dst.name, endMs, `an AuthorizationPolicy change denies every caller of ${dst.name}`) };
    }
    case 'cert_expiry': {
      const withBoth = mesh.services.filter((s) => s.tier > 0 && mesh.edges.some((e) => e.src === s) && mesh.edges.some((e) => e.dst === s));
      const victim = random.pick(withBoth.length > 0 ? withBoth : mesh.services.filter((s) => s.tier > 0));
      const endMs = startMs + duration(10, 22);
      return { cls, startMs, endMs, extra: [], affects: { expired: victim }, label: label(victim.identity, victim.name, endMs, `the workload certificate of ${victim.name} expired`) };
    }
    case 'plaintext_client': {
      const dst = random.pick(mesh.services.filter((s) => s.tier > 0));
      const endMs = startMs + duration(5, 12);
      const ip = `10.99.${random.int(0, 255)}.${random.int(2, 250)}`;
      const rate = random.range(0.2, 0.8);
      const extra: GeneratedLine[] = [];
      for (let t = startMs; t < endMs; t += 1000) {
        for (let n = random.poisson(rate); n > 0; n--) {
          const timeMs = Math.floor(t + random.next() * 1000);
          const req = makeRequest(random, { timeMs, direction: 'inbound', srcIdentity: '', srcIp: ip, dst, method: random.pick(['GET', 'POST']), path: random.pick(PROBE_PATHS), status: 200, flags: '', details: 'via_upstream', upstreamFailure: '', bytesIn: random.int(0, 400), bytesOut: random.int(200, 3000), mtls: false });
          extra.push({ format: 'envoy', line: renderEnvoyLine(req, dst.flavor), timeMs });
        }
      }
      return { cls, startMs, endMs, extra, label: label(ip, dst.name, endMs, `a client without a sidecar (${ip}) talks plaintext to ${dst.name}`) };
    }
    case 'exfiltration': {
      const edges = mesh.edges.filter((e) => e.src !== mesh.gateway).sort((a, b) => b.peakRps - a.peakRps);
      const edge = random.pick(edges.slice(0, Math.max(1, Math.ceil(edges.length / 3))));
      const endMs = startMs + duration(5, 12);
      return { cls, startMs, endMs, extra: [], affects: { exfilEdge: edge, exfilFactor: random.range(15, 60) }, label: label(edge.src.identity, edge.dst.name, endMs, `${edge.src.name} pulls unusually large responses from ${edge.dst.name}`) };
    }
    case 'new_edge': {
      const target = random.pick(mesh.sensitive);
      const callers = established.filter((s) => s !== target && !mesh.edges.some((e) => e.src === s && e.dst === target));
      const src = random.pick(callers);
      const endMs = startMs + duration(2, 4);
      const denied = random.chance(0.5);
      const extra: GeneratedLine[] = [];
      for (let k = random.int(2, 6); k > 0; k--) {
        const timeMs = Math.floor(random.range(startMs, endMs));
        const req = makeRequest(random, {
          timeMs, direction: 'inbound', srcIdentity: src.identity, srcIp: src.ip, dst: target, method: 'GET', path: `/api/v1/${target.name}/${random.pick(['accounts', 'keys', 'secrets', 'cards'])}`,
          status: denied ? 403 : 200, flags: '', details: denied ? rbacDetails(target, `${target.name}-callers`) : 'via_upstream', upstreamFailure: '', bytesIn: random.int(0, 200), bytesOut: denied ? 19 : random.int(500, 4000), mtls: true,
        });
        extra.push({ format: 'envoy', line: renderEnvoyLine(req, target.flavor), timeMs });
      }
      return { cls, startMs, endMs, extra, label: label(src.identity, target.name, endMs, `${src.name} calls ${target.name} (${target.namespace}) for the first time${denied ? ', denied' : ''}`) };
    }
    case 'privilege_probing': {
      const endMs = startMs + duration(2, 4);
      const extra: GeneratedLine[] = [];
      const paths = random.shuffle(OPA_PROBE_WORDS).slice(0, random.int(10, 18)).map((w) => `/api/v1/${w}${random.chance(0.5) ? '/all' : ''}`);
      const guarded = mesh.services.filter((s) => mesh.opaGuarded.has(s.name));
      const viaUser = random.chance(0.5) || guarded.length === 0;
      const user = random.pick(mesh.users).email;
      const attacker = random.pick(established.filter((s) => !mesh.opaGuarded.has(s.name)));
      const target = viaUser ? mesh.userApp : random.pick(guarded);
      for (const path of paths) {
        for (let k = random.int(1, 2); k > 0; k--) {
          const timeMs = Math.floor(random.range(startMs, endMs));
          const method = random.pick(['GET', 'POST', 'DELETE', 'PUT']);
          if (viaUser) {
            extra.push({ format: 'opa', line: renderOpaUserDecision({ timeMs, decisionId: random.uuid(), user, method, path, allowed: false, app: target.name }), timeMs });
            continue;
          }
          // Through ext_authz: OPA logs the decision, the target's sidecar logs the 403 it returned.
          const req = makeRequest(random, { timeMs, direction: 'inbound', srcIdentity: attacker.identity, srcIp: attacker.ip, dst: target, method, path, status: 403, flags: 'UAEX', details: 'ext_authz_denied', upstreamFailure: '', bytesIn: 0, bytesOut: 0, mtls: true, durationMs: 1 });
          extra.push({ format: 'opa', line: renderOpaExtAuthz({ timeMs: Math.max(0, timeMs - 1), decisionId: random.uuid(), srcIdentity: attacker.identity, srcIp: attacker.ip, srcPort: req.srcPort, dst: target, method, path, requestId: req.requestId, allowed: false }), timeMs: Math.max(0, timeMs - 1) });
          extra.push({ format: 'envoy', line: renderEnvoyLine(req, target.flavor), timeMs });
        }
      }
      const principal = viaUser ? user : attacker.identity;
      return { cls, startMs, endMs, extra, label: label(principal, target.name, endMs, `${principal} tries ${paths.length} actions on ${target.name} and is denied by OPA`) };
    }
  }
}

function buildScenario(seed: number, mesh: SimMesh, startMs: number, endMs: number, attacks: Attack[], setup: Random): Scenario {
  // Deploy restarts (connect refused for tens of seconds) and traffic surges, scheduled once.
  const restarts: Restart[] = [];
  for (let t = startMs + setup.range(10, 30) * 60_000; t < endMs; t += setup.range(15, 40) * 60_000) {
    restarts.push({ service: setup.pick(mesh.services), startMs: t, endMs: t + setup.range(15, 45) * 1000 });
    if (restarts.length > 2000) break;
  }
  const surges: Surge[] = [];
  for (let t = startMs + setup.range(30, 90) * 60_000; t < endMs; t += setup.range(60, 150) * 60_000) {
    surges.push({ dst: setup.pick(mesh.services), startMs: t, endMs: t + setup.range(8, 20) * 60_000, factor: setup.range(2, 4) });
    if (surges.length > 500) break;
  }
  // A rollout: a new identity (v2 of a service) starts calling that service's dependencies.
  const rolloutBase = setup.pick(mesh.services.filter((s) => mesh.edges.filter((e) => e.src === s).length >= 2).concat(mesh.services.slice(0, 1)));
  const rollout: SimWorkload = { ...rolloutBase, name: `${rolloutBase.name}-v2`, serviceAccount: `${rolloutBase.name}-v2`, identity: `spiffe://cluster.local/ns/${rolloutBase.namespace}/sa/${rolloutBase.name}-v2`, ip: `10.31.${setup.int(0, 255)}.${setup.int(2, 250)}` };
  const rolloutMs = startMs + (endMs - startMs) * setup.range(0.35, 0.6);
  const rolloutEdges = mesh.edges.filter((e) => e.src === rolloutBase).map((e) => ({ ...e, src: rollout, peakRps: e.peakRps / 2 }));
  const labels = attacks.map((a) => a.label).sort((a, b) => a.start.localeCompare(b.start));
  const extras = attacks.flatMap((a) => a.extra).sort((a, b) => a.timeMs - b.timeMs);
  const internal = mesh.edges.filter((e) => e.src !== mesh.gateway);

  const generateSecond = (second: number, out: GeneratedLine[]): void => {
    const slotMs = second * 1000;
    const random = createRandom(mixSeed(seed, second, 7));
    const shape = computeDailyShape(slotMs) * (0.9 + 0.2 * random.next());
    const active = attacks.filter((a) => a.startMs <= slotMs && slotMs < a.endMs);
    const denyDst = active.find((a) => a.affects?.denyDst)?.affects?.denyDst;
    const expired = active.find((a) => a.affects?.expired)?.affects?.expired;
    const exfil = active.find((a) => a.affects?.exfilEdge)?.affects;
    const restarting = restarts.filter((r) => r.startMs <= slotMs && slotMs < r.endMs).map((r) => r.service);
    const edges = slotMs >= rolloutMs ? [...mesh.edges, ...rolloutEdges] : mesh.edges;
    const effects: RequestEffects = {
      // An expired certificate on either end: the client's own fails, or the server's fails the client's check.
      tlsFailure: (_random, src, dst) => (expired === src ? { reason: 'SSLV3_ALERT_CERTIFICATE_EXPIRED', code: 268436501 } : expired === dst ? { reason: 'CERTIFICATE_VERIFY_FAILED', code: 268435581 } : undefined),
      restarting: (dst) => restarting.includes(dst),
      denial: (edge) => (edge.dst === denyDst ? { policy: `${edge.dst.name}-authz`, opaLogged: false } : undefined),
      bytesFactor: (edge) => (exfil?.exfilEdge === edge ? (exfil.exfilFactor ?? 20) : undefined),
    };

    for (const edge of edges) {
      let rate = edge.peakRps * shape;
      for (const s of surges) if (s.dst === edge.dst && s.startMs <= slotMs && slotMs < s.endMs) rate *= s.factor;
      for (let n = random.poisson(rate); n > 0; n--) emitMeshRequest(random, mesh, edge, Math.floor(slotMs + random.next() * 1000), out, effects, 0.08);
    }
    emitUserDecisions(random, mesh, slotMs, shape, out);
    // The periodic batch job: every run reaches the same targets.
    emitBatchJob(random, mesh.batchJob, slotMs - (startMs + mesh.batchJob.offsetMs), 0.08, slotMs, out);
    // A sporadic TLS failure somewhere (about one every 20 minutes) and a stray policy drop.
    emitStrayTlsFailure(random, 1 / 1200, internal, slotMs, out);
    emitStrayDrop(random, 1 / 900, internal, slotMs, out);
  };

  return {
    mesh,
    labels,
    generate(fromMs, toMs) {
      return linesBetween(fromMs, toMs, generateSecond, extras);
    },
  };
}
