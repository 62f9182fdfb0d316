// An independent labelled trace generator: a mesh modelled from first principles and the shared
// fixtures by someone blind to how detection works, so detection quality can be measured on
// traffic the detectors were not tuned on. Same `Scenario` contract as the project's own
// generators (labels + `generate(from, to)` in event-time order, chunk-independent, seeded).
//
// The model: a service catalogue grown into a call graph by preferential attachment, Zipf edge
// rates, a workday + weekly traffic shape with value noise (global and per edge), pods that come
// and go (rolling restarts, canaries, HPA scale-ups get new IPs), both sidecars logging where the
// namespace says so, Istio retries and client timeouts, plaintext kubelet probes where probes are
// not rewritten, hourly and two-hourly cron jobs from fresh pods, a misconfigured client denied at a
// steady low rate, ext_authz denials of a caller lacking one permission, human users checked by
// OPA, certificate rotations, an intended policy change that denies a caller for good, a service
// appearing, a DNS blip on egress; then attacks of every class in ATTACK_CLASSES, with variants
// (dense, slow and stolen-identity lateral movement, broken policies for all or all-but-one
// callers, server- and client-side expiry, sidecar-less pods and removed sidecars, burst and
// low-and-slow exfiltration, allowed or denied new edges, many-path user probing and few-path
// service probing), landing anywhere after the learning period, overlapping benign events and
// each other.
import { mixSeed, createRandom, type Random } from '../prng.ts';
import { ATTACK_CLASSES, EXPECTED_DETECTOR, type AttackClass, type GeneratedLine, type Scenario, type ScenarioLabel } from '../scenario.ts';
import type { SimEdge, SimMesh, SimWorkload } from '../mesh.ts';
import type { ScenarioProfile } from '../randomized.ts';
import { renderEgress, renderHubbleFlow, renderInbound, renderOpaAppDecision } from './render.ts';
import { createTopology, podIp, type Edge, type Service, type Topology } from './topology.ts';
import { NO_CONDITIONS, authorityFor, fillPath, flowEndpointOf, peerOf, playRequest, type Conditions, type Placement, type TrafficContext } from './traffic.ts';

export interface IndependentScenarioOptions {
  readonly seed: number;
  /** Event time the trace starts at, in ms. */
  readonly startMs: number;
  readonly durationMs: number;
  /** Upper bound of mesh requests per second at the daily peak (the trace draws 50–100 % of it). @default 12 */
  readonly maxPeakRps?: number;
  /** Services in the mesh (8–32). @default drawn from the seed, 12–26 */
  readonly services?: number;
  /** Attacks to inject after the learning period: one of each class, a list, or none. @default 'all' */
  readonly attacks?: 'all' | readonly AttackClass[];
}

export interface IndependentScenario extends Scenario {
  readonly profile: ScenarioProfile;
}

/** Attacks start at least this long after the trace starts: the detectors' learning period. */
export const INDEPENDENT_LEARNING_MS = 90 * 60_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Lines of one second may land this much later (retries): generate this much earlier. */
const SPILL_MS = 2_000;

/** One scheduled change to the mesh (benign or an attack). */
interface Episode {
  readonly kind: string;
  readonly startMs: number;
  readonly endMs: number;
  /** Conditions it puts on requests while active. */
  readonly apply?: (c: MutableConditions, timeMs: number) => void;
  /** Rate multipliers per edge while active (surges). */
  readonly edgeFactor?: (edge: Edge, timeMs: number) => number;
  /** Extra pods per service while active (HPA, canary). */
  readonly extraPods?: ReadonlyMap<Service, { readonly count: number; readonly generation: number }>;
  /** Discrete actions (attack traffic), sorted by time. */
  readonly actions?: ReadonlyArray<{ readonly timeMs: number; readonly run: (random: Random, ctx: TrafficContext, timeMs: number) => void }>;
  /** Per-second traffic it adds while active. */
  readonly everySecond?: (second: number, random: Random, ctx: TrafficContext, shape: number) => void;
}

type MutableConditions = { -readonly [K in keyof Conditions]: Conditions[K] extends ReadonlyMap<infer A, infer B> ? Map<A, B> : Conditions[K] extends ReadonlySet<infer A> ? Set<A> : Conditions[K] extends ReadonlyArray<infer A> ? A[] : Conditions[K] };

function emptyConditions(): MutableConditions {
  return { expired: new Map(), rotating: new Set(), restarting: new Set(), brokenPolicy: new Map(), deniedPairs: [], errorBump: new Map(), bytesFactor: new Map(), plaintextFrom: new Map() };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A uniform number in [0, 1) from a hash of the parts. */
function hashUnit(...parts: number[]): number {
  return mixSeed(...parts) / 4_294_967_296;
}

/** Smooth value noise in [-1, 1] over time, with lattice spacing `periodMs`. */
function valueNoise(seed: number, key: number, timeMs: number, periodMs: number): number {
  const x = timeMs / periodMs;
  const i = Math.floor(x);
  const f = x - i;
  const a = hashUnit(seed, key, i) * 2 - 1;
  const b = hashUnit(seed, key, i + 1) * 2 - 1;
  return a + (b - a) * f * f * (3 - 2 * f);
}

/** A synthetic workload (an attacker's pod, a cron job, a new service) in the topology's shape. */
function pseudoService(name: string, namespace: string, serviceAccount: string, port = 8080): Service {
  return { name, namespace, serviceAccount, identity: `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`, port, depth: 9, replicas: 1, latencyMs: 20, errorShare: 0 };
}

function poissonTimes(random: Random, startMs: number, endMs: number, ratePerSecond: number): number[] {
  const times: number[] = [];
  if (ratePerSecond <= 0) return times;
  for (let t = startMs + (-Math.log(1 - random.next()) / ratePerSecond) * 1000; t < endMs; t += (-Math.log(1 - random.next()) / ratePerSecond) * 1000) times.push(Math.floor(t));
  return times;
}

/** Creates an independent labelled scenario. */
export function createIndependentScenario(options: IndependentScenarioOptions): IndependentScenario {
  const seed = options.seed;
  const setup = createRandom(mixSeed(seed, 0x1d_e9));
  const startMs = options.startMs;
  const endMs = startMs + options.durationMs;
  const peakRps = (options.maxPeakRps ?? 12) * setup.range(0.5, 1);
  const topology = createTopology(setup, options.services ?? setup.int(12, 26), peakRps);
  const { services, edges } = topology;
  const serviceIndex = new Map(services.map((s, i) => [s, i]));

  // Traffic shape: a workday around the company's peak hour, a lunch dip, quieter weekends.
  const peakHourUtc = setup.range(12, 20);
  const troughShare = setup.range(0.12, 0.4);
  const weekendShare = setup.range(0.55, 0.75);
  const shapeAt = (timeMs: number): number => {
    const hour = (timeMs / HOUR) % 24;
    const d = ((hour - peakHourUtc + 36) % 24) - 12;
    const base = Math.exp(-(d * d) / (2 * 4.2 * 4.2)) - 0.12 * Math.exp(-((d + 2.5) ** 2) / 0.4);
    const day = new Date(timeMs - (24 - peakHourUtc + 9) * HOUR).getUTCDay();
    const weekly = day === 0 || day === 6 ? weekendShare : 1;
    const noise = 1 + 0.12 * valueNoise(seed, 1, timeMs, MINUTE) + 0.08 * valueNoise(seed, 2, timeMs, 10 * MINUTE);
    return (troughShare + (1 - troughShare) * Math.max(0, base)) * weekly * noise;
  };

  const episodes: Episode[] = [];
  const benign: Record<string, number> = {};
  const addBenign = (episode: Episode) => {
    episodes.push(episode);
    benign[episode.kind] = (benign[episode.kind] ?? 0) + 1;
  };
  const hours = options.durationMs / HOUR;
  const within = (min: number, max: number, lengthMs: number) => Math.floor(setup.range(startMs + min, Math.max(startMs + min + 1, Math.min(endMs - lengthMs, startMs + max))));
  const callersOf = (dst: Service) => edges.filter((e) => e.dst === dst && e.src !== 'gateway').map((e) => e.src as Service);
  const downstream = (root: Service): Map<Service, number> => {
    const depth = new Map<Service, number>([[root, 0]]);
    const queue = [root];
    while (queue.length > 0) {
      const s = queue.shift() as Service;
      for (const e of edges) {
        if (e.src !== s || depth.has(e.dst)) continue;
        depth.set(e.dst, (depth.get(s) as number) + 1);
        queue.push(e.dst);
      }
    }
    return depth;
  };

  // Surges: an entry service gets 1.8–4× traffic, which flows down its call tree; HPA adds pods.
  for (let k = Math.max(1, Math.round(hours * 0.35 + setup.range(-0.5, 0.5))); k > 0; k--) {
    const root = setup.pick(services.filter((s) => s.depth <= 1));
    const factor = setup.range(1.8, 4);
    const lengthMs = setup.range(10, 35) * MINUTE;
    const s0 = within(10 * MINUTE, options.durationMs, lengthMs);
    const reach = downstream(root);
    const ramp = (t: number) => Math.min(1, (t - s0) / (3 * MINUTE), (s0 + lengthMs - t) / (5 * MINUTE));
    const extraPods = new Map<Service, { count: number; generation: number }>();
    for (const [s, depth] of reach) if (depth <= 1) extraPods.set(s, { count: setup.int(1, 3), generation: 500 + k });
    addBenign({
      kind: 'surge',
      startMs: s0,
      endMs: s0 + lengthMs,
      extraPods,
      edgeFactor: (edge, t) => {
        const depth = edge.src === 'gateway' ? (edge.dst === root ? 0 : undefined) : reach.get(edge.src);
        return depth === undefined ? 1 : 1 + (factor - 1) * 0.85 ** depth * Math.max(0, ramp(t));
      },
    });
  }
  // Rolling restarts: a share of connections refused for a minute or three, then new pod IPs.
  const redeploys: Array<{ service: Service; startMs: number; lengthMs: number }> = [];
  for (let k = Math.max(1, Math.round(hours * 0.8 + setup.range(-0.5, 0.5))); k > 0; k--) {
    const service = setup.pick(services);
    const lengthMs = setup.range(60, 180) * 1000;
    const s0 = within(0, options.durationMs, lengthMs);
    redeploys.push({ service, startMs: s0, lengthMs });
    addBenign({ kind: 'redeploy', startMs: s0, endMs: s0 + lengthMs, apply: (c) => c.restarting.add(service) });
  }
  // Canary rollouts: new pods with a brief error bump, then the rest of the pods roll.
  for (let k = setup.int(1, 2); k > 0; k--) {
    const service = setup.pick(services.filter((s) => s.depth > 0));
    const lengthMs = setup.range(15, 35) * MINUTE;
    const s0 = within(20 * MINUTE, options.durationMs, lengthMs + 3 * MINUTE);
    const bumpMs = setup.range(3, 8) * MINUTE;
    const bump = setup.range(0.02, 0.06);
    addBenign({ kind: 'canary', startMs: s0, endMs: s0 + lengthMs, extraPods: new Map([[service, { count: 1, generation: 900 + k }]]), apply: (c, t) => (t < s0 + bumpMs ? c.errorBump.set(service, bump) : undefined) });
    redeploys.push({ service, startMs: s0 + lengthMs, lengthMs: 2 * MINUTE });
    addBenign({ kind: 'redeploy', startMs: s0 + lengthMs, endMs: s0 + lengthMs + 2 * MINUTE, apply: (c) => c.restarting.add(service) });
  }
  // Certificate rotations: a few seconds of failed handshakes around one workload.
  for (let k = setup.int(2, 4); k > 0; k--) {
    const inbound = (s: Service) => edges.filter((e) => e.dst === s).reduce((n, e) => n + e.peakRps, 0);
    const busy = services.filter((s) => callersOf(s).length > 0).sort((a, b) => inbound(b) - inbound(a));
    const service = setup.pick(busy.slice(0, Math.max(1, Math.ceil(busy.length / 2))));
    const s0 = within(0, options.durationMs, 30_000);
    addBenign({ kind: 'cert_rotation', startMs: s0, endMs: s0 + setup.int(4, 12) * 1000, apply: (c) => c.rotating.add(service) });
  }
  // A misconfigured client denied by RBAC at a steady low rate, the whole trace long.
  const misconfigured = (() => {
    const src = setup.pick(services.filter((s) => s.depth > 0));
    const dst = setup.pick(services.filter((d) => d !== src && !edges.some((e) => e.src === src && e.dst === d)));
    return { src, dst, ratePerSecond: setup.range(0.005, 0.04) };
  })();
  const misconfiguredEdge: Edge = { src: misconfigured.src, dst: misconfigured.dst, peakRps: 0, routes: [{ template: '/v1/status/{id}', method: 'GET', bytesOut: 300, bytesIn: 0, weight: 1 }], timeoutMs: 3000 };
  addBenign({ kind: 'background_denials', startMs, endMs, apply: (c) => c.deniedPairs.push({ src: misconfigured.src, dst: misconfigured.dst, policy: 'none' }), everySecond: (_s, random, ctx) => { if (random.chance(misconfigured.ratePerSecond)) playRequest(random, ctx, misconfiguredEdge, _s * 1000 + random.int(0, 999)); } });
  // A caller of an OPA-guarded service lacking one permission: a steady share of ext_authz denials.
  const guardedEdges = edges.filter((e) => topology.opaGuarded.has(e.dst.name));
  const lackingPermission = guardedEdges.length > 0 ? { edge: setup.pick(guardedEdges), share: setup.range(0.03, 0.08) } : undefined;
  // An intended policy change: one caller denied for good; its team mostly stops calling.
  if (setup.chance(0.75)) {
    const candidates = edges.filter((e) => e.src !== 'gateway' && callersOf(e.dst).length >= 2);
    if (candidates.length > 0) {
      const edge = setup.pick(candidates);
      const atMs = within(40 * MINUTE, options.durationMs - 30 * MINUTE, 30 * MINUTE);
      addBenign({ kind: 'policy_change', startMs: atMs, endMs, apply: (c) => c.deniedPairs.push({ src: edge.src as Service, dst: edge.dst, policy: `ns[${edge.dst.namespace}]-policy[${edge.dst.name}-callers-v2]-rule[0]` }), edgeFactor: (e) => (e === edge ? 0.25 : 1) });
    }
  }
  // A new service appears: an existing caller starts calling it, and it calls its dependencies.
  if (setup.chance(0.8)) {
    const name = setup.pick(['promo-engine', 'tax-calculator', 'ab-router', 'bundle-pricer', 'eta-predictor']);
    const namespace = setup.pick([...new Set(services.map((s) => s.namespace))].filter((n) => n !== 'vault' && n !== 'security'));
    const fresh: Service = { ...pseudoService(name, namespace, name, 8080), depth: 2, replicas: 2, latencyMs: 18, errorShare: 0.002 };
    const caller = setup.pick(services.filter((s) => s.depth <= 1));
    const deps = setup.shuffle(services.filter((s) => s.depth >= 2)).slice(0, setup.int(2, 3));
    const route = (template: string) => [{ template, method: 'GET', bytesOut: Math.round(setup.logNormal(1500, 0.5)), bytesIn: 0, weight: 1 }];
    const newEdges: Edge[] = [
      { src: caller, dst: fresh, peakRps: peakRps * setup.range(0.02, 0.06), routes: route(`/v1/${name.split('-')[0]}/{id}`), timeoutMs: 3000 },
      ...deps.map((d) => ({ src: fresh, dst: d, peakRps: peakRps * setup.range(0.01, 0.03), routes: route('/v1/lookup/{id}'), timeoutMs: 3000 })),
    ];
    const s0 = within(60 * MINUTE, options.durationMs, 30 * MINUTE);
    addBenign({
      kind: 'new_service',
      startMs: s0,
      endMs,
      everySecond: (second, random, ctx, shape) => {
        const ramp = Math.min(1, (second * 1000 - s0) / (10 * MINUTE));
        for (const e of newEdges) for (let n = random.poisson(e.peakRps * shape * ramp); n > 0; n--) playRequest(random, ctx, e, second * 1000 + random.int(0, 999));
      },
    });
  }
  // A DNS blip: calls to hosts outside the mesh fail to resolve for up to a minute and a half.
  let dnsBlip: { startMs: number; endMs: number } | undefined;
  if (topology.egress.length > 0 && setup.chance(0.7)) {
    const s0 = within(0, options.durationMs, 90_000);
    dnsBlip = { startMs: s0, endMs: s0 + setup.int(20, 90) * 1000 };
    benign.dns_blip = 1;
  }

  // Attacks: one of each class asked for, onsets anywhere after learning (overlaps allowed).
  const classes = options.attacks === undefined || options.attacks === 'all' ? [...ATTACK_CLASSES] : [...options.attacks];
  const labels: ScenarioLabel[] = [];
  const variants: string[] = [];
  for (const cls of setup.shuffle(classes)) {
    const attack = planAttack(cls, setup, { topology, startMs, endMs, peakRps, serviceIndex, within: (lengthMs) => within(INDEPENDENT_LEARNING_MS, options.durationMs, lengthMs + 5 * MINUTE), callersOf });
    if (attack === undefined) continue;
    episodes.push(attack.episode);
    labels.push({ class: cls, src: attack.src, dst: attack.dst, start: iso(attack.episode.startMs), end: iso(attack.episode.endMs), detector: EXPECTED_DETECTOR[cls], note: attack.note });
    variants.push(`${cls}/${attack.variant}`);
  }
  const order = labels.map((l, i) => [l, variants[i] as string] as const).sort((a, b) => a[0].start.localeCompare(b[0].start));

  // Where pods are at time t: redeploys give a replica a new generation once its turn came.
  const placementAt = (timeMs: number, active: readonly Episode[]): Placement => {
    const extra = new Map<Service, Array<{ count: number; generation: number }>>();
    for (const e of active) for (const [s, p] of e.extraPods ?? []) extra.set(s, [...(extra.get(s) ?? []), p]);
    return {
      podIpOf(service, random) {
        const index = serviceIndex.get(service) ?? 200 + service.name.length;
        const adds = extra.get(service) ?? [];
        const total = service.replicas + adds.reduce((n, a) => n + a.count, 0);
        let r = random.int(0, total - 1);
        if (r >= service.replicas) {
          r -= service.replicas;
          for (const a of adds) {
            if (r < a.count) return podIp(index, a.generation, r);
            r -= a.count;
          }
        }
        let generation = 0;
        for (const d of redeploys) if (d.service === service && timeMs >= d.startMs + ((r + 1) / service.replicas) * d.lengthMs) generation++;
        return podIp(index, generation, r);
      },
      clusterIpOf: (service) => `10.96.${(serviceIndex.get(service) ?? 99) + 10}.${(service.port % 200) + 10}`,
      extAuthzDenyShare: (src, dst) => (lackingPermission && lackingPermission.edge.src === src && lackingPermission.edge.dst === dst ? lackingPermission.share : 0.001),
    };
  };

  const actionsOf = episodes.map((e) => e.actions ?? []);
  const probeServices = services.filter((s) => topology.namespaces.get(s.namespace)?.logsProbes);
  const scrapeTargets = setup.shuffle(services).slice(0, setup.int(1, 3));

  const generateSecond = (second: number, out: GeneratedLine[]): void => {
    const t0 = second * 1000;
    const random = createRandom(mixSeed(seed, 0x5ec, second));
    const active = episodes.filter((e) => e.startMs <= t0 && t0 < e.endMs);
    const conditions = emptyConditions();
    for (const e of active) e.apply?.(conditions, t0);
    const ctx: TrafficContext = { topology, placement: placementAt(t0, active), conditions: active.length > 0 ? conditions : NO_CONDITIONS, out };
    const shape = shapeAt(t0);

    edges.forEach((edge, i) => {
      let rate = edge.peakRps * shape * (1 + 0.2 * valueNoise(seed, 100 + i, t0, 5 * MINUTE));
      for (const e of active) if (e.edgeFactor) rate *= e.edgeFactor(edge, t0);
      for (let n = random.poisson(rate); n > 0; n--) playRequest(random, ctx, edge, t0 + random.int(0, 999));
    });
    for (const e of active) e.everySecond?.(second, random, ctx, shape);
    // Attack actions due in this second, each with its own stream.
    episodes.forEach((e, ei) => {
      const actions = actionsOf[ei] as NonNullable<Episode['actions']>;
      if (actions.length === 0 || t0 + 1000 <= e.startMs - 1000 || t0 > e.endMs) return;
      actions.forEach((a, ai) => {
        if (a.timeMs >= t0 && a.timeMs < t0 + 1000) a.run(createRandom(mixSeed(seed, 0xa7, ei, ai)), ctx, a.timeMs);
      });
    });
    // Human users of the app, checked by OPA; a denied user sometimes tries again.
    for (let n = random.poisson(topology.userPeakRps * shape); n > 0; n--) {
      const total = topology.users.reduce((a, u) => a + u.weight, 0);
      let r = random.next() * total;
      let user = topology.users[0];
      for (const u of topology.users) {
        user = u;
        if (r < u.weight) break;
        r -= u.weight;
      }
      if (!user) break;
      const path = fillPath(random, random.pick(user.routes));
      const allowed = !random.chance(0.015);
      const t = t0 + random.int(0, 999);
      const tries = allowed ? 1 : random.chance(0.3) ? random.int(2, 3) : 1;
      for (let k = 0; k < tries; k++) out.push({ format: 'opa', line: renderOpaAppDecision({ timeMs: t + k * 700, decisionId: random.uuid(), app: topology.userApp.name, user: user.email, method: random.chance(0.85) ? 'GET' : 'POST', path, allowed, roles: ['customer'] }), timeMs: t + k * 700 });
    }
    // Kubelet probes, plaintext from the node, where probes are not rewritten.
    for (const s of probeServices) {
      for (let replica = 0; replica < s.replicas; replica++) {
        if ((second + replica * 3 + (serviceIndex.get(s) ?? 0)) % 20 !== 0) continue;
        const ip = podIp(serviceIndex.get(s) ?? 0, 0, replica);
        out.push({ format: 'envoy', line: renderInbound({ timeMs: t0 + 5, srcIdentity: '', srcIp: `10.0.${replica + 1}.${(serviceIndex.get(s) ?? 0) + 20}`, srcPort: 40_000 + (second % 20_000), dst: peerOf(s, ip), method: 'GET', path: '/healthz/ready', protocol: 'HTTP/1.1', authority: `${ip}:${s.port}`, status: 200, flags: '', details: 'via_upstream', termDetails: '', upstreamFailure: '', bytesIn: 0, bytesOut: 2, durationMs: 1, requestId: random.uuid(), traceId: random.hex(32), mtls: false, userAgent: 'kube-probe/1.30' }, topology.namespaces.get(s.namespace)?.style ?? 'istio-keys'), timeMs: t0 + 6 });
      }
    }
    // Cron jobs: each run from a fresh pod, a few calls to each target.
    topology.crons.forEach((cron, ci) => {
      const run = Math.floor((t0 - cron.offsetMs) / cron.periodMs);
      const runStart = run * cron.periodMs + cron.offsetMs;
      const runLengthMs = (40 + Math.floor(hashUnit(seed, ci, run) * 110)) * 1000;
      if (t0 < runStart || t0 >= runStart + runLengthMs) return;
      const job = pseudoService(cron.name, cron.namespace, cron.name);
      const ip = `10.42.${200 + ci}.${(run % 250) + 2}`;
      for (const target of cron.targets) {
        if (!random.chance(3 / (runLengthMs / 1000))) continue;
        playRequest(random, ctx, { src: job, dst: target, peakRps: 0, routes: [{ template: `/internal/${cron.name}/batch/{id}`, method: 'POST', bytesOut: 2500, bytesIn: 400, weight: 1 }], timeoutMs: 15_000 }, t0 + random.int(0, 999), { srcIp: ip });
      }
    });
    // Calls leaving the mesh (TCP through the sidecar); a DNS blip makes them fail.
    for (const host of topology.egress) {
      for (let n = random.poisson(host.peakRps * shape); n > 0; n--) {
        const t = t0 + random.int(0, 999);
        const failing = dnsBlip !== undefined && t >= dnsBlip.startMs && t < dnsBlip.endMs;
        out.push({ format: 'envoy', line: renderEgress({ timeMs: t, srcIp: ctx.placement.podIpOf(host.caller, random), srcPort: random.int(32_768, 60_999), host: host.host, hostIp: `198.18.${host.host.length}.${(host.host.charCodeAt(4) % 200) + 10}`, status: 0, flags: failing ? 'DF' : '', details: '', bytesIn: failing ? 0 : Math.round(random.logNormal(900, 0.4)), bytesOut: failing ? 0 : Math.round(random.logNormal(4000, 0.6)), durationMs: failing ? random.int(5000, 5010) : Math.round(random.logNormal(120, 0.5)), requestId: '' }), timeMs: t });
      }
    }
    // Now and then a policy drop nobody worries about: a scraper knocking on the same closed ports.
    if (random.chance(1 / 300)) {
      const dst = random.pick(scrapeTargets);
      const ip = ctx.placement.podIpOf(dst, random);
      out.push({ format: 'hubble', line: renderHubbleFlow({ timeMs: t0 + 3, src: { ip: '10.42.254.9', namespace: 'monitoring', app: 'prometheus', serviceAccount: 'prometheus', pod: 'prometheus-k8s-0', identity: 31_337 }, dst: flowEndpointOf(dst, ip), srcPort: random.int(32_768, 60_999), dstPort: 9102, dropped: true, node: topology.namespaces.get(dst.namespace)?.node ?? 'ip-10-0-1-10.ec2.internal' }), timeMs: t0 + 3 });
    }
  };

  const mesh = toSimMesh(topology);
  const edgeRates = edges.map((e) => e.peakRps);
  return {
    mesh,
    labels: order.map(([l]) => l),
    profile: {
      services: services.length,
      namespaces: new Set(services.map((s) => s.namespace)).size,
      edges: edges.length,
      topology: 'hubs',
      peakRps: Math.round(peakRps * 10) / 10,
      peakHourUtc: Math.round(peakHourUtc * 10) / 10,
      troughShare: Math.round(troughShare * 100) / 100,
      edgeRpsRange: [Math.min(...edgeRates), Math.max(...edgeRates)],
      benign,
      attackVariants: order.map(([, v]) => v),
    },
    generate(fromMs, toMs) {
      const out: GeneratedLine[] = [];
      for (let second = Math.floor((fromMs - SPILL_MS) / 1000); second * 1000 < toMs; second++) {
        const slot: GeneratedLine[] = [];
        generateSecond(second, slot);
        for (const line of slot) if (line.timeMs >= fromMs && line.timeMs < toMs) out.push(line);
      }
      return out.sort((a, b) => a.timeMs - b.timeMs);
    },
  };
}

/** The topology in the shape other parts of the simulator read (`Scenario.mesh`). */
function toSimMesh(topology: Topology): SimMesh {
  const workload = (s: Service, i: number): SimWorkload => ({ name: s.name, namespace: s.namespace, serviceAccount: s.serviceAccount, identity: s.identity, ip: podIp(i, 0, 0), port: s.port, flavor: topology.namespaces.get(s.namespace)?.style === 'istio-keys' ? 'istio-json' : 'envoy-json', tier: s.depth });
  const workloads = topology.services.map(workload);
  const byName = new Map(workloads.map((w) => [w.name, w]));
  const gateway: SimWorkload = { name: 'istio-ingressgateway', namespace: topology.gateway.namespace, serviceAccount: 'istio-ingressgateway-service-account', identity: topology.gateway.identity, ip: topology.gateway.ip, port: 8443, flavor: 'istio-json', tier: -1 };
  const simEdges: SimEdge[] = topology.edges.map((e) => ({ src: e.src === 'gateway' ? gateway : (byName.get(e.src.name) as SimWorkload), dst: byName.get(e.dst.name) as SimWorkload, peakRps: e.peakRps, medianBytesOut: e.routes[0]?.bytesOut ?? 1000, medianBytesIn: e.routes[0]?.bytesIn ?? 0, denyRatio: 0, paths: e.routes.map((r) => r.template) }));
  const cron = topology.crons[0];
  return {
    trustDomain: 'cluster.local',
    services: workloads,
    edges: simEdges,
    gateway,
    clientIps: ['203.0.113.7', '198.51.100.23'],
    opaGuarded: topology.opaGuarded,
    userApp: byName.get(topology.userApp.name) as SimWorkload,
    users: topology.users.map((u) => ({ email: u.email, paths: u.routes })),
    userPeakRps: topology.userPeakRps,
    batchJob: { workload: { name: cron?.name ?? 'reconciler', namespace: 'batch', serviceAccount: cron?.name ?? 'reconciler', identity: cron?.identity ?? '', ip: '10.42.200.2', port: 8080, flavor: 'envoy-json', tier: 9 }, targets: (cron?.targets ?? []).map((t) => byName.get(t.name) as SimWorkload), periodMs: cron?.periodMs ?? HOUR, offsetMs: cron?.offsetMs ?? 0, runMs: 90_000 },
    sensitive: workloads.filter((w) => ['payments', 'vault', 'security'].includes(w.namespace)),
  };
}

interface AttackPlanContext {
  readonly topology: Topology;
  readonly startMs: number;
  readonly endMs: number;
  readonly peakRps: number;
  readonly serviceIndex: ReadonlyMap<Service, number>;
  /** An onset for an attack lasting `lengthMs`. */
  readonly within: (lengthMs: number) => number;
  readonly callersOf: (dst: Service) => Service[];
}

interface PlannedAttack {
  readonly episode: Episode;
  readonly src: string | null;
  readonly dst: string | null;
  readonly variant: string;
  readonly note: string;
}

const SCAN_PORTS = [22, 25, 53, 80, 443, 2375, 2379, 3306, 5432, 6379, 6443, 8000, 8080, 8443, 9000, 9090, 9200, 10250, 11211, 15000, 27017];
const PROBE_PATHS = ['/admin', '/admin/users', '/admin/roles', '/internal/debug', '/debug/vars', '/actuator/env', '/actuator/heapdump', '/v1/secrets', '/v1/keys/export', '/api/users/export', '/api/tenants', '/api/billing/refunds', '/api/impersonate', '/api/settings/sso', '/api/audit/purge', '/api/tokens/mint', '/api/roles/grant', '/api/payouts', '/graphql', '/.git/config', '/backup.sql', '/api/webhooks', '/api/feature-flags/override', '/api/reports/all'];

function planAttack(cls: AttackClass, random: Random, p: AttackPlanContext): PlannedAttack | undefined {
  const { topology } = p;
  const services = topology.services;
  const sensitive = (s: Service) => ['payments', 'vault', 'security'].includes(s.namespace);
  const edgeTo = (src: Service, dst: Service) => topology.edges.some((e) => e.src === src && e.dst === dst);
  const ipOf = (s: Service, salt: number) => `10.42.${230 + (salt % 20)}.${((p.serviceIndex.get(s) ?? 0) * 7 + salt) % 250 + 2}`;
  const routes = (paths: readonly string[], method = 'GET') => paths.map((t, i) => ({ template: t, method, bytesOut: 120, bytesIn: 0, weight: 1 / (i + 1) }));

  switch (cls) {
    case 'lateral_movement': {
      const victim = pickFrom(random, services.filter((s) => s.depth >= 1 && !sensitive(s)), services);
      const attacker: Service = { ...victim, name: `${victim.name}-debug` };
      const variant = random.pick(['dense-scan', 'slow-scan', 'stolen-identity'] as const);
      const lengthMs = variant === 'dense-scan' ? random.range(1, 3) * MINUTE : variant === 'slow-scan' ? random.range(20, 40) * MINUTE : random.range(5, 10) * MINUTE;
      const s0 = p.within(lengthMs);
      const ip = ipOf(victim, 1);
      const targets = random.shuffle(services.filter((s) => s !== victim && !edgeTo(victim, s)));
      const pairs: Array<{ dst: Service; port: number }> = [];
      for (const dst of targets) {
        pairs.push({ dst, port: dst.port });
        if (variant !== 'stolen-identity') for (const port of random.shuffle(SCAN_PORTS).slice(0, random.int(0, 3))) pairs.push({ dst, port });
      }
      const chosen = random.shuffle(pairs).slice(0, variant === 'dense-scan' ? random.int(20, 45) : variant === 'slow-scan' ? random.int(15, 30) : random.int(6, 12));
      const actions = chosen.map((target) => ({
        timeMs: Math.floor(random.range(s0, s0 + lengthMs)),
        run: (r: Random, ctx: TrafficContext, timeMs: number) => {
          const dstIp = ctx.placement.podIpOf(target.dst, r);
          if (target.port !== target.dst.port || (variant !== 'stolen-identity' && r.chance(0.4))) {
            ctx.out.push({ format: 'hubble', timeMs, line: renderHubbleFlow({ timeMs, src: flowEndpointOf(victim, ip, attacker.name), dst: flowEndpointOf(target.dst, dstIp), srcPort: r.int(32_768, 60_999), dstPort: target.port, dropped: true, node: topology.namespaces.get(victim.namespace)?.node ?? 'node' }) });
            return;
          }
          const allowed = variant === 'stolen-identity' && r.chance(0.4);
          playRequest(r, ctx, { src: attacker, dst: target.dst, peakRps: 0, routes: routes(r.shuffle(PROBE_PATHS).slice(0, 2)), timeoutMs: 3000 }, timeMs, { srcIp: ip, srcIdentity: victim.identity, userAgent: 'curl/8.5.0' }, allowed ? {} : { forceDeny: 'none' });
        },
      }));
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, actions: sortActions(actions) }, src: victim.identity, dst: null, variant, note: `a pod running with ${victim.name}'s identity (${ip}) probes ${chosen.length} destination/ports (${variant})` };
    }
    case 'policy_misconfiguration': {
      const candidates = services.filter((s) => p.callersOf(s).length >= 1).sort((a, b) => p.callersOf(b).length - p.callersOf(a).length);
      const dst = random.pick(candidates.slice(0, Math.max(1, Math.ceil(candidates.length / 2))));
      const callers = p.callersOf(dst);
      const variant = callers.length >= 2 && random.chance(0.5) ? 'all-but-one' : 'all-callers';
      const allow = variant === 'all-but-one' ? random.pick(callers) : undefined;
      const lengthMs = random.range(6, 20) * MINUTE;
      const s0 = p.within(lengthMs);
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, apply: (c) => c.brokenPolicy.set(dst, { policy: 'none', allow }) }, src: null, dst: dst.name, variant, note: `an AuthorizationPolicy push leaves ${dst.name} denying ${allow ? `every caller but ${allow.name}` : 'every caller'}` };
    }
    case 'cert_expiry': {
      // A client's expired certificate is only named by its own sidecar's outbound lines (servers
      // see an address without a certificate), so the client side needs a namespace logging outbound.
      const clients = services.filter((s) => topology.edges.some((e) => e.src === s) && topology.namespaces.get(s.namespace)?.logsOutbound);
      const variant = clients.length > 0 && random.chance(0.5) ? 'client-side' : 'server-side';
      const pool = variant === 'server-side' ? services.filter((s) => p.callersOf(s).length > 0) : clients;
      const victim = random.pick(pool.length > 0 ? pool : services);
      const lengthMs = random.range(8, 25) * MINUTE;
      const s0 = p.within(lengthMs);
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, apply: (c) => c.expired.set(victim, variant === 'server-side' ? 'server' : 'client') }, src: victim.identity, dst: victim.name, variant, note: `the workload certificate of ${victim.name} expired (${variant}: SDS stopped renewing it)` };
    }
    case 'plaintext_client': {
      const variant = random.chance(0.5) ? 'no-sidecar-pod' : 'sidecar-removed';
      const lengthMs = random.range(5, 20) * MINUTE;
      const s0 = p.within(lengthMs);
      if (variant === 'sidecar-removed') {
        const client = pickFrom(random, services.filter((s) => s.depth >= 1 && topology.edges.some((e) => e.src === s)), services.filter((s) => topology.edges.some((e) => e.src === s)));
        const main = topology.edges.filter((e) => e.src === client).sort((a, b) => b.peakRps - a.peakRps)[0] as Edge;
        const ip = ipOf(client, 3);
        return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, apply: (c) => c.plaintextFrom.set(client, ip) }, src: ip, dst: main.dst.name, variant, note: `${client.name} redeployed without its sidecar (${ip}) and calls ${main.dst.name} in plaintext` };
      }
      const dst = pickFrom(random, services.filter((s) => s.depth >= 1), services);
      const ip = `10.42.${random.int(240, 249)}.${random.int(2, 250)}`;
      const shell = pseudoService('netshoot', 'default', 'default');
      const paths = topology.edges.find((e) => e.dst === dst)?.routes ?? routes(['/v1/items']);
      const times = poissonTimes(random, s0, s0 + lengthMs, random.range(0.1, 0.8));
      const actions = times.map((timeMs) => ({ timeMs, run: (r: Random, ctx: TrafficContext) => playRequest(r, ctx, { src: shell, dst, peakRps: 0, routes: paths, timeoutMs: 5000 }, timeMs, { srcIp: ip, srcIdentity: '', mtls: false, userAgent: 'python-requests/2.31.0', authority: authorityFor(shell, dst) }) }));
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, actions }, src: ip, dst: dst.name, variant, note: `a pod without a sidecar (${ip}) talks plaintext to ${dst.name}` };
    }
    case 'exfiltration': {
      const variant = random.chance(0.5) ? 'burst' : 'low-and-slow';
      const eligible = topology.edges.filter((e) => e.src !== 'gateway' && e.peakRps >= p.peakRps * 0.01).sort((a, b) => b.peakRps - a.peakRps);
      const edge = random.pick(eligible.length > 0 ? eligible.slice(0, Math.max(1, Math.ceil(eligible.length / 2))) : topology.edges.filter((e) => e.src !== 'gateway'));
      const lengthMs = variant === 'burst' ? random.range(3, 10) * MINUTE : random.range(25, 50) * MINUTE;
      const factor = variant === 'burst' ? random.range(15, 80) : random.range(4, 8);
      const s0 = p.within(lengthMs);
      const src = edge.src as Service;
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, apply: (c) => c.bytesFactor.set(edge, factor), ...(variant === 'burst' ? { edgeFactor: (e: Edge) => (e === edge ? 1.5 : 1) } : {}) }, src: src.identity, dst: edge.dst.name, variant, note: `${src.name} pulls ${factor.toFixed(0)}× larger responses from ${edge.dst.name} (${variant})` };
    }
    case 'new_edge': {
      const targets = services.filter(sensitive);
      const target = random.pick(targets.length > 0 ? targets : services);
      const strangers = services.filter((s) => s !== target && !edgeTo(s, target));
      if (strangers.length === 0) return undefined;
      const src = pickFrom(random, strangers.filter((s) => s.depth <= 2), strangers);
      const variant = random.chance(0.5) ? 'allowed' : 'denied';
      const lengthMs = random.range(2, 10) * MINUTE;
      const s0 = p.within(lengthMs);
      const times = Array.from({ length: random.int(3, 15) }, () => Math.floor(random.range(s0, s0 + lengthMs))).sort((a, b) => a - b);
      const paths = routes([`/v1/${target.name.split('-')[0]}/accounts/{id}`, '/v1/keys', '/v1/export']);
      const actions = times.map((timeMs) => ({ timeMs, run: (r: Random, ctx: TrafficContext) => playRequest(r, ctx, { src, dst: target, peakRps: 0, routes: paths, timeoutMs: 5000 }, timeMs, {}, variant === 'denied' ? { forceDeny: `ns[${target.namespace}]-policy[${target.name}-callers]-rule[0]` } : {}) }));
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, actions }, src: src.identity, dst: target.name, variant, note: `${src.name} calls ${target.name} (${target.namespace}) for the first time, ${variant}` };
    }
    case 'privilege_probing': {
      const guarded = services.filter((s) => topology.opaGuarded.has(s.name));
      const variant = guarded.length > 0 && random.chance(0.5) ? 'service-few-paths' : 'user-many-paths';
      if (variant === 'user-many-paths') {
        const user = random.chance(0.6) ? (random.pick(topology.users.slice(5)) ?? topology.users[0])?.email ?? 'contractor@acme-corp.example' : 'svc-reporting@acme-corp.example';
        const lengthMs = random.range(2, 5) * MINUTE;
        const s0 = p.within(lengthMs);
        const paths = random.shuffle(PROBE_PATHS).slice(0, random.int(12, 22));
        const actions = paths.flatMap((path) => Array.from({ length: random.int(1, 2) }, () => ({ timeMs: Math.floor(random.range(s0, s0 + lengthMs)), run: (r: Random, ctx: TrafficContext, timeMs: number) => ctx.out.push({ format: 'opa', line: renderOpaAppDecision({ timeMs, decisionId: r.uuid(), app: topology.userApp.name, user, method: r.pick(['GET', 'POST', 'DELETE']), path, allowed: false, roles: ['customer'] }), timeMs }) })));
        return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, actions: sortActions(actions) }, src: user, dst: topology.userApp.name, variant, note: `${user} is denied on ${paths.length} admin paths of ${topology.userApp.name}` };
      }
      const target = random.pick(guarded);
      const src = pickFrom(random, services.filter((s) => s !== target && s.depth <= 2), services.filter((s) => s !== target));
      const lengthMs = random.range(8, 15) * MINUTE;
      const s0 = p.within(lengthMs);
      const paths = random.shuffle(PROBE_PATHS).slice(0, random.int(6, 9));
      const actions = paths.flatMap((path) => Array.from({ length: random.int(1, 3) }, () => ({ timeMs: Math.floor(random.range(s0, s0 + lengthMs)), run: (r: Random, ctx: TrafficContext, timeMs: number) => playRequest(r, ctx, { src, dst: target, peakRps: 0, routes: routes([path], r.pick(['GET', 'POST', 'DELETE'])), timeoutMs: 5000 }, timeMs, {}, { forceOpaDeny: true }) })));
      return { episode: { kind: `attack:${cls}`, startMs: s0, endMs: s0 + lengthMs, actions: sortActions(actions) }, src: src.identity, dst: target.name, variant, note: `${src.name} is denied by OPA on ${paths.length} paths of ${target.name}` };
    }
    default:
      return undefined;
  }
}

/** A random item of `items`, or of `fallback` when `items` is empty. */
function pickFrom<T>(random: Random, items: readonly T[], fallback: readonly T[]): T {
  return random.pick(items.length > 0 ? items : fallback);
}

function sortActions<T extends { timeMs: number }>(actions: T[]): T[] {
  return actions.sort((a, b) => a.timeMs - b.timeMs);
}
