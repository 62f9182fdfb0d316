// Authentication and least privilege. Callers present `Authorization: Bearer <token>`; tokens are
// configured as SHA-256 hex with a role, and compared in constant time against every entry. Ingest
// routes also accept a client certificate whose SPIFFE ID (URI SAN) is on the allowlist.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { ApiRole, FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';

/** Who made a request, and with which role. */
export interface Principal {
  /** Token name from config, or the client certificate's SPIFFE ID. */
  readonly name: string;
  readonly role: ApiRole;
  readonly via: 'token' | 'mtls';
}

/** What each kind of route allows (admin is everywhere). */
export const ROUTE_ROLES = {
  ingest: ['ingest', 'admin'],
  anomalies: ['analyst', 'admin'],
  graph: ['analyst', 'admin'],
  access: ['analyst', 'auditor', 'admin'],
  accessRaw: ['auditor', 'admin'],
  export: ['auditor', 'admin'],
  verify: ['auditor', 'admin'],
  audit: ['admin'],
  metrics: ['ingest', 'analyst', 'auditor', 'admin'],
  /** Who am I: any valid token (the console reads its role to show the pages it may use). */
  session: ['ingest', 'analyst', 'auditor', 'admin'],
} as const satisfies Record<string, readonly ApiRole[]>;
export type RouteKind = keyof typeof ROUTE_ROLES;

/** Longest bearer token read, in characters; longer headers are refused unread. */
const MAX_TOKEN_CHARS = 512;

/** SHA-256 hex of a token, as stored in `auth.tokens[].sha256`. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface Authenticator {
  /** The caller, or undefined when no valid credential was presented. */
  authenticate(request: FastifyRequest): Principal | undefined;
  /** The caller allowed on a `kind` route; throws 401 / 403 otherwise. `caller` is authenticate()'s answer. */
  authorize(request: FastifyRequest, caller: Principal | undefined, kind: RouteKind): Principal;
}

interface TokenEntry {
  readonly name: string;
  readonly role: ApiRole;
  readonly digest: Buffer;
}

/** SPIFFE IDs (URI SANs) of a verified client certificate on `request`, if any. */
export function readClientSpiffeIds(request: FastifyRequest): string[] {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return [];
  const cert = socket.getPeerCertificate();
  const san = typeof cert?.subjectaltname === 'string' ? cert.subjectaltname : '';
  return san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice(4));
}

/** True when `id` is on the allowlist (an entry ending in `*` matches by prefix). */
export function isSpiffeAllowed(id: string, allowlist: readonly string[]): boolean {
  return allowlist.some((entry) => (entry.endsWith('*') ? id.startsWith(entry.slice(0, -1)) : id === entry));
}

/** Builds the authenticator from config plus process-local plaintext tokens. */
export function createAuthenticator(
  config: FrozenConfig,
  extraTokens: ReadonlyArray<{ name: string; role: ApiRole; token: string }> = [],
): Authenticator {
  const entries: TokenEntry[] = [
    ...config.auth.tokens.map((t) => ({ name: t.name, role: t.role, digest: Buffer.from(t.sha256, 'hex') })),
    ...extraTokens.map((t) => ({ name: t.name, role: t.role, digest: Buffer.from(hashToken(t.token), 'hex') })),
  ];
  const allowlist = config.auth.ingestSpiffeAllowlist;

  const fromToken = (request: FastifyRequest): Principal | undefined => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || header.length > MAX_TOKEN_CHARS + 7) return undefined;
    const match = /^Bearer +(\S+)\s*$/i.exec(header);
    if (!match?.[1]) return undefined;
    const digest = createHash('sha256').update(match[1], 'utf8').digest();
    let found: TokenEntry | undefined;
    // Every entry is compared, so timing says nothing about which one matched or how close.
    for (const entry of entries) {
      if (timingSafeEqual(entry.digest, digest) && !found) found = entry;
    }
    return found ? { name: found.name, role: found.role, via: 'token' } : undefined;
  };

  const fromCertificate = (request: FastifyRequest): Principal | undefined => {
    if (allowlist.length === 0) return undefined;
    const id = readClientSpiffeIds(request).find((candidate) => isSpiffeAllowed(candidate, allowlist));
    return id ? { name: id, role: 'ingest', via: 'mtls' } : undefined;
  };

  const authenticate = (request: FastifyRequest): Principal | undefined => fromToken(request) ?? fromCertificate(request);

  return {
    authenticate,
    authorize(request, caller, kind) {
      const allowed: readonly ApiRole[] = ROUTE_ROLES[kind];
      if (kind === 'ingest' && config.auth.ingestRequireMtls) {
        const cert = fromCertificate(request);
        if (!cert) throw createError('API_UNAUTHENTICATED', 'an allowlisted client certificate is required for ingest');
        return caller && caller.via === 'token' && allowed.includes(caller.role) ? caller : cert;
      }
      // A certificate stands for the ingest role on ingest routes only.
      const principal = caller?.via === 'mtls' && kind !== 'ingest' ? undefined : caller;
      if (!principal) throw createError('API_UNAUTHENTICATED', 'send Authorization: Bearer <token>');
      if (!allowed.includes(principal.role)) throw createError('API_FORBIDDEN', `role ${principal.role} may not use this route`);
      return principal;
    },
  };
}
