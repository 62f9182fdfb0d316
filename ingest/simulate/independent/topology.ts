// The independent generator's model of a production mesh, built from first principles rather than
// from the detectors' own simulator: services drawn from a realistic service catalogue (each with a
// home namespace), a call graph grown by preferential attachment (shared platform services such as
// token issuers and feature flags become hubs), per-edge rates from a Zipf law with log-normal
// jitter, pods with their own IPs, per-namespace access-log configuration (Istio JSON keys or typed
// Envoy operators, outbound logging on or off, probe logging), OPA-guarded services, external
// egress hosts, human users of an OPA-checked app, and cron jobs. Built once per seed; traffic and
// episodes only read it.
import type { Random } from '../prng.ts';

export const TRUST_DOMAIN = 'cluster.local';

/** How a namespace's sidecars write access logs. */
export type LogStyle = 'istio-keys' | 'envoy-operators';

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly identity: string;
  readonly port: number;
  /** Depth in the call graph: 0 is reached from the ingress gateway. */
  readonly depth: number;
  /** Base replica count; episodes add or replace pods. */
  readonly replicas: number;
  /** Median server-side latency, in ms. */
  readonly latencyMs: number;
  /** Share of requests failing with a transient 5xx in normal operation. */
  readonly errorShare: number;
}

export interface Namespace {
  readonly name: string;
  readonly style: LogStyle;
  /** Client sidecars log outbound requests too (Telemetry API enabled for both directions). */
  readonly logsOutbound: boolean;
  /** Kubelet probes reach the app through the sidecar (no probe rewrite) and are logged, plaintext. */
  readonly logsProbes: boolean;
  /** Hubble node the namespace's pods run on. */
  readonly node: string;
}

export interface Route {
  readonly template: string;
  readonly method: string;
  /** Median response size, in bytes. */
  readonly bytesOut: number;
  readonly bytesIn: number;
  /** Relative popularity on its edge. */
  readonly weight: number;
}

export interface Edge {
  readonly src: Service | 'gateway';
  readonly dst: Service;
  /** Requests per second at the daily peak. */
  readonly peakRps: number;
  readonly routes: readonly Route[];
  /** Client timeout, in ms. */
  readonly timeoutMs: number;
}

export interface EgressHost {
  readonly host: string;
  readonly caller: Service;
  readonly peakRps: number;
}

export interface CronJob {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly periodMs: number;
  /** Offset of each run within the period, in ms. */
  readonly offsetMs: number;
  readonly targets: readonly Service[];
}

export interface User {
  readonly email: string;
  /** Relative activity (Zipf). */
  readonly weight: number;
  readonly routes: readonly string[];
}

export interface Topology {
  readonly services: readonly Service[];
  readonly namespaces: ReadonlyMap<string, Namespace>;
  readonly edges: readonly Edge[];
  readonly egress: readonly EgressHost[];
  readonly gateway: { readonly identity: string; readonly ip: string; readonly namespace: string };
  /** Services whose inbound requests pass an OPA ext_authz check. */
  readonly opaGuarded: ReadonlySet<string>;
  /** The app that asks OPA about its human users, and its users. */
  readonly userApp: Service;
  readonly users: readonly User[];
  readonly userPeakRps: number;
  readonly crons: readonly CronJob[];
  /** Zipf exponent of the edge rates. */
  readonly zipfExponent: number;
}

/** Service catalogue: name, home namespace, typical role (hub = platform service many call). */
const CATALOGUE: ReadonlyArray<readonly [string, string, 'front' | 'domain' | 'data' | 'hub']> = [
  ['web-bff', 'storefront', 'front'],
  ['mobile-bff', 'storefront', 'front'],
  ['partner-api', 'storefront', 'front'],
  ['product-api', 'catalog', 'domain'],
  ['price-engine', 'catalog', 'domain'],
  ['stock-keeper', 'catalog', 'domain'],
  ['search-indexer', 'catalog', 'data'],
  ['recommender', 'catalog', 'domain'],
  ['order-svc', 'orders', 'domain'],
  ['cart-state', 'orders', 'data'],
  ['coupon-rules', 'orders', 'domain'],
  ['invoice-gen', 'orders', 'domain'],
  ['payment-gateway', 'payments', 'domain'],
  ['ledger-writer', 'payments', 'data'],
  ['fraud-scorer', 'payments', 'domain'],
  ['card-vault', 'payments', 'data'],
  ['shipment-tracker', 'logistics', 'domain'],
  ['label-printer', 'logistics', 'domain'],
  ['geo-lookup', 'logistics', 'data'],
  ['user-directory', 'identity', 'data'],
  ['session-store', 'identity', 'data'],
  ['token-issuer', 'identity', 'hub'],
  ['kyc-check', 'identity', 'domain'],
  ['notif-dispatch', 'messaging', 'domain'],
  ['mailer', 'messaging', 'domain'],
  ['feature-flags', 'platform', 'hub'],
  ['config-server', 'platform', 'hub'],
  ['fx-rates', 'platform', 'data'],
  ['media-resizer', 'content', 'domain'],
  ['review-mod', 'content', 'domain'],
  ['audit-sink', 'security', 'hub'],
  ['secrets-broker', 'vault', 'data'],
];

const ROUTE_NOUNS = ['items', 'orders', 'lines', 'quotes', 'accounts', 'balances', 'sessions', 'profiles', 'shipments', 'labels', 'rates', 'flags', 'tokens', 'events', 'documents', 'holds', 'offers', 'entries'];
const GIVEN = ['ana', 'bo', 'chen', 'dara', 'eli', 'fatima', 'goran', 'hana', 'ines', 'jon', 'kemal', 'lea', 'mo', 'nina', 'omar', 'pia', 'quinn', 'raj', 'sana', 'tom', 'uma', 'vik', 'wen', 'xia', 'yusuf', 'zoe'];
const FAMILY = ['smith', 'garcia', 'kim', 'novak', 'okafor', 'rossi', 'sato', 'muller', 'silva', 'khan', 'berg', 'lind'];

function spiffe(namespace: string, serviceAccount: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;
}

/** A deterministic pod IP for service index `index`, pod generation `generation`, replica `replica`. */
export function podIp(serviceIndex: number, generation: number, replica: number): string {
  // 10.42.0.0/16 pod CIDR, /24 per node-ish: spread generations so a redeploy gets fresh addresses.
  const n = (serviceIndex * 131 + generation * 17 + replica * 7) % 65_000;
  return `10.42.${(n >> 8) & 255}.${(n & 255) === 0 ? 1 : n & 255}`;
}

function drawRoutes(random: Random, dst: Service, count: number): Route[] {
  const routes: Route[] = [];
  const nouns = random.shuffle(ROUTE_NOUNS).slice(0, count);
  for (let i = 0; i < count; i++) {
    const noun = nouns[i] as string;
    const shape = random.int(0, 3);
    const template = shape === 0 ? `/v1/${noun}` : shape === 1 ? `/v1/${noun}/{id}` : shape === 2 ? `/api/${dst.name.split('-')[0]}/${noun}/{id}` : `/${noun}.${dst.name.split('-')[0]}.v1/Get`;
    const isWrite = random.chance(0.25);
    routes.push({
      template,
      method: shape === 3 ? 'POST' : isWrite ? random.pick(['POST', 'PUT', 'PATCH']) : 'GET',
      bytesOut: Math.round(random.logNormal(shape === 0 ? 6_000 : 1_200, 0.8)),
      bytesIn: isWrite || shape === 3 ? Math.round(random.logNormal(600, 0.7)) : 0,
      weight: 1 / (i + 1) ** 1.1,
    });
  }
  return routes;
}

/** Builds a mesh of `serviceCount` services (8–32) whose edges share `peakRps` at the daily peak. */
export function createTopology(random: Random, serviceCount: number, peakRps: number): Topology {
  const count = Math.max(8, Math.min(CATALOGUE.length, serviceCount));
  const fronts = CATALOGUE.filter((c) => c[2] === 'front');
  const chosenFronts = random.shuffle(fronts).slice(0, random.int(1, 2));
  // Always a sensitive target and the shared hubs; the rest drawn.
  const must = CATALOGUE.filter((c) => c[0] === 'token-issuer' || c[0] === 'payment-gateway' || c[0] === 'ledger-writer' || c[0] === (random.chance(0.5) ? 'secrets-broker' : 'audit-sink'));
  const rest = random.shuffle(CATALOGUE.filter((c) => c[2] !== 'front' && !must.includes(c)));
  const picked = [...chosenFronts, ...must, ...rest].slice(0, count);

  const styles = new Map<string, Namespace>();
  for (const [, ns] of picked) {
    if (styles.has(ns)) continue;
    styles.set(ns, {
      name: ns,
      style: random.chance(0.55) ? 'istio-keys' : 'envoy-operators',
      logsOutbound: random.chance(0.4),
      logsProbes: random.chance(0.15),
      node: `ip-10-0-${random.int(1, 9)}-${random.int(10, 250)}.ec2.internal`,
    });
  }

  // Cron jobs' namespace, and the namespace of ad-hoc pods without a sidecar.
  styles.set('batch', { name: 'batch', style: 'envoy-operators', logsOutbound: random.chance(0.5), logsProbes: false, node: 'ip-10-0-7-77.ec2.internal' });
  styles.set('default', { name: 'default', style: 'istio-keys', logsOutbound: false, logsProbes: false, node: 'ip-10-0-3-33.ec2.internal' });

  // Depth: fronts 0; hubs and data deeper; domain in between, with noise.
  const services: Service[] = picked.map(([name, namespace, role]) => {
    const depth = role === 'front' ? 0 : role === 'domain' ? random.int(1, 2) : role === 'hub' ? 3 : random.int(2, 3);
    const sa = random.chance(0.25) ? `${name}-sa` : name;
    return {
      name,
      namespace,
      serviceAccount: sa,
      identity: spiffe(namespace, sa),
      port: random.pick([8080, 8080, 8080, 9090, 50051, 3000, 8443]),
      depth,
      replicas: random.int(1, role === 'front' || role === 'hub' ? 5 : 3),
      latencyMs: Math.round(random.logNormal(role === 'data' ? 6 : 25, 0.6)),
      errorShare: Math.min(0.02, random.logNormal(0.0015, 0.9)),
    };
  });

  // Call graph by preferential attachment: each caller picks dependencies among deeper services,
  // weighted by how many callers they already have (hubs attract), never the same pair twice.
  const inDegree = new Map<Service, number>();
  const pairs: Array<[Service | 'gateway', Service]> = [];
  for (const front of services.filter((s) => s.depth === 0)) pairs.push(['gateway', front]);
  const ordered = [...services].sort((a, b) => a.depth - b.depth);
  for (const caller of ordered) {
    const deeper = services.filter((s) => s.depth > caller.depth);
    if (deeper.length === 0) continue;
    const fanOut = caller.depth === 0 ? random.int(3, 6) : Math.min(deeper.length, 1 + Math.floor(-Math.log(1 - random.next()) * 1.8));
    const chosen = new Set<Service>();
    for (let k = 0; k < fanOut * 4 && chosen.size < Math.min(fanOut, deeper.length); k++) {
      const weights = deeper.map((s) => (chosen.has(s) ? 0 : (1 + (inDegree.get(s) ?? 0)) ** 1.3 * (CATALOGUE.find((c) => c[0] === s.name)?.[2] === 'hub' ? 3 : 1)));
      const total = weights.reduce((a, b) => a + b, 0);
      let r = random.next() * total;
      let idx = 0;
      while (idx < weights.length - 1 && r >= (weights[idx] as number)) r -= weights[idx++] as number;
      const dst = deeper[idx] as Service;
      if (chosen.has(dst)) continue;
      chosen.add(dst);
      inDegree.set(dst, (inDegree.get(dst) ?? 0) + 1);
      pairs.push([caller, dst]);
    }
  }
  // Every non-front service has at least one caller.
  for (const s of services) {
    if (s.depth === 0 || inDegree.has(s)) continue;
    const callers = services.filter((c) => c.depth < s.depth);
    pairs.push([random.pick(callers), s]);
    inDegree.set(s, 1);
  }

  // Zipf over edges (random rank), log-normal jitter, scaled to the peak budget.
  const zipfExponent = random.range(0.8, 1.3);
  const ranks = random.shuffle(pairs.map((_, i) => i));
  const raw = pairs.map((_, i) => (1 / ((ranks[i] as number) + 1) ** zipfExponent) * random.logNormal(1, 0.4));
  const rawTotal = raw.reduce((a, b) => a + b, 0);
  const edges: Edge[] = pairs.map(([src, dst], i) => ({
    src,
    dst,
    peakRps: Math.max(0.002, ((raw[i] as number) / rawTotal) * peakRps * 0.8),
    routes: drawRoutes(random, dst, random.int(1, 5)),
    timeoutMs: random.pick([1_000, 3_000, 5_000, 15_000]),
  }));

  const egressCandidates = services.filter((s) => ['payment-gateway', 'fx-rates', 'mailer', 'kyc-check', 'geo-lookup', 'label-printer'].includes(s.name));
  const egress: EgressHost[] = random.shuffle(egressCandidates).slice(0, 2).map((caller) => ({
    host: caller.name === 'payment-gateway' ? 'api.acquirer.example.net' : caller.name === 'mailer' ? 'smtp-relay.mailhost.example.com' : `api.${caller.name.split('-')[0]}-provider.example.org`,
    caller,
    peakRps: peakRps * random.range(0.01, 0.04),
  }));

  const guardedPool = services.filter((s) => s.namespace === 'payments' || s.name === 'user-directory' || s.name === 'kyc-check' || s.name === 'secrets-broker');
  const opaGuarded = new Set(random.shuffle(guardedPool).slice(0, random.int(1, Math.min(3, guardedPool.length))).map((s) => s.name));
  const userApp = services.find((s) => s.depth === 0) as Service;
  const users: User[] = [];
  const userCount = random.int(25, 70);
  const userNames = new Set<string>();
  for (let i = 0; users.length < userCount && i < userCount * 5; i++) {
    const email = `${random.pick(GIVEN)}.${random.pick(FAMILY)}@acme-corp.example`;
    if (userNames.has(email)) continue;
    userNames.add(email);
    users.push({ email, weight: 1 / (users.length + 1) ** 0.9, routes: random.shuffle(['/orders/{id}', '/orders', '/account', '/account/addresses', '/wishlist', '/returns/{id}', '/reports/monthly', '/team/members']).slice(0, random.int(2, 5)) });
  }

  const cronTargets = (n: number) => random.shuffle(services.filter((s) => s.depth > 0)).slice(0, Math.min(n, services.length - 1));
  const crons: CronJob[] = [
    { name: 'reconciler', namespace: 'batch', identity: spiffe('batch', 'reconciler'), periodMs: 3_600_000, offsetMs: random.int(0, 59) * 60_000 + random.int(0, 30) * 1000, targets: cronTargets(random.int(6, 12)) },
  ];
  if (random.chance(0.6)) crons.push({ name: 'report-builder', namespace: 'batch', identity: spiffe('batch', 'report-builder'), periodMs: 2 * 3_600_000, offsetMs: random.int(0, 119) * 60_000, targets: cronTargets(random.int(4, 8)) });

  return {
    services,
    namespaces: styles,
    edges,
    egress,
    gateway: { identity: spiffe('istio-system', 'istio-ingressgateway-service-account'), ip: '10.42.250.10', namespace: 'istio-system' },
    opaGuarded,
    userApp,
    users,
    userPeakRps: peakRps * random.range(0.05, 0.12),
    crons,
    zipfExponent,
  };
}
