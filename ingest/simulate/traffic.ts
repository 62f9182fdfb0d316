// Normal mesh traffic as both generators draw it (scenario.ts, scripted; randomized.ts, drawn from
// the seed): one mesh request with what the scheduled effects do to it, the users asking OPA, a
// batch job's run, the sporadic TLS failure and policy drop, and a window's lines out of one-second
// slots. Each generator keeps its own rates and effects; the draws from `random` happen in the same
// order whoever calls, so a seed gives the same lines.
import type { SimEdge, SimMesh, SimWorkload } from './mesh.ts';
import type { Random } from './prng.ts';
import { makeRequest, rbacDetails, tlsDetails } from './requests.ts';
import type { GeneratedLine } from './scenario.ts';
import { renderEnvoyLine, renderHubbleFlow, renderIstioText, renderOpaExtAuthz, renderOpaUserDecision } from './wire.ts';

/** What the scheduled effects (attacks, benign events) do to one mesh request. */
export interface RequestEffects {
  /**
   * The client's sidecar fails the TLS handshake (an expired certificate on either end): Envoy's
   * reason and code, or undefined. May draw from `random`.
   */
  tlsFailure(random: Random, src: SimWorkload, dst: SimWorkload): { reason: string; code: number } | undefined;
  /** The server is restarting: connections refused or no healthy upstream. */
  restarting(dst: SimWorkload): boolean;
  /**
   * The request is denied by an Istio AuthorizationPolicy: the policy's name, and whether OPA still
   * logs its (allowing) decision for a guarded service. Undefined when no policy denies it.
   */
  denial(edge: SimEdge): { policy: string; opaLogged: boolean } | undefined;
  /** Response bytes multiplied on this edge (exfiltration), or undefined. */
  bytesFactor(edge: SimEdge): number | undefined;
}

/**
 * One request on `edge` at `timeMs`: through the ingress gateway (Istio's text log, then the
 * sidecar's), failed by the client's sidecar (TLS, restarts), or answered by the server's sidecar
 * with its background denials, ext_authz denials, resets and 404s, the OPA decision of a guarded
 * service and, for a `hubbleShare` of requests, Hubble's flow.
 */
export function emitMeshRequest(random: Random, mesh: SimMesh, edge: SimEdge, timeMs: number, out: GeneratedLine[], effects: RequestEffects, hubbleShare: number): void {
  const { src, dst } = edge;
  const path = random.pick(edge.paths).replace('{id}', String(random.int(1, 99_999)));
  const method = random.chance(0.8) ? 'GET' : 'POST';
  const bytesIn = method === 'GET' ? 0 : Math.round(random.logNormal(edge.medianBytesIn, 0.6));
  if (src === mesh.gateway) {
    // The gateway logs in Istio's default text format; the frontend's sidecar logs the same request inbound.
    const client = random.pick(mesh.clientIps);
    const ok = makeRequest(random, { timeMs, direction: 'outbound', srcIdentity: '', srcIp: client, dst, method, path, status: 200, flags: '', details: 'via_upstream', upstreamFailure: '', bytesIn, bytesOut: Math.round(random.logNormal(edge.medianBytesOut, 0.6)), mtls: true });
    out.push({ format: 'envoy', line: renderIstioText(ok, mesh.gateway.ip), timeMs });
    out.push({ format: 'envoy', line: renderEnvoyLine({ ...ok, direction: 'inbound', srcIdentity: mesh.gateway.identity, srcIp: mesh.gateway.ip, timeMs: timeMs + 1 }, dst.flavor), timeMs: timeMs + 1 });
    return;
  }
  const base = { timeMs, srcIdentity: src.identity, srcIp: src.ip, dst, method, path, bytesIn, mtls: true };
  // Failures the client's sidecar sees: a failed TLS handshake, or a restarting server.
  const tls = effects.tlsFailure(random, src, dst);
  if (tls) {
    const req = makeRequest(random, { ...base, direction: 'outbound', status: 503, flags: 'UF,URX', ...tlsDetails(tls.reason, tls.code), bytesIn: 0, bytesOut: 159, durationMs: random.int(1, 4) });
    out.push({ format: 'envoy', line: renderEnvoyLine(req, src.flavor), timeMs });
    return;
  }
  if (effects.restarting(dst)) {
    const refused = random.chance(0.7);
    const req = makeRequest(random, { ...base, direction: 'outbound', status: 503, flags: refused ? 'UF,URX' : 'UH', details: refused ? 'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}' : 'no_healthy_upstream', upstreamFailure: refused ? 'delayed_connect_error:_111' : '', bytesIn: 0, bytesOut: refused ? 91 : 19, durationMs: random.int(0, 30) });
    out.push({ format: 'envoy', line: renderEnvoyLine(req, src.flavor), timeMs });
    return;
  }
  const guarded = mesh.opaGuarded.has(dst.name);
  let status = 200;
  let flags = '';
  let details = 'via_upstream';
  let bytesOut = Math.round(random.logNormal(edge.medianBytesOut, 0.6));
  let opaAllowed = true;
  const denial = effects.denial(edge);
  if (denial) {
    status = 403;
    details = rbacDetails(dst, denial.policy);
    bytesOut = 19;
  } else if (guarded && random.chance(0.01)) {
    status = 403;
    flags = 'UAEX';
    details = 'ext_authz_denied';
    bytesOut = 0;
    opaAllowed = false;
  } else if (random.chance(edge.denyRatio)) {
    status = 403;
    details = rbacDetails(dst, 'deny-legacy-clients');
    bytesOut = 19;
  } else if (random.chance(0.003)) {
    status = 503;
    flags = 'UC';
    details = 'upstream_reset_before_response_started{connection_termination}';
    bytesOut = 95;
  } else if (random.chance(0.01)) {
    status = 404;
    bytesOut = 60;
  } else {
    const factor = effects.bytesFactor(edge);
    if (factor !== undefined) bytesOut = Math.round(bytesOut * factor);
  }
  const req = makeRequest(random, { ...base, direction: 'inbound', status, flags, details, upstreamFailure: '', bytesOut });
  out.push({ format: 'envoy', line: renderEnvoyLine(req, dst.flavor), timeMs });
  if (guarded && status !== 503 && (denial === undefined || denial.opaLogged)) {
    out.push({ format: 'opa', line: renderOpaExtAuthz({ timeMs: Math.max(0, timeMs - 1), decisionId: random.uuid(), srcIdentity: src.identity, srcIp: src.ip, srcPort: req.srcPort, dst, method, path, requestId: req.requestId, allowed: opaAllowed }), timeMs: Math.max(0, timeMs - 1) });
  }
  if (random.chance(hubbleShare)) {
    out.push({ format: 'hubble', line: renderHubbleFlow({ timeMs: Math.max(0, timeMs - 2), src, dst, dstPort: dst.port, srcPort: req.srcPort, dropped: false, node: 'worker-1' }), timeMs: Math.max(0, timeMs - 2) });
  }
}

/** Users asking the app (which asks OPA) in one second; a denied user sometimes retries the same request. */
export function emitUserDecisions(random: Random, mesh: SimMesh, slotMs: number, shape: number, out: GeneratedLine[]): void {
  for (let n = random.poisson(mesh.userPeakRps * shape); n > 0; n--) {
    const user = random.pick(mesh.users);
    const timeMs = Math.floor(slotMs + random.next() * 1000);
    const allowed = !random.chance(0.02);
    const path = random.pick(user.paths).replace('{id}', String(random.int(1, 99_999)));
    const method = random.pick(['GET', 'GET', 'POST']);
    const repeats = !allowed && random.chance(0.3) ? random.int(2, 5) : 1;
    for (let k = 0; k < repeats; k++) {
      out.push({ format: 'opa', line: renderOpaUserDecision({ timeMs: timeMs + k * 300, decisionId: random.uuid(), user: user.email, method, path, allowed, app: mesh.userApp.name }), timeMs: timeMs + k * 300 });
    }
  }
}

/**
 * A periodic batch job in one second: while a run lasts (`sinceStartMs` after the job's first
 * run), each of its targets gets an export request at `rate` per second.
 */
export function emitBatchJob(random: Random, job: SimMesh['batchJob'], sinceStartMs: number, rate: number, slotMs: number, out: GeneratedLine[]): void {
  if (sinceStartMs < 0 || sinceStartMs % job.periodMs >= job.runMs) return;
  for (const target of job.targets) {
    for (let n = random.poisson(rate); n > 0; n--) {
      const timeMs = Math.floor(slotMs + random.next() * 1000);
      const req = makeRequest(random, { timeMs, direction: 'inbound', srcIdentity: job.workload.identity, srcIp: job.workload.ip, dst: target, method: 'GET', path: `/api/v1/${target.name}/export`, status: 200, flags: '', details: 'via_upstream', upstreamFailure: '', bytesIn: 120, bytesOut: Math.round(random.logNormal(8000, 0.5)), mtls: true });
      out.push({ format: 'envoy', line: renderEnvoyLine(req, target.flavor), timeMs });
    }
  }
}

/** With probability `chance` in one second: a sporadic TLS failure on one of `edges`. */
export function emitStrayTlsFailure(random: Random, chance: number, edges: readonly SimEdge[], slotMs: number, out: GeneratedLine[]): void {
  if (!random.chance(chance)) return;
  const edge = random.pick(edges);
  const timeMs = Math.floor(slotMs + random.next() * 1000);
  const req = makeRequest(random, { timeMs, direction: 'outbound', srcIdentity: edge.src.identity, srcIp: edge.src.ip, dst: edge.dst, method: 'GET', path: random.pick(edge.paths), status: 503, flags: 'UF,URX', ...tlsDetails('CERTIFICATE_VERIFY_FAILED', 268435581), bytesIn: 0, bytesOut: 91, mtls: true, durationMs: 3 });
  out.push({ format: 'envoy', line: renderEnvoyLine(req, edge.src.flavor), timeMs });
}

/**
 * With probability `chance` in one second: a stray policy drop, a workload of one of `edges`
 * knocking on a port of the service it calls that policy does not open.
 */
export function emitStrayDrop(random: Random, chance: number, edges: readonly SimEdge[], slotMs: number, out: GeneratedLine[]): void {
  if (!random.chance(chance)) return;
  const edge = random.pick(edges);
  const timeMs = Math.floor(slotMs + random.next() * 1000);
  out.push({ format: 'hubble', line: renderHubbleFlow({ timeMs, src: edge.src, dst: edge.dst, dstPort: random.pick([15090, 9090, 8081]), srcPort: random.int(32768, 60999), dropped: true, node: 'worker-1' }), timeMs });
}

/**
 * The lines with event time in [fromMs, toMs), in event-time order: each one-second slot's
 * (`generateSecond` draws a slot's lines from its own stream, so any chunking gives the same
 * trace) and the precomputed `extras` (sorted by time) in range.
 */
export function linesBetween(fromMs: number, toMs: number, generateSecond: (second: number, out: GeneratedLine[]) => void, extras: readonly GeneratedLine[]): GeneratedLine[] {
  const out: GeneratedLine[] = [];
  for (let second = Math.floor(fromMs / 1000); second * 1000 < toMs; second++) {
    const slot: GeneratedLine[] = [];
    generateSecond(second, slot);
    for (const line of slot) if (line.timeMs >= fromMs && line.timeMs < toMs) out.push(line);
  }
  // The first extra in range by binary search.
  let lo = 0;
  let hi = extras.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((extras[mid] as GeneratedLine).timeMs < fromMs) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < extras.length && (extras[i] as GeneratedLine).timeMs < toMs; i++) out.push(extras[i] as GeneratedLine);
  return out.sort((a, b) => a.timeMs - b.timeMs);
}
