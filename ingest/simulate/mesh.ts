// The simulated mesh: services in namespaces with SPIFFE identities and pod IPs, a layered call
// graph with per-edge rates and response sizes, background denials on some edges, an ingress
// gateway, services guarded by OPA (ext_authz), an app that asks OPA about its users, and a
// periodic batch job. Built once per seed; the traffic generator only reads it.
import type { Random } from './prng.ts';

/** How a workload's sidecar writes its access log. */
export type LogFlavor = 'istio-json' | 'envoy-json';

export interface SimWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `spiffe://cluster.local/ns/<ns>/sa/<sa>`. */
  readonly identity: string;
  readonly ip: string;
  readonly port: number;
  readonly flavor: LogFlavor;
  /** Position in the call graph: 0 is called by the gateway. */
  readonly tier: number;
}

export interface SimEdge {
  readonly src: SimWorkload;
  readonly dst: SimWorkload;
  /** Requests per second at the daily peak. */
  readonly peakRps: number;
  /** Median response size, in bytes. */
  readonly medianBytesOut: number;
  readonly medianBytesIn: number;
  /** Share of requests denied by RBAC in normal operation. */
  readonly denyRatio: number;
  readonly paths: readonly string[];
}

export interface SimUser {
  readonly email: string;
  readonly paths: readonly string[];
}

export interface SimMesh {
  readonly trustDomain: string;
  readonly services: readonly SimWorkload[];
  readonly edges: readonly SimEdge[];
  readonly gateway: SimWorkload;
  /** External client IPs that reach the gateway. */
  readonly clientIps: readonly string[];
  /** Services whose inbound requests are checked by OPA through ext_authz. */
  readonly opaGuarded: ReadonlySet<string>;
  /** The app that asks OPA about its human users (generic decision input). */
  readonly userApp: SimWorkload;
  readonly users: readonly SimUser[];
  /** Requests per second of user decisions at the daily peak. */
  readonly userPeakRps: number;
  readonly batchJob: { readonly workload: SimWorkload; readonly targets: readonly SimWorkload[]; readonly periodMs: number; readonly offsetMs: number; readonly runMs: number };
  /** Namespaces holding the sensitive services the scenarios aim at. */
  readonly sensitive: readonly SimWorkload[];
}

const SERVICE_NAMES = [
  'cart', 'checkout', 'catalog', 'inventory', 'pricing', 'search', 'recommendations', 'reviews', 'users', 'auth',
  'profile', 'orders', 'shipping', 'notifications', 'email', 'ledger', 'fraud', 'reports', 'media', 'images',
  'currency', 'ads', 'quotes', 'loyalty', 'tax', 'geo', 'wishlist', 'sessions', 'audit', 'billing', 'coupons',
  'ratings', 'feeds', 'tickets', 'chat', 'maps', 'returns', 'warehouse', 'suppliers', 'contracts',
];
const NAMESPACES = ['shop', 'catalog', 'accounts', 'fulfilment', 'platform', 'content', 'growth', 'support'];
const USER_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'zoe'];
const RESOURCE_WORDS = ['items', 'orders', 'accounts', 'invoices', 'settings', 'reports', 'profiles', 'tokens', 'exports', 'keys', 'audit', 'users', 'roles', 'jobs', 'webhooks'];

function makeWorkload(random: Random, name: string, namespace: string, index: number, tier: number): SimWorkload {
  return {
    name,
    namespace,
    serviceAccount: name,
    identity: `spiffe://cluster.local/ns/${namespace}/sa/${name}`,
    ip: `10.${16 + (index >> 8)}.${index & 255}.${random.int(2, 250)}`,
    port: random.pick([8080, 8080, 8080, 9080, 3000, 5000, 50051]),
    flavor: random.chance(0.5) ? 'istio-json' : 'envoy-json',
    tier,
  };
}

function makePaths(random: Random, service: string, count: number): string[] {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const word = random.pick(RESOURCE_WORDS);
    paths.push(random.chance(0.5) ? `/api/v1/${service}/${word}` : `/api/v1/${service}/${word}/{id}`);
  }
  return [...new Set(paths)];
}

/** Istio's ingress gateway, the caller of a mesh's entry services in every scenario. */
export const INGRESS_GATEWAY: SimWorkload = {
  name: 'istio-ingressgateway',
  namespace: 'istio-system',
  serviceAccount: 'istio-ingressgateway-service-account',
  identity: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
  ip: '10.15.0.10',
  port: 8080,
  flavor: 'istio-json',
  tier: -1,
};

/** Builds a mesh of `serviceCount` services (at least 6) scaled to about `peakRps` requests per second at peak. */
export function createMesh(random: Random, serviceCount: number, peakRps: number): SimMesh {
  const count = Math.max(6, serviceCount);
  const names = random.shuffle(SERVICE_NAMES);
  const namespaces = random.shuffle(NAMESPACES).slice(0, Math.max(2, Math.min(NAMESPACES.length, Math.ceil(count / 4))));
  const services: SimWorkload[] = [];
  services.push(makeWorkload(random, 'frontend', namespaces[0] as string, 0, 0));
  // The sensitive services every mesh has: payments and a secrets store.
  services.push(makeWorkload(random, 'payments', 'payments', 1, 2));
  services.push(makeWorkload(random, 'vault', 'vault', 2, 3));
  for (let i = services.length; i < count; i++) {
    const base = names[(i - 3) % names.length] as string;
    const name = i - 3 < names.length ? base : `${base}-${Math.floor((i - 3) / names.length) + 1}`;
    services.push(makeWorkload(random, name, random.pick(namespaces), i, random.int(1, 3)));
  }
  const byTier = (t: number) => services.filter((s) => s.tier === t);
  const edges: SimEdge[] = [];
  const edgeKeys = new Set<string>();
  const addEdge = (src: SimWorkload, dst: SimWorkload, weight: number) => {
    const key = `${src.name}>${dst.name}`;
    if (src === dst || edgeKeys.has(key)) return;
    edgeKeys.add(key);
    edges.push({
      src,
      dst,
      peakRps: weight,
      medianBytesOut: Math.round(random.logNormal(2500, 1.0)),
      medianBytesIn: Math.round(random.logNormal(300, 0.8)),
      denyRatio: random.chance(0.25) ? random.range(0.005, 0.04) : 0,
      paths: makePaths(random, dst.name, random.int(2, 6)),
    });
  };
  // Layered call graph: each service calls 1–4 services of deeper tiers; every non-entry service has a caller.
  for (const s of services) {
    const deeper = services.filter((d) => d.tier > s.tier && d.name !== 'vault');
    const calls = random.shuffle(deeper).slice(0, Math.min(deeper.length, random.int(1, 4)));
    for (const d of calls) addEdge(s, d, random.logNormal(1, 0.8));
  }
  for (const s of services) {
    if (s.tier === 0 || edges.some((e) => e.dst === s)) continue;
    const callers = services.filter((c) => c.tier < s.tier && c.name !== 'vault');
    addEdge(random.pick(callers.length > 0 ? callers : byTier(0)), s, random.logNormal(1, 0.8));
  }
  // Only a couple of services read secrets from the vault.
  const vault = services[2] as SimWorkload;
  for (const caller of random.shuffle(services.filter((s) => s.tier >= 1 && s !== vault)).slice(0, 2)) addEdge(caller, vault, 0.4);
  // Scale to the requested peak rate, with a floor so every edge shows up within minutes.
  const total = edges.reduce((sum, e) => sum + e.peakRps, 0);
  const budget = peakRps * 0.8;
  const scaled = edges.map((e) => ({ ...e, peakRps: Math.max(0.08, (e.peakRps / total) * budget) }));

  const gateway = INGRESS_GATEWAY;
  const front = services[0] as SimWorkload;
  scaled.push({ src: gateway, dst: front, peakRps: peakRps * 0.2, medianBytesOut: 12_000, medianBytesIn: 400, denyRatio: 0, paths: ['/', '/products', '/products/{id}', '/cart', '/checkout', '/static/app.js'] });

  const clientIps = Array.from({ length: 24 }, () => `${random.pick([34, 52, 81, 92, 185, 203])}.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`);
  const candidatesForOpa = services.filter((s) => s.tier >= 1 && s.namespace !== 'vault');
  const opaGuarded = new Set(random.shuffle(candidatesForOpa).slice(0, 2).map((s) => s.name));
  const userApp = random.pick(services.filter((s) => s.tier >= 1 && s.namespace !== 'vault' && s.namespace !== 'payments'));
  const users = random.shuffle(USER_NAMES).slice(0, 12).map((u) => ({ email: `${u}@example.com`, paths: makePaths(random, userApp.name, random.int(2, 4)) }));

  const batchWorkload = makeWorkload(random, random.pick(['nightly-export', 'report-builder', 'index-refresh', 'backup-agent']), random.pick(namespaces), 250, 4);
  const batchTargets = random.shuffle(services.filter((s) => s.name !== 'vault')).slice(0, Math.min(count - 1, random.int(7, 10)));

  return {
    trustDomain: 'cluster.local',
    services,
    edges: scaled,
    gateway,
    clientIps,
    opaGuarded,
    userApp,
    users,
    userPeakRps: Math.max(0.2, peakRps * 0.05),
    batchJob: { workload: batchWorkload, targets: batchTargets, periodMs: random.int(20, 45) * 60_000, offsetMs: random.int(3, 19) * 60_000, runMs: random.int(60, 120) * 1000 },
    sensitive: [services[1] as SimWorkload, vault],
  };
}
