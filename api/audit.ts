// The audit trail of the API itself: every access-history query, export, chain verification and
// audit-log read becomes one `audit_log` row (actor, role, action, filters, rows, status, remote
// address). Successful queries are written before the answer leaves (fail closed: no audit row, no
// data); refusals (401/403/4xx) and the end of an export are written when the response closes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createError } from '../core/errors.ts';
import { insertAuditRecord, queryAuditLog } from '../store/audit-queries.ts';
import type { Store } from '../store/client.ts';
import type { Principal, RouteKind } from './auth.ts';
import { decodeCursor, encodeCursor, fingerprintQuery } from './cursor.ts';
import { AuditPageSchema, AuditQuerySchema, withErrors, type AuditQuery } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Per-request audit state, set for routes whose config names an audit action. */
export interface AuditState {
  readonly action: string;
  /** Rows handed out so far (an export counts as it streams). */
  rows: number;
  written: boolean;
  /** Status to record when the response broke off because of a fault of ours (mid-export). */
  failedStatus?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    audit: AuditState | undefined;
    receivedAtMs: number;
  }
  interface FastifyContextConfig {
    /** Which roles may call the route (see api/auth.ts ROUTE_ROLES); absent = open. */
    auth?: RouteKind;
    /** Audit action written for every call of the route. */
    audit?: string;
    /** The route reads its body raw (ingest): documented in OpenAPI, never validated as JSON. */
    rawBody?: boolean;
  }
}

/** HTTP status recorded for an export the client abandoned mid-stream (nginx's convention). */
export const CLIENT_CLOSED_STATUS = 499;

/** Writes the request's audit row now (once); throws when the store refuses it. */
export async function writeAudit(store: Store, request: FastifyRequest, status: number, action?: string): Promise<void> {
  const audit = request.audit;
  if (!audit) return;
  if (action === undefined) audit.written = true;
  await insertAuditRecord(store, {
    timeMs: Date.now(),
    actor: request.principal?.name ?? 'anonymous',
    role: request.principal?.role ?? '',
    action: action ?? audit.action,
    filters: (request.query ?? {}) as Record<string, unknown>,
    rows: audit.rows,
    status,
    remoteAddr: request.ip,
  });
}

/**
 * Starts auditing `request` under `action`: whatever happens next (a refusal, an error, a client
 * that goes away), a row is written when the response closes unless the handler wrote it first.
 */
export function startAudit(store: Store, request: FastifyRequest, reply: FastifyReply, action: string): void {
  request.audit = { action, rows: 0, written: false };
  // 'close' also fires when the client goes away mid-response, where onResponse does not.
  reply.raw.once('close', () => {
    const ended = reply.raw.writableFinished || reply.raw.writableEnded;
    void finishAudit(store, request, reply, !ended);
  });
}

/**
 * Writes the request's audit row unless already written; never throws (the answer is gone).
 * `brokenOff`: the response did not complete (client gone, or a failure mid-stream).
 */
export async function finishAudit(store: Store, request: FastifyRequest, reply: FastifyReply, brokenOff = false): Promise<void> {
  const audit = request.audit;
  if (!audit || audit.written) return;
  audit.written = true;
  const status = brokenOff ? (audit.failedStatus ?? CLIENT_CLOSED_STATUS) : reply.statusCode;
  try {
    await writeAudit(store, request, status);
  } catch (err) {
    request.log.error({ err }, 'audit row could not be written');
  }
}

function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

/** GET /v1/audit: the audit log, newest first (admins). */
export function registerAuditRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit',
    {
      config: { auth: 'audit', audit: 'audit.query' },
      schema: {
        summary: 'Audit log of API queries (admin)',
        tags: ['compliance'],
        security: [{ bearerAuth: [] }],
        querystring: AuditQuerySchema,
        response: withErrors({ 200: AuditPageSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const fromMs = parseTimeMs(q.from, 'from');
      const toMs = parseTimeMs(q.to, 'to');
      if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) throw createError('API_BAD_REQUEST', 'from is after to');
      const fingerprint = fingerprintQuery({ from: fromMs, to: toMs, actor: q.actor, action: q.action });
      const after = q.cursor ? decodeCursor(q.cursor, fingerprint, { t: 'number', k: 'string' }) : undefined;
      const page = await queryAuditLog(store, {
        fromMs,
        toMs,
        actor: q.actor,
        action: q.action,
        limit: q.limit ?? 100,
        after: after ? { timeMs: after.t as number, rowKey: after.k as string } : undefined,
      });
      if (request.audit) request.audit.rows = page.rows.length;
      await writeAudit(store, request, 200);
      return {
        items: page.rows.map((r) => ({ time: toIso(r.time), actor: r.actor, role: r.role, action: r.action, filters: r.filters, rows: r.rows, status: r.status, remote_addr: r.remote_addr })),
        next_cursor: page.next ? encodeCursor(fingerprint, { t: page.next.timeMs, k: page.next.rowKey }) : null,
      };
    },
  );
}
