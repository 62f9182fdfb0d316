// What happens to one request in the independent generator's mesh, and the lines the sidecars,
// OPA and Hubble write about it. A request meets, in the order the data path meets them: the mTLS
// handshake (expired or freshly rotated certificates, a restarting pod refusing connections), the
// destination's RBAC policy, its OPA ext_authz check, the application (transient 5xx the client's
// sidecar retries with Istio's default policy — two retries, 25 ms base back-off —, slow answers
// the client gives up on, 404s), and finally its response size.
import type { Random } from '../prng.ts';
import type { GeneratedLine } from '../scenario.ts';
import { renderGatewayText, renderHandshakeFailure, renderHubbleFlow, renderInbound, renderOpaEnvoyDecision, renderOutbound, tlsErrorText, type Exchange, type FlowEndpoint, type Peer } from './render.ts';
import type { Edge, Namespace, Route, Service, Topology } from './topology.ts';

/** Conditions episodes put on requests while they last (see episodes.ts). */
export interface Conditions {
  /** Services whose certificate has expired, and on which side it shows. */
  readonly expired: ReadonlyMap<Service, 'server' | 'client'>;
  /** Services whose certificate is being rotated: a few handshakes fail. */
  readonly rotating: ReadonlySet<Service>;
  /** Services in a rolling restart: a share of connections is refused. */
  readonly restarting: ReadonlySet<Service>;
  /** RBAC denials: a destination denying every caller (except `allow`). */
  readonly brokenPolicy: ReadonlyMap<Service, { readonly policy: string; readonly allow: Service | undefined }>;
  /** RBAC denials of one caller at one destination (intended or misconfigured). */
  readonly deniedPairs: ReadonlyArray<{ readonly src: Service; readonly dst: Service; readonly policy: string }>;
  /** Extra share of 5xx at a destination (a canary's new pods). */
  readonly errorBump: ReadonlyMap<Service, number>;
  /** Response-size multiplier per edge (exfiltration). */
  readonly bytesFactor: ReadonlyMap<Edge, number>;
  /** Callers whose sidecar is gone: their requests arrive in plaintext from this IP. */
  readonly plaintextFrom: ReadonlyMap<Service, string>;
}

export const NO_CONDITIONS: Conditions = { expired: new Map(), rotating: new Set(), restarting: new Set(), brokenPolicy: new Map(), deniedPairs: [], errorBump: new Map(), bytesFactor: new Map(), plaintextFrom: new Map() };

/** Where a workload runs at one moment: the caller's pod IPs, the servers' pod IPs. */
export interface Placement {
  podIpOf(service: Service, random: Random): string;
  clusterIpOf(service: Service): string;
  /** Share of requests to this destination that are denied by ext_authz in normal operation, per caller. */
  extAuthzDenyShare(src: Service | 'gateway', dst: Service): number;
}

/** Writes the lines of a request. */
export interface TrafficContext {
  readonly topology: Topology;
  readonly placement: Placement;
  readonly conditions: Conditions;
  readonly out: GeneratedLine[];
}

const USER_AGENTS = ['Go-http-client/1.1', 'grpc-java-netty/1.62.2', 'okhttp/4.12.0', 'python-requests/2.31.0', 'axios/1.6.8', 'Envoy/HC'];
const BROWSERS = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148', 'Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)'];

function ns(topology: Topology, service: Service): Namespace {
  return topology.namespaces.get(service.namespace) as Namespace;
}

/** The peer record of a service's pod. */
export function peerOf(service: Service, ip: string): Peer {
  return { name: service.name, namespace: service.namespace, identity: service.identity, ip, port: service.port };
}

/** A Hubble endpoint for a workload pod. */
export function flowEndpointOf(service: Service, ip: string, app = service.name): FlowEndpoint {
  return { ip, namespace: service.namespace, app, serviceAccount: service.serviceAccount, pod: `${app}-${(service.name.length * 7919).toString(36).slice(0, 5)}f-${ip.split('.').slice(2).join('x')}`, identity: 20_000 + (service.identity.length * 97 + service.name.charCodeAt(0) * 13) % 40_000 };
}

export function pickRoute(random: Random, routes: readonly Route[]): Route {
  const total = routes.reduce((a, r) => a + r.weight, 0);
  let r = random.next() * total;
  for (const route of routes) {
    if (r < route.weight) return route;
    r -= route.weight;
  }
  return routes[routes.length - 1] as Route;
}

export function fillPath(random: Random, template: string): string {
  return template.replace('{id}', () => (random.chance(0.6) ? String(random.int(1, 2_000_000)) : random.hex(12)));
}

export function authorityFor(src: Service | 'gateway', dst: Service): string {
  return src !== 'gateway' && src.namespace === dst.namespace ? `${dst.name}:${dst.port}` : `${dst.name}.${dst.namespace}.svc.cluster.local:${dst.port}`;
}

/** The base exchange of one request on an edge, before the data path decides its fate. */
export function draftExchange(random: Random, ctx: TrafficContext, edge: Edge, timeMs: number, overrides: Partial<Exchange> = {}): Exchange {
  const { src, dst } = edge;
  const route = pickRoute(random, edge.routes);
  const srcIp = src === 'gateway' ? ctx.topology.gateway.ip : ctx.placement.podIpOf(src, random);
  return {
    timeMs,
    srcIdentity: src === 'gateway' ? ctx.topology.gateway.identity : src.identity,
    srcIp,
    srcPort: random.int(32_768, 60_999),
    dst: peerOf(dst, ctx.placement.podIpOf(dst, random)),
    method: route.method,
    path: fillPath(random, route.template),
    protocol: route.template.includes('.v1/') ? 'HTTP/2' : random.chance(0.7) ? 'HTTP/1.1' : 'HTTP/2',
    authority: authorityFor(src, dst),
    status: 200,
    flags: '',
    details: 'via_upstream',
    termDetails: '',
    upstreamFailure: '',
    bytesIn: route.bytesIn === 0 ? 0 : Math.round(random.logNormal(route.bytesIn, 0.5)),
    bytesOut: Math.max(2, Math.round(random.logNormal(route.bytesOut, 0.6) * (random.chance(0.01) ? random.range(4, 12) : 1))),
    durationMs: Math.max(0, Math.round(random.logNormal(dst.latencyMs, 0.7))),
    requestId: random.uuid(),
    traceId: random.hex(32),
    mtls: true,
    userAgent: src === 'gateway' ? random.pick(BROWSERS) : USER_AGENTS[(src.name.length + dst.name.length) % 5] as string,
    ...overrides,
  };
}

function emit(ctx: TrafficContext, format: string, line: string, timeMs: number): void {
  ctx.out.push({ format, line, timeMs });
}

/** Writes the server sidecar's line, and the client sidecar's (or the gateway's) when that side logs. */
function writeBothSides(ctx: TrafficContext, edge: Edge, x: Exchange, client: Exchange = x): void {
  const { topology } = ctx;
  if (edge.src === 'gateway') {
    emit(ctx, 'envoy', renderGatewayText({ ...client, srcIdentity: '', srcIp: `${203 - (x.srcPort % 3)}.0.113.${(x.srcPort % 250) + 2}` }, topology.gateway.ip, `${edge.dst.name.split('-')[0]}.acme-corp.example`), client.timeMs);
  } else if (ns(topology, edge.src).logsOutbound) {
    emit(ctx, 'envoy', renderOutbound({ ...client, durationMs: client.durationMs + 1 }, ns(topology, edge.src).style, ctx.placement.clusterIpOf(edge.dst)), client.timeMs);
  }
  emit(ctx, 'envoy', renderInbound(x, ns(topology, edge.dst).style), x.timeMs + 1);
}

/**
 * Plays one request on `edge` through the data path and writes every line about it. `exchange`
 * overrides the drafted request (attacks set paths, identities, sizes).
 */
export function playRequest(random: Random, ctx: TrafficContext, edge: Edge, timeMs: number, exchange: Partial<Exchange> = {}, options: { forceDeny?: string; forceOpaDeny?: boolean } = {}): void {
  const { topology, conditions } = ctx;
  const { src, dst } = edge;
  let x = draftExchange(random, ctx, edge, timeMs, exchange);
  const srcService = src === 'gateway' ? undefined : src;
  const plaintextIp = srcService ? conditions.plaintextFrom.get(srcService) : undefined;
  if (plaintextIp !== undefined) x = { ...x, srcIp: plaintextIp, srcIdentity: '', mtls: false };

  // A new TCP connection now and then: Hubble sees its SYN.
  if (srcService && random.chance(0.05)) {
    emit(ctx, 'hubble', renderHubbleFlow({ timeMs: Math.max(0, timeMs - 1), src: flowEndpointOf(srcService, x.srcIp), dst: flowEndpointOf(dst, x.dst.ip), srcPort: x.srcPort, dstPort: dst.port, dropped: false, node: ns(topology, srcService).node, service: { name: dst.name, namespace: dst.namespace } }), Math.max(0, timeMs - 1));
  }

  // 1. The mTLS handshake.
  if (x.mtls && srcService) {
    const serverExpired = conditions.expired.get(dst) === 'server';
    const clientExpired = conditions.expired.get(srcService) === 'client';
    const rotating = (conditions.rotating.has(dst) || conditions.rotating.has(srcService)) && random.chance(0.4);
    if (serverExpired || clientExpired || rotating) {
      const clientReason = serverExpired ? 'CERTIFICATE_VERIFY_FAILED' : clientExpired ? 'SSLV3_ALERT_CERTIFICATE_EXPIRED' : 'SSLV3_ALERT_BAD_CERTIFICATE';
      const serverReason = serverExpired ? 'SSLV3_ALERT_CERTIFICATE_EXPIRED' : 'CERTIFICATE_VERIFY_FAILED';
      const attempts = random.int(1, 3);
      for (let a = 0; a < attempts; a++) {
        emit(ctx, 'envoy', renderHandshakeFailure({ timeMs: timeMs + a * 30, srcIp: x.srcIp, srcPort: x.srcPort + a, dst: x.dst, reason: serverReason }), timeMs + a * 30);
      }
      if (ns(topology, srcService).logsOutbound) {
        const failure = tlsErrorText(clientReason);
        const details = `upstream_reset_before_response_started{connection_failure,TLS_error:_${failure.split('|')[1]?.split(':')[0]}:SSL_routines:OPENSSL_internal:${clientReason}}`;
        emit(ctx, 'envoy', renderOutbound({ ...x, status: 503, flags: attempts > 1 ? 'UF,URX' : 'UF', details, upstreamFailure: failure, bytesIn: 0, bytesOut: 159, durationMs: 2 + attempts * 30 }, ns(topology, srcService).style, ctx.placement.clusterIpOf(dst)), timeMs);
      }
      return;
    }
  }
  // 2. A restarting pod refuses the connection; the retry to another pod usually lands.
  if (srcService && conditions.restarting.has(dst) && random.chance(0.25)) {
    if (random.chance(0.3) && ns(topology, srcService).logsOutbound) {
      emit(ctx, 'envoy', renderOutbound({ ...x, status: 503, flags: 'UF,URX', details: 'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_Connection_refused}', upstreamFailure: 'delayed_connect_error:_Connection_refused', bytesIn: 0, bytesOut: 145, durationMs: random.int(1, 60) }, ns(topology, srcService).style, ctx.placement.clusterIpOf(dst)), timeMs);
      return;
    }
    x = { ...x, durationMs: x.durationMs + random.int(25, 80) };
  }
  // 3. RBAC at the destination.
  const broken = conditions.brokenPolicy.get(dst);
  const pair = srcService ? conditions.deniedPairs.find((p) => p.src === srcService && p.dst === dst) : undefined;
  const rbacPolicy = options.forceDeny ?? (broken && broken.allow !== srcService && src !== 'gateway' ? broken.policy : pair?.policy);
  if (rbacPolicy !== undefined) {
    const denied = { ...x, status: 403, details: `rbac_access_denied_matched_policy[${rbacPolicy}]`, bytesOut: 19, durationMs: random.int(0, 2) };
    writeBothSides(ctx, edge, denied, { ...denied, details: 'via_upstream' });
    return;
  }
  // 4. OPA ext_authz.
  if (topology.opaGuarded.has(dst.name)) {
    const allowed = !(options.forceOpaDeny ?? random.chance(ctx.placement.extAuthzDenyShare(src, dst)));
    const instance = `opa-${dst.name}${dst.name.length % 3 === 0 ? '-x' : ''}`;
    emit(ctx, 'opa', renderOpaEnvoyDecision({ timeMs, decisionId: random.uuid(), exchange: x, allowed, console: dst.name.length % 2 === 0, instance, revision: `bundle-${dst.namespace}-r${(dst.name.length * 31) % 97}` }), timeMs);
    if (!allowed) {
      const denied = { ...x, status: 403, flags: 'UAEX', details: 'ext_authz_denied', bytesOut: 0, durationMs: random.int(1, 4) };
      writeBothSides(ctx, edge, denied, { ...denied, flags: '', details: 'via_upstream' });
      return;
    }
    x = { ...x, durationMs: x.durationMs + 1 };
  }
  // 5. The application.
  const srcEdgeFactor = conditions.bytesFactor.get(edge);
  if (srcEdgeFactor !== undefined) x = { ...x, bytesOut: Math.round(x.bytesOut * srcEdgeFactor), durationMs: x.durationMs + Math.round(x.bytesOut * srcEdgeFactor / 2e5) };
  const failShare = dst.errorShare + (conditions.errorBump.get(dst) ?? 0);
  if (random.chance(failShare)) {
    // Transient 5xx, retried by the client's sidecar; each attempt logged by the server.
    let t = timeMs;
    let attempt = 0;
    let ok = false;
    for (; attempt < 3; attempt++) {
      const fail = attempt === 0 || random.chance(0.3 + (conditions.errorBump.get(dst) ?? 0) * 4);
      const reset = random.chance(0.4);
      const line: Exchange = fail
        ? { ...x, timeMs: t, status: 503, flags: reset ? 'UC' : '', details: reset ? 'upstream_reset_before_response_started{connection_termination}' : 'via_upstream', bytesOut: reset ? 95 : random.int(40, 200), durationMs: random.int(1, 40) }
        : { ...x, timeMs: t };
      emit(ctx, 'envoy', renderInbound(line, ns(topology, dst).style), t + 1);
      if (!fail) {
        ok = true;
        break;
      }
      t += Math.round(25 * 2 ** attempt * random.range(0.5, 1.5)) + 5;
    }
    const final = ok ? { ...x, durationMs: x.durationMs + (t - timeMs) } : { ...x, status: 503, flags: 'URX', details: 'via_upstream', bytesOut: 95, durationMs: t - timeMs };
    if (src === 'gateway') emit(ctx, 'envoy', renderGatewayText({ ...final, srcIp: `198.51.100.${(x.srcPort % 250) + 2}` }, topology.gateway.ip, `${dst.name.split('-')[0]}.acme-corp.example`), timeMs);
    else if (ns(topology, src).logsOutbound) emit(ctx, 'envoy', renderOutbound(final, ns(topology, src).style, ctx.placement.clusterIpOf(dst)), timeMs);
    return;
  }
  if (x.durationMs > edge.timeoutMs || random.chance(0.0005)) {
    // The client gives up; the server sees its client go away.
    const timeout = Math.min(x.durationMs, edge.timeoutMs);
    const server = { ...x, status: 0, flags: 'DC', details: 'downstream_remote_disconnect', bytesOut: 0, durationMs: timeout };
    const client = { ...x, status: 504, flags: 'UT', details: 'response_timeout', bytesOut: 24, durationMs: timeout };
    writeBothSides(ctx, edge, server, client);
    return;
  }
  const roll = random.next();
  if (roll < 0.008) x = { ...x, status: 404, bytesOut: random.int(20, 180) };
  else if (roll < 0.011) x = { ...x, status: 400, bytesOut: random.int(40, 300) };
  else if (x.method === 'POST' && roll < 0.3) x = { ...x, status: 201 };
  else if (x.method === 'PATCH' || x.method === 'PUT') x = { ...x, status: roll < 0.5 ? 204 : 200, bytesOut: roll < 0.5 ? 0 : x.bytesOut };
  writeBothSides(ctx, edge, x);
}
