// Randomized labelled scenarios for `ztwatch eval`: everything the detectors could be tuned to is
// drawn from the seed — the mesh (10–200 services with made-up names and namespaces, a layered,
// hub-heavy or loosely random call graph, per-edge rates over three orders of magnitude), the daily
// shape (peak hour and depth), the benign events (rollouts, surges, batch jobs, redeploys,
// certificate rotations, intended policy changes, new services) and the attacks (shape and
// intensity of every class, attacks during surges and rollouts, two attacks overlapping). The wire
// formats and the model of one normal request are the ones of `createScenario` (wire.ts, traffic.ts).
// Pure and seeded like it: every one-second slot draws from its own stream, so `generate` can be
// called in any chunks.
import { INGRESS_GATEWAY, type SimEdge, type SimMesh, type SimUser, type SimWorkload } from './mesh.ts';
import { createRandom, mixSeed, type Random } from './prng.ts';
import { makeRequest, rbacDetails, tlsDetails } from './requests.ts';
import { ATTACK_CLASSES, EXPECTED_DETECTOR, type AttackClass, type GeneratedLine, type Scenario, type ScenarioLabel } from './scenario.ts';
import { emitBatchJob, emitMeshRequest, emitStrayDrop, emitStrayTlsFailure, emitUserDecisions, linesBetween, type RequestEffects } from './traffic.ts';
import { renderEnvoyLine, renderHubbleFlow, renderOpaExtAuthz, renderOpaUserDecision } from './wire.ts';

export interface RandomScenarioOptions {
  readonly seed: number;
  /** Event time the trace starts at, in ms. */
  readonly startMs: number;
  readonly durationMs: number;
  /** Attack classes to inject (each at most once); default: 3–5 classes drawn from the seed. */
  readonly attacks?: 'random' | 'all' | readonly AttackClass[];
  /** Mesh requests per second at the daily peak, at most; keeps a trace's size bounded. @default 14 */
  readonly maxPeakRps?: number;
  /** Fixes the number of services instead of drawing 10–200. */
  readonly services?: number;
}

/** What the seed chose, for the eval's report. */
export interface ScenarioProfile {
  readonly services: number;
  readonly namespaces: number;
  readonly edges: number;
  readonly topology: 'layered' | 'hubs' | 'random';
  readonly peakRps: number;
  readonly peakHourUtc: number;
  /** Trough rate as a share of the peak rate. */
  readonly troughShare: number;
  /** Slowest and fastest edge at peak, requests per second. */
  readonly edgeRpsRange: readonly [number, number];
  /** Benign events scheduled, by kind. */
  readonly benign: Readonly<Record<string, number>>;
  /** Attack variants, in label order (e.g. `lateral_movement/slow`). */
  readonly attackVariants: readonly string[];
}

export interface RandomScenario extends Scenario {
  readonly profile: ScenarioProfile;
}

/** Attacks start this long after the trace starts: the detectors' learning period. */
export const RANDOM_ATTACK_WARMUP_MS = 75 * 60_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;

const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 'ven', 'tor', 'zu', 'pel', 'dan', 'qui', 'sor', 'bex', 'nal', 'fi', 'gro', 'hu', 'jas', 'ly', 'mor', 'nex', 'opa', 'pri', 'sta', 'tek', 'ul', 'vor', 'wyn', 'xa', 'yel', 'zor'];
const SUFFIXES = ['', '', '', '-api', '-svc', '-worker', '-gw', '-store', '-db', '-cache', '-sync'];
const PROBE_PATHS = ['/admin', '/admin/users', '/debug/pprof', '/.env', '/actuator/env', '/api/internal/config', '/v1/secrets', '/metrics', '/api/v1/keys', '/graphql', '/console', '/manage/health', '/wp-login.php', '/server-status'];
const PROBE_WORDS = ['admin', 'users', 'roles', 'billing', 'export', 'keys', 'audit', 'settings', 'tokens', 'payouts', 'impersonate', 'debug', 'config', 'secrets', 'reports', 'webhooks', 'invoices', 'ledger', 'permissions', 'sessions', 'grants', 'tenants', 'backups', 'flags'];
const RESOURCE_WORDS = ['items', 'orders', 'accounts', 'invoices', 'settings', 'reports', 'profiles', 'tokens', 'exports', 'keys', 'jobs', 'events', 'records', 'quotes', 'files'];
const SCAN_PORTS = [22, 80, 443, 2379, 3306, 5432, 6379, 8443, 9200, 10250, 27017, 11211, 5672];
/** Namespaces the default config treats as sensitive; every mesh puts a few services there. */
const SENSITIVE_NAMESPACES = ['payments', 'vault', 'security'];

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function makeName(random: Random, used: Set<string>): string {
  for (;;) {
    const parts = random.int(2, 3);
    let name = '';
    for (let i = 0; i < parts; i++) name += random.pick(SYLLABLES);
    name += random.pick(SUFFIXES);
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
  }
}

function makeWorkload(random: Random, name: string, namespace: string, index: number, tier: number): SimWorkload {
  return {
    name,
    namespace,
    serviceAccount: random.chance(0.8) ? name : `${name}-sa`,
    identity: '',
    ip: `10.${40 + (index >> 8)}.${index & 255}.${random.int(2, 250)}`,
    port: random.pick([8080, 8080, 8443, 9080, 3000, 5000, 50051, 7070]),
    flavor: random.chance(0.5) ? 'istio-json' : 'envoy-json',
    tier,
  };
}

function withIdentity(w: SimWorkload): SimWorkload {
  return { ...w, identity: `spiffe://cluster.local/ns/${w.namespace}/sa/${w.serviceAccount}` };
}

function makePaths(random: Random, service: string, count: number): string[] {
  const paths: string[] = [];
  const prefix = random.pick(['/api/v1', '/v2', '/api', '']);
  for (let i = 0; i < count; i++) {
    const word = random.pick(RESOURCE_WORDS);
    paths.push(random.chance(0.5) ? `${prefix}/${service}/${word}` : `${prefix}/${service}/${word}/{id}`);
  }
  return [...new Set(paths)];
}

interface RandomMesh extends SimMesh {
  readonly topology: ScenarioProfile['topology'];
  readonly batchJobs: ReadonlyArray<SimMesh['batchJob']>;
}

function createRandomMesh(random: Random, serviceCount: number, peakRps: number): RandomMesh {
  const used = new Set<string>();
  const namespaceCount = Math.max(2, Math.min(24, Math.round(serviceCount / random.range(3, 9))));
  const namespaces = Array.from({ length: namespaceCount }, () => makeName(random, used).replace(/-.*$/, ''));
  const sensitiveNs = random.shuffle(SENSITIVE_NAMESPACES).slice(0, random.int(1, 2));
  const topology = random.pick(['layered', 'hubs', 'random'] as const);
  const maxTier = random.int(2, 5);
  const services: SimWorkload[] = [];
  for (let i = 0; i < serviceCount; i++) {
    const sensitive = i < 3 || (i < serviceCount / 10 && random.chance(0.3));
    const namespace = sensitive ? random.pick(sensitiveNs) : random.pick(namespaces);
    const tier = i === 0 ? 0 : sensitive ? random.int(2, maxTier) : random.int(1, maxTier);
    services.push(withIdentity(makeWorkload(random, makeName(random, used), namespace, i, tier)));
  }
  const entries = [services[0] as SimWorkload, ...random.shuffle(services.filter((s) => s.tier === 1)).slice(0, random.int(0, 2))];
  const hubs = new Set(random.shuffle(services.filter((s) => s.tier >= 2)).slice(0, Math.max(1, Math.round(serviceCount / 15))));
  const edges: SimEdge[] = [];
  const keys = new Set<string>();
  const addEdge = (src: SimWorkload, dst: SimWorkload, weight: number) => {
    const key = `${src.name}>${dst.name}`;
    if (src === dst || keys.has(key)) return;
    keys.add(key);
    edges.push({
      src,
      dst,
      peakRps: weight,
      medianBytesOut: Math.round(random.logNormal(random.pick([400, 2500, 12_000]), 0.9)),
      medianBytesIn: Math.round(random.logNormal(300, 0.8)),
      denyRatio: random.chance(0.2) ? random.range(0.003, 0.05) : 0,
      paths: makePaths(random, dst.name, random.int(1, 6)),
    });
  };
  // Weights span three orders of magnitude and more (log-normal, sigma 1.8) before scaling.
  const weight = () => random.logNormal(1, 1.8);
  for (const s of services) {
    const deeper = services.filter((d) => d.tier > s.tier);
    const pool = topology === 'random' ? services.filter((d) => d !== s && d.tier !== 0) : deeper;
    const calls = random.int(topology === 'hubs' ? 1 : 0, topology === 'layered' ? 4 : 3);
    for (const d of random.shuffle(pool).slice(0, Math.min(pool.length, calls))) addEdge(s, d, weight());
    if (topology === 'hubs' && deeper.length > 0) for (const h of hubs) if (h.tier > s.tier && random.chance(0.6)) addEdge(s, h, weight() * 3);
  }
  for (const s of services) {
    if (s.tier === 0 || edges.some((e) => e.dst === s)) continue;
    const callers = services.filter((c) => c.tier < s.tier);
    addEdge(random.pick(callers.length > 0 ? callers : [services[0] as SimWorkload]), s, weight());
  }
  const total = edges.reduce((sum, e) => sum + e.peakRps, 0);
  const budget = peakRps * 0.75;
  // A floor of one call every ~33 minutes at peak: rare edges exist (and some are never seen while learning).
  const scaled = edges.map((e) => ({ ...e, peakRps: Math.max(0.0005, (e.peakRps / total) * budget) }));
  const gateway = INGRESS_GATEWAY;
  for (const entry of entries) {
    scaled.push({ src: gateway, dst: entry, peakRps: (peakRps * 0.25) / entries.length, medianBytesOut: Math.round(random.logNormal(10_000, 0.5)), medianBytesIn: 400, denyRatio: 0, paths: ['/', '/home', `/${entry.name}/{id}`, '/static/app.js', '/api/session'] });
  }
  const clientIps = Array.from({ length: 30 }, () => `${random.pick([34, 52, 81, 92, 185, 203])}.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`);
  const plain = services.filter((s) => s.tier >= 1 && !SENSITIVE_NAMESPACES.includes(s.namespace));
  const opaGuarded = new Set(random.shuffle(plain).slice(0, random.int(1, 3)).map((s) => s.name));
  const userApp = random.pick(plain);
  const userNames = Array.from({ length: random.int(6, 30) }, () => makeName(random, used).replace(/-.*$/, ''));
  const domain = random.pick(['example.com', 'corp.example.org', 'acme.test']);
  const users: SimUser[] = userNames.map((u) => ({ email: `${u}@${domain}`, paths: makePaths(random, userApp.name, random.int(2, 5)) }));
  const batchJobs: Array<SimMesh['batchJob']> = [];
  for (let j = random.int(1, 3); j > 0; j--) {
    const w = withIdentity(makeWorkload(random, `${makeName(random, used)}-job`, random.pick(namespaces), 400 + j, maxTier + 1));
    batchJobs.push({ workload: w, targets: random.shuffle(services).slice(0, Math.min(services.length, random.int(5, 18))), periodMs: random.int(10, 60) * MINUTE, offsetMs: random.int(0, 50) * MINUTE, runMs: random.int(30, 240) * 1000 });
  }
  return {
    trustDomain: 'cluster.local',
    services,
    edges: scaled,
    gateway,
    clientIps,
    opaGuarded,
    userApp,
    users,
    userPeakRps: Math.max(0.1, peakRps * random.range(0.02, 0.08)),
    batchJob: batchJobs[0] as SimMesh['batchJob'],
    batchJobs,
    sensitive: services.filter((s) => SENSITIVE_NAMESPACES.includes(s.namespace)),
    topology,
  };
}

/** Traffic changes while something (benign or hostile) is going on. */
interface Effects {
  /** Every request to these services is denied by a policy. */
  denyDst: Set<SimWorkload>;
  /** Expired certificates: which side fails. */
  expired: Map<SimWorkload, 'client' | 'server'>;
  /** Response bytes multiplied on these edges. */
  exfil: Map<SimEdge, number>;
  restarting: Set<SimWorkload>;
  /** Requests on these edges are denied by a new (intended) policy. */
  deniedEdges: Set<SimEdge>;
  /** Edges no longer called. */
  stoppedEdges: Set<SimEdge>;
}

interface Timed {
  readonly startMs: number;
  readonly endMs: number;
  apply(effects: Effects, rateOf: Map<SimEdge, number>): void;
}

interface EdgeSet {
  readonly edges: SimEdge[];
  readonly fromMs: number;
}

/** Creates a randomized scenario; see the file comment. */
export function createRandomScenario(options: RandomScenarioOptions): RandomScenario {
  const setup = createRandom(mixSeed(options.seed, 11));
  const serviceCount = options.services ?? Math.round(Math.exp(setup.range(Math.log(10), Math.log(200))));
  const peakRps = Math.min(options.maxPeakRps ?? 14, setup.range(0.6, 1.0) * (options.maxPeakRps ?? 14));
  const mesh = createRandomMesh(setup, serviceCount, peakRps);
  const startMs = options.startMs;
  const endMs = startMs + options.durationMs;
  const peakHour = setup.range(0, 24);
  const troughShare = setup.range(0.15, 0.7);
  const shapeAt = (ms: number) => {
    const hour = (ms / HOUR) % 24;
    return troughShare + (1 - troughShare) * (0.5 + 0.5 * Math.cos((2 * Math.PI * (hour - peakHour)) / 24));
  };
  const timed: Timed[] = [];
  const edgeSets: EdgeSet[] = [];
  const extras: GeneratedLine[] = [];
  const benign: Record<string, number> = {};
  const count = (kind: string) => (benign[kind] = (benign[kind] ?? 0) + 1);
  const callers = (dst: SimWorkload) => mesh.edges.filter((e) => e.dst === dst && e.src !== mesh.gateway);
  const inboundRps = (dst: SimWorkload) => callers(dst).reduce((n, e) => n + e.peakRps, 0);
  const internal = mesh.edges.filter((e) => e.src !== mesh.gateway);

  // --- benign events, anywhere in the trace (the learning period included) ---
  const redeploy = (service: SimWorkload, atMs: number) => {
    const until = atMs + setup.range(15, 75) * 1000;
    timed.push({ startMs: atMs, endMs: until, apply: (fx) => void fx.restarting.add(service) });
    count('redeploy');
  };
  for (let t = startMs + setup.range(5, 25) * MINUTE; t < endMs; t += setup.range(6, 30) * MINUTE) redeploy(setup.pick(mesh.services), t);
  const surge = (dsts: SimWorkload[] | 'all', atMs: number, minutes: number, factor: number) => {
    timed.push({
      startMs: atMs,
      endMs: atMs + minutes * MINUTE,
      apply: (_fx, rates) => {
        for (const [edge, rate] of rates) if (dsts === 'all' || dsts.includes(edge.dst)) rates.set(edge, rate * factor);
      },
    });
    count(dsts === 'all' ? 'global_surge' : 'surge');
  };
  for (let t = startMs + setup.range(10, 60) * MINUTE; t < endMs; t += setup.range(25, 80) * MINUTE) {
    if (setup.chance(0.25)) surge('all', t, setup.range(5, 20), setup.range(1.5, 3));
    else surge(setup.shuffle(mesh.services).slice(0, setup.int(1, 3)), t, setup.range(4, 25), setup.range(2, 6));
  }
  const rollout = (atMs: number) => {
    const bases = mesh.services.filter((s) => internal.some((e) => e.src === s));
    const base = setup.pick(bases.length > 0 ? bases : mesh.services);
    const tag = setup.pick(['v2', 'canary', 'next', String(setup.int(3, 9))]);
    const next = withIdentity({ ...base, name: `${base.name}-${tag}`, serviceAccount: `${base.serviceAccount}-${tag}`, ip: `10.31.${setup.int(0, 255)}.${setup.int(2, 250)}` });
    const baseEdges = mesh.edges.filter((e) => e.src === base);
    edgeSets.push({ fromMs: atMs, edges: baseEdges.map((e) => ({ ...e, src: next, peakRps: e.peakRps / 2 })) });
    timed.push({ startMs: atMs, endMs, apply: (_fx, rates) => baseEdges.forEach((e) => rates.set(e, (rates.get(e) ?? 0) / 2)) });
    redeploy(base, atMs + setup.range(0, 3) * MINUTE);
    count('rollout');
  };
  for (let k = setup.int(1, 3); k > 0; k--) rollout(startMs + setup.range(0.2, 0.95) * (endMs - startMs));
  const newService = (atMs: number) => {
    const w = withIdentity(makeWorkload(setup, makeName(setup, new Set(mesh.services.map((s) => s.name))), setup.pick(mesh.services).namespace, 300 + setup.int(0, 99), 3));
    const from = setup.shuffle(mesh.services.filter((s) => s.tier >= 1)).slice(0, setup.int(1, 3));
    const to = setup.shuffle(mesh.services.filter((s) => s.tier >= 2)).slice(0, setup.int(1, 2));
    const mk = (src: SimWorkload, dst: SimWorkload): SimEdge => ({ src, dst, peakRps: setup.range(0.02, 0.4), medianBytesOut: 1500, medianBytesIn: 200, denyRatio: 0, paths: makePaths(setup, dst.name, 2) });
    edgeSets.push({ fromMs: atMs, edges: [...from.map((s) => mk(s, w)), ...to.map((d) => mk(w, d))] });
    count('new_service');
  };
  for (let k = setup.int(0, 2); k > 0; k--) newService(startMs + setup.range(0.3, 0.95) * (endMs - startMs));
  // Certificate rotations: a short blip of verification failures at a few callers.
  for (let k = setup.int(1, 4); k > 0; k--) {
    const atMs = Math.floor(startMs + setup.range(0.05, 0.98) * (endMs - startMs));
    const victim = setup.pick(mesh.services.filter((s) => callers(s).length > 0));
    for (let n = setup.int(1, 6); n > 0; n--) {
      const edge = setup.pick(callers(victim));
      const timeMs = atMs + setup.int(0, 12_000);
      const tls = tlsDetails('CERTIFICATE_VERIFY_FAILED', 268435581);
      const req = makeRequest(setup, { timeMs, direction: 'outbound', srcIdentity: edge.src.identity, srcIp: edge.src.ip, dst: victim, method: 'GET', path: setup.pick(edge.paths), status: 503, flags: 'UF,URX', ...tls, bytesIn: 0, bytesOut: 159, mtls: true, durationMs: 2 });
      extras.push({ format: 'envoy', line: renderEnvoyLine(req, edge.src.flavor), timeMs });
    }
    count('cert_rotation');
  }
  // Intended policy changes: a caller loses access it hardly uses any more; it is denied a few times, then stops.
  const quiet = internal.filter((e) => e.peakRps <= 0.04);
  for (let k = setup.int(0, 2); k > 0; k--) {
    const edge = setup.pick(quiet.length > 0 ? quiet : internal);
    const atMs = Math.floor(startMs + setup.range(0.1, 0.95) * (endMs - startMs));
    const stopMs = atMs + setup.range(20, 120) * 1000;
    timed.push({ startMs: atMs, endMs: stopMs, apply: (fx) => void fx.deniedEdges.add(edge) });
    timed.push({ startMs: stopMs, endMs, apply: (fx) => void fx.stoppedEdges.add(edge) });
    count('policy_change');
  }

  // --- attacks ---
  const classes = options.attacks === 'all' ? [...ATTACK_CLASSES] : Array.isArray(options.attacks) ? [...(options.attacks as readonly AttackClass[])] : setup.shuffle(ATTACK_CLASSES).slice(0, setup.int(3, 5));
  const labels: ScenarioLabel[] = [];
  const variants: string[] = [];
  const zoneStart = startMs + RANDOM_ATTACK_WARMUP_MS;
  const zoneEnd = endMs - 12 * MINUTE;
  const order = setup.shuffle(classes);
  const slotMs = order.length > 0 ? (zoneEnd - zoneStart) / order.length : 0;
  let previous: { startMs: number; endMs: number } | undefined;
  const established = mesh.services.filter((s) => internal.some((e) => e.src === s));
  order.forEach((cls, i) => {
    if (zoneEnd <= zoneStart) return;
    let atMs = Math.round(zoneStart + i * slotMs + setup.range(0, 0.5) * slotMs);
    if (previous && setup.chance(0.3)) atMs = Math.round(previous.startMs + setup.range(0.1, 0.7) * (previous.endMs - previous.startMs));
    const maxMs = Math.max(2 * MINUTE, zoneEnd + 10 * MINUTE - atMs);
    const dur = (minMin: number, maxMin: number) => Math.min(maxMs, setup.range(minMin, maxMin) * MINUTE);
    const label = (src: string | null, dst: string | null, untilMs: number, variant: string, note: string) => {
      labels.push({ class: cls, src, dst, start: iso(atMs), end: iso(untilMs), detector: EXPECTED_DETECTOR[cls], note: `${variant}: ${note}` });
      variants.push(`${cls}/${variant}`);
      previous = { startMs: atMs, endMs: untilMs };
    };
    // Sometimes the attack hides in a surge or a rollout.
    const busy = setup.chance(0.3) ? setup.pick(['surge', 'rollout'] as const) : undefined;
    let focus: SimWorkload | undefined;
    switch (cls) {
      case 'lateral_movement': {
        const attacker = setup.pick(established);
        focus = attacker;
        const slow = setup.chance(0.4);
        const untilMs = atMs + (slow ? dur(15, 35) : dur(1, 5));
        const others = mesh.services.filter((s) => s !== attacker);
        const targets: Array<{ dst: SimWorkload; port: number }> = [];
        for (const dst of setup.shuffle(others)) {
          targets.push({ dst, port: dst.port });
          for (const port of setup.shuffle(SCAN_PORTS).slice(0, setup.int(0, 2))) targets.push({ dst, port });
        }
        const chosen = setup.shuffle(targets).slice(0, Math.min(targets.length, slow ? setup.int(10, 22) : setup.int(8, 40)));
        const l7Share = setup.range(0, 1);
        chosen.forEach((t, k) => {
          const base = slow ? atMs + (k / chosen.length) * (untilMs - atMs) : atMs;
          for (let n = setup.int(1, 3); n > 0; n--) {
            const timeMs = Math.floor(slow ? base + setup.range(0, (untilMs - atMs) / chosen.length) : setup.range(atMs, untilMs));
            if (t.port === t.dst.port && setup.chance(l7Share)) {
              const req = makeRequest(setup, { timeMs, direction: 'inbound', srcIdentity: attacker.identity, srcIp: attacker.ip, dst: t.dst, method: 'GET', path: setup.pick(PROBE_PATHS), status: 403, flags: '', details: rbacDetails(t.dst, 'default-deny'), upstreamFailure: '', bytesIn: 0, bytesOut: 19, mtls: true, durationMs: 0 });
              extras.push({ format: 'envoy', line: renderEnvoyLine(req, t.dst.flavor), timeMs });
            } else {
              extras.push({ format: 'hubble', line: renderHubbleFlow({ timeMs, src: attacker, dst: t.dst, dstPort: t.port, srcPort: setup.int(32768, 60999), dropped: true, node: `worker-${setup.int(1, 6)}` }), timeMs });
            }
          }
        });
        label(attacker.identity, null, untilMs, slow ? 'slow' : 'dense', `${attacker.name} probes ${chosen.length} destination/ports`);
        break;
      }
      case 'policy_misconfiguration': {
        const pool = mesh.services.filter((s) => s.tier > 0 && inboundRps(s) >= 0.05);
        const dst = setup.pick(pool.length > 0 ? pool : [...mesh.services].sort((a, b) => inboundRps(b) - inboundRps(a)).slice(0, 1));
        focus = dst;
        const untilMs = atMs + dur(5, 20);
        timed.push({ startMs: atMs, endMs: untilMs, apply: (fx) => void fx.denyDst.add(dst) });
        label(null, dst.name, untilMs, `${callers(dst).length}-callers`, `a policy change denies every caller of ${dst.name}`);
        break;
      }
      case 'cert_expiry': {
        const side = setup.pick(['client', 'server'] as const);
        const pool = mesh.services.filter((s) => s.tier > 0 && (side === 'server' ? inboundRps(s) >= 0.03 : internal.filter((e) => e.src === s).reduce((n, e) => n + e.peakRps, 0) >= 0.03));
        const victim = setup.pick(pool.length > 0 ? pool : established);
        focus = victim;
        const untilMs = atMs + dur(8, 25);
        timed.push({ startMs: atMs, endMs: untilMs, apply: (fx) => void fx.expired.set(victim, side) });
        label(victim.identity, victim.name, untilMs, side, `the workload certificate of ${victim.name} expired (${side === 'client' ? 'its calls are rejected' : 'its callers cannot verify it'})`);
        break;
      }
      case 'plaintext_client': {
        const dst = setup.pick(mesh.services.filter((s) => s.tier > 0 && inboundRps(s) >= 0.02));
        focus = dst;
        const untilMs = atMs + dur(4, 15);
        const ip = `10.${setup.int(96, 127)}.${setup.int(0, 255)}.${setup.int(2, 250)}`;
        const rate = Math.exp(setup.range(Math.log(0.03), Math.log(1)));
        for (let t = atMs; t < untilMs; t += 1000) {
          for (let n = setup.poisson(rate); n > 0; n--) {
            const timeMs = Math.floor(t + setup.next() * 1000);
            const req = makeRequest(setup, { timeMs, direction: 'inbound', srcIdentity: '', srcIp: ip, dst, method: setup.pick(['GET', 'POST']), path: setup.pick(PROBE_PATHS), status: 200, flags: '', details: 'via_upstream', upstreamFailure: '', bytesIn: setup.int(0, 400), bytesOut: setup.int(200, 3000), mtls: false });
            extras.push({ format: 'envoy', line: renderEnvoyLine(req, dst.flavor), timeMs });
          }
        }
        label(ip, dst.name, untilMs, rate < 0.1 ? 'slow' : 'steady', `a client without a sidecar (${ip}) talks plaintext to ${dst.name}`);
        break;
      }
      case 'exfiltration': {
        const pool = internal.filter((e) => e.peakRps >= 0.05);
        const edge = setup.pick(pool.length > 0 ? pool : internal);
        focus = edge.dst;
        const lowAndSlow = setup.chance(0.5);
        const untilMs = atMs + (lowAndSlow ? dur(15, 40) : dur(4, 12));
        if (lowAndSlow) {
          // A trickle of large responses on top of the edge's ordinary traffic.
          const rate = setup.range(0.01, 0.05);
          for (let t = atMs; t < untilMs; t += 1000) {
            if (!setup.chance(rate)) continue;
            const timeMs = Math.floor(t + setup.next() * 1000);
            const req = makeRequest(setup, { timeMs, direction: 'inbound', srcIdentity: edge.src.identity, srcIp: edge.src.ip, dst: edge.dst, method: 'GET', path: setup.pick(edge.paths).replace('{id}', String(setup.int(1, 99_999))), status: 200, flags: '', details: 'via_upstream', upstreamFailure: '', bytesIn: 0, bytesOut: Math.round(setup.range(40, 200) * Math.max(edge.medianBytesOut, 2000)), mtls: true });
            extras.push({ format: 'envoy', line: renderEnvoyLine(req, edge.dst.flavor), timeMs });
          }
        } else {
          const factor = setup.range(8, 60);
          timed.push({ startMs: atMs, endMs: untilMs, apply: (fx) => void fx.exfil.set(edge, factor) });
        }
        label(edge.src.identity, edge.dst.name, untilMs, lowAndSlow ? 'low-and-slow' : 'burst', `${edge.src.name} pulls unusually large responses from ${edge.dst.name}`);
        break;
      }
      case 'new_edge': {
        const targets = mesh.services.filter((s) => (SENSITIVE_NAMESPACES.includes(s.namespace) || setup.chance(0.2)) && inboundRps(s) >= 0.02);
        const target = setup.pick(targets.length > 0 ? targets : mesh.sensitive);
        const pool = established.filter((s) => s !== target && !mesh.edges.some((e) => e.src === s && e.dst === target));
        const src = setup.pick(pool.length > 0 ? pool : established);
        focus = target;
        const untilMs = atMs + dur(1, 6);
        const denied = setup.chance(0.5) || !SENSITIVE_NAMESPACES.includes(target.namespace);
        // At least two calls: one call is what a rare legitimate edge looks like too.
        for (let k = setup.int(2, 8); k > 0; k--) {
          const timeMs = Math.floor(setup.range(atMs, untilMs));
          const req = makeRequest(setup, {
            timeMs, direction: 'inbound', srcIdentity: src.identity, srcIp: src.ip, dst: target, method: 'GET', path: `/api/v1/${target.name}/${setup.pick(['accounts', 'keys', 'secrets', 'cards', 'export'])}`,
            status: denied ? 403 : 200, flags: '', details: denied ? rbacDetails(target, `${target.name}-callers`) : 'via_upstream', upstreamFailure: '', bytesIn: setup.int(0, 200), bytesOut: denied ? 19 : setup.int(500, 4000), mtls: true,
          });
          extras.push({ format: 'envoy', line: renderEnvoyLine(req, target.flavor), timeMs });
        }
        label(src.identity, target.name, untilMs, denied ? 'denied' : 'allowed', `${src.name} calls ${target.name} (${target.namespace}) for the first time`);
        break;
      }
      case 'privilege_probing': {
        // A slow probe: a handful of actions spread over several minutes.
        const slow = setup.chance(0.3);
        const untilMs = atMs + (slow ? dur(4, 12) : dur(1, 8));
        const many = !slow && setup.chance(0.5);
        const enumerate = setup.chance(0.35);
        const word = setup.pick(PROBE_WORDS);
        const few = () => (slow ? setup.int(5, 7) : setup.int(5, 8));
        const paths = enumerate
          ? Array.from({ length: many ? setup.int(12, 40) : few() }, () => `/api/v1/${word}/${setup.int(1000, 99_999)}`)
          : setup.shuffle(PROBE_WORDS).slice(0, many ? setup.int(12, 22) : few()).map((w) => `/api/v1/${w}${setup.chance(0.5) ? '/all' : ''}`);
        const guarded = mesh.services.filter((s) => mesh.opaGuarded.has(s.name));
        const viaUser = setup.chance(0.5) || guarded.length === 0;
        const user = setup.pick(mesh.users).email;
        const attacker = setup.pick(established.filter((s) => !mesh.opaGuarded.has(s.name)));
        const target = viaUser ? mesh.userApp : setup.pick(guarded);
        focus = target;
        for (const path of paths) {
          for (let k = setup.int(1, 2); k > 0; k--) {
            const timeMs = Math.floor(setup.range(atMs, untilMs));
            const method = setup.pick(['GET', 'POST', 'DELETE', 'PUT']);
            if (viaUser) {
              extras.push({ format: 'opa', line: renderOpaUserDecision({ timeMs, decisionId: setup.uuid(), user, method, path, allowed: false, app: target.name }), timeMs });
              continue;
            }
            const req = makeRequest(setup, { timeMs, direction: 'inbound', srcIdentity: attacker.identity, srcIp: attacker.ip, dst: target, method, path, status: 403, flags: 'UAEX', details: 'ext_authz_denied', upstreamFailure: '', bytesIn: 0, bytesOut: 0, mtls: true, durationMs: 1 });
            extras.push({ format: 'opa', line: renderOpaExtAuthz({ timeMs: Math.max(0, timeMs - 1), decisionId: setup.uuid(), srcIdentity: attacker.identity, srcIp: attacker.ip, srcPort: req.srcPort, dst: target, method, path, requestId: req.requestId, allowed: false }), timeMs: Math.max(0, timeMs - 1) });
            extras.push({ format: 'envoy', line: renderEnvoyLine(req, target.flavor), timeMs });
          }
        }
        const principal = viaUser ? user : attacker.identity;
        label(principal, target.name, untilMs, `${slow ? 'slow-' : ''}${many ? 'many' : 'few'}${enumerate ? '-ids' : '-actions'}${viaUser ? '-user' : '-workload'}`, `${principal} tries ${paths.length} actions on ${target.name}`);
        break;
      }
    }
    if (busy === 'surge' && focus) surge([focus], atMs - setup.range(0, 3) * MINUTE, setup.range(8, 20), setup.range(2, 5));
    if (busy === 'rollout') rollout(atMs + setup.range(-2, 2) * MINUTE);
  });

  // --- normal traffic, one second at a time ---
  extras.sort((a, b) => a.timeMs - b.timeMs);
  labels.sort((a, b) => a.start.localeCompare(b.start));

  const generateSecond = (second: number, out: GeneratedLine[]): void => {
    const slotMs = second * 1000;
    const random = createRandom(mixSeed(options.seed, second, 13));
    const shape = shapeAt(slotMs) * (0.9 + 0.2 * random.next());
    const fx: Effects = { denyDst: new Set(), expired: new Map(), exfil: new Map(), restarting: new Set(), deniedEdges: new Set(), stoppedEdges: new Set() };
    const rates = new Map<SimEdge, number>();
    for (const e of mesh.edges) rates.set(e, e.peakRps);
    for (const set of edgeSets) if (slotMs >= set.fromMs) for (const e of set.edges) rates.set(e, e.peakRps);
    for (const t of timed) if (t.startMs <= slotMs && slotMs < t.endMs) t.apply(fx, rates);
    const effects: RequestEffects = {
      // The side whose certificate expired: the client fails its own handshake; a client of an
      // expired server mostly fails verifying it.
      tlsFailure: (random, src, dst) => {
        if (fx.expired.get(src) === 'client') return { reason: 'SSLV3_ALERT_CERTIFICATE_EXPIRED', code: 268436501 };
        if (fx.expired.get(dst) === 'server') return { reason: random.chance(0.7) ? 'CERTIFICATE_VERIFY_FAILED' : 'SSLV3_ALERT_CERTIFICATE_EXPIRED', code: 268435581 };
        return undefined;
      },
      restarting: (dst) => fx.restarting.has(dst),
      // A misconfigured policy denies everything at the service (OPA is never asked); an intended,
      // tightened one denies single edges after OPA allowed the request.
      denial: (edge) => (fx.denyDst.has(edge.dst) ? { policy: `${edge.dst.name}-authz`, opaLogged: false } : fx.deniedEdges.has(edge) ? { policy: `${edge.dst.name}-tightened`, opaLogged: true } : undefined),
      bytesFactor: (edge) => fx.exfil.get(edge),
    };
    for (const [edge, rate] of rates) {
      if (fx.stoppedEdges.has(edge)) continue;
      for (let n = random.poisson(rate * shape); n > 0; n--) emitMeshRequest(random, mesh, edge, Math.floor(slotMs + random.next() * 1000), out, effects, 0.05);
    }
    emitUserDecisions(random, mesh, slotMs, shape, out);
    for (const job of mesh.batchJobs) emitBatchJob(random, job, slotMs - (startMs + job.offsetMs), 0.05, slotMs, out);
    emitStrayTlsFailure(random, 1 / 1500, internal, slotMs, out);
    emitStrayDrop(random, 1 / 700, internal, slotMs, out);
  };

  const rpsValues = mesh.edges.map((e) => e.peakRps);
  return {
    mesh,
    labels,
    profile: {
      services: mesh.services.length,
      namespaces: new Set(mesh.services.map((s) => s.namespace)).size,
      edges: mesh.edges.length,
      topology: mesh.topology,
      peakRps: Math.round(peakRps * 10) / 10,
      peakHourUtc: Math.round(peakHour * 10) / 10,
      troughShare: Math.round(troughShare * 100) / 100,
      edgeRpsRange: [Math.min(...rpsValues), Math.max(...rpsValues)],
      benign,
      attackVariants: variants,
    },
    generate(fromMs, toMs) {
      return linesBetween(fromMs, toMs, generateSecond, extras);
    },
  };
}
