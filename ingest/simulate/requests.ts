// What every generated request shares, whichever scenario draws it: the fields a proxy fills in
// itself (request id, client port, user agent, duration), Istio's RBAC denial text and Envoy's TLS failure text.
import type { SimWorkload } from './mesh.ts';
import type { Random } from './prng.ts';
import type { WireRequest } from './wire.ts';

const USER_AGENTS = ['envoy', 'grpc-go/1.64.0', 'Go-http-client/1.1', 'okhttp/4.12.0', 'python-requests/2.32.3'];

/** Completes a request with the fields the proxy draws: id, client port, user agent and (unless given) duration. */
export function makeRequest(random: Random, base: Omit<WireRequest, 'requestId' | 'srcPort' | 'userAgent' | 'durationMs'> & { durationMs?: number }): WireRequest {
  return {
    ...base,
    durationMs: base.durationMs ?? Math.max(1, Math.round(random.logNormal(12, 0.7))),
    requestId: random.uuid(),
    srcPort: random.int(32768, 60999),
    userAgent: random.pick(USER_AGENTS),
  };
}

/** Envoy's response-code details for a denial by an Istio AuthorizationPolicy. */
export function rbacDetails(dst: SimWorkload, policy: string): string {
  return `rbac_access_denied_matched_policy[ns[${dst.namespace}]-policy[${policy}]-rule[0]]`;
}

/** Envoy's response-code details and upstream transport failure for a failed TLS handshake. */
export function tlsDetails(reason: string, code: number): { details: string; upstreamFailure: string } {
  return {
    details: `upstream_reset_before_response_started{connection_failure,TLS_error:_${code}:SSL_routines:OPENSSL_internal:${reason}}`,
    upstreamFailure: `TLS_error:|${code}:SSL_routines:OPENSSL_internal:${reason}:TLS_error_end`,
  };
}
