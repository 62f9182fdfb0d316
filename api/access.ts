// Compliance routes: access history (filtered, keyset-paginated), streaming export as CSV or
// NDJSON, and verification of the tamper-evidence chain. Every call is audited (api/audit.ts).
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createError } from '../core/errors.ts';
import { ACCESS_COLUMNS, countAccess, iterateAccess, queryAccessPage, type AccessFilters, type AccessRow } from '../store/access-queries.ts';
import { verifyChain } from '../store/chain.ts';
import type { Store } from '../store/client.ts';
import { ROUTE_ROLES } from './auth.ts';
import { writeAudit } from './audit.ts';
import { decodeCursor, encodeCursor, fingerprintQuery } from './cursor.ts';
import { AccessPageSchema, AccessQuerySchema, ExportQuerySchema, VerifyReportSchema, withErrors, type AccessItem, type AccessQuery, type ExportQuery } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Rows fetched per internal page of an export. */
export const EXPORT_PAGE_ROWS = 10_000;
/** Rows serialized per chunk written to the socket. */
const EXPORT_CHUNK_ROWS = 500;

type FilterQuery = Omit<AccessQuery, 'order' | 'limit' | 'cursor' | 'include_count'>;

/** Filters of a query string, with times checked. */
export function readAccessFilters(q: FilterQuery): AccessFilters {
  const fromMs = parseTimeMs(q.from, 'from');
  const toMs = parseTimeMs(q.to, 'to');
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) throw createError('API_BAD_REQUEST', 'from is after to');
  return {
    identity: q.identity,
    identityPrefix: q.identity_prefix,
    service: q.service,
    namespace: q.namespace,
    decision: q.decision,
    method: q.method,
    pathPrefix: q.path_prefix,
    status: q.status,
    requestId: q.request_id,
    fromMs,
    toMs,
  };
}

/** A stored row as the API shows it (ISO times). */
export function toAccessItem(row: AccessRow): AccessItem {
  return { ...row, time: new Date(row.time).toISOString(), observed_time: new Date(row.observed_time).toISOString() };
}

/** Refuses raw lines to roles that may not see them. */
function checkRawAllowed(request: FastifyRequest, includeRaw: boolean | undefined): void {
  const role = request.principal?.role;
  if (includeRaw && !(role && (ROUTE_ROLES.accessRaw as readonly string[]).includes(role))) {
    throw createError('API_FORBIDDEN', 'raw lines need the auditor or admin role');
  }
}

/**
 * A CSV field per RFC 4180, and neutralized when a spreadsheet would run it as a formula: paths,
 * identities and reasons come from the network, i.e. from whoever is being audited.
 */
export function toCsvField(value: unknown): string {
  let text = Array.isArray(value) ? value.join(',') : value === undefined || value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Registers /v1/access, /v1/access/export and /v1/chain/verify. */
export function registerAccessRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: AccessQuery }>(
    '/v1/access',
    {
      config: { auth: 'access', audit: 'access.query' },
      schema: {
        summary: 'Access history: who accessed what, when, with which decision and why',
        description:
          'Keyset-paginated by (time, event_id); stable while data arrives. Every call is written to the audit log. ' +
          'Rows of a request that OPA also decided (same request_id) carry that decision in authz_decision_id, authz_decision and authz_reason.',
        tags: ['compliance'],
        security: [{ bearerAuth: [] }],
        querystring: AccessQuerySchema,
        response: withErrors({ 200: AccessPageSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      checkRawAllowed(request, q.include_raw);
      const filters = readAccessFilters(q);
      const order = q.order ?? 'desc';
      const includeRaw = q.include_raw ?? false;
      const fingerprint = fingerprintQuery({ ...filters, order, includeRaw });
      const after = q.cursor ? decodeCursor(q.cursor, fingerprint, { t: 'number', id: 'string' }) : undefined;
      const page = await queryAccessPage(store, filters, {
        limit: q.limit ?? 100,
        order,
        includeRaw,
        after: after ? { timeMs: after.t as number, eventId: after.id as string } : undefined,
      });
      const count = q.include_count ? await countAccess(store, filters) : undefined;
      if (request.audit) request.audit.rows = page.rows.length;
      await writeAudit(store, request, 200);
      return {
        items: page.rows.map(toAccessItem),
        next_cursor: page.next ? encodeCursor(fingerprint, { t: page.next.timeMs, id: page.next.eventId }) : null,
        ...(count === undefined ? {} : { count }),
      };
    },
  );

  app.get<{ Querystring: ExportQuery }>(
    '/v1/access/export',
    {
      config: { auth: 'export', audit: 'access.export' },
      schema: {
        summary: 'Export access history as CSV or NDJSON (streamed)',
        description:
          'Streams every matching row, page by page, without holding the result in memory. Audited twice: ' +
          '`access.export.start` before the first byte, `access.export` with the row count when the stream ends.',
        tags: ['compliance'],
        security: [{ bearerAuth: [] }],
        querystring: ExportQuerySchema,
        response: withErrors({
          200: {
            description: 'The rows, one per line',
            content: { 'text/csv': { schema: { type: 'string' } }, 'application/x-ndjson': { schema: { type: 'string' } } },
          },
        }),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filters = readAccessFilters(q);
      const format = q.format ?? 'ndjson';
      const includeRaw = q.include_raw ?? false;
      // Fail closed: no audit row, no data.
      await writeAudit(store, request, 200, 'access.export.start');
      const audit = request.audit;
      const columns: readonly string[] = includeRaw ? [...ACCESS_COLUMNS, 'raw'] : ACCESS_COLUMNS;
      const pages = iterateAccess(store, filters, { order: q.order ?? 'asc', includeRaw, pageRows: EXPORT_PAGE_ROWS, maxRows: q.max_rows });
      async function* generate(): AsyncGenerator<string> {
        if (format === 'csv') yield `${columns.join(',')}\r\n`;
        try {
          for await (const rows of pages) {
            for (let i = 0; i < rows.length; i += EXPORT_CHUNK_ROWS) {
              const chunk = rows.slice(i, i + EXPORT_CHUNK_ROWS).map(toAccessItem);
              const text =
                format === 'csv'
                  ? chunk.map((item) => columns.map((c) => toCsvField(item[c as keyof AccessItem])).join(',')).join('\r\n') + '\r\n'
                  : chunk.map((item) => JSON.stringify(item)).join('\n') + '\n';
              if (audit) audit.rows += chunk.length;
              yield text;
            }
          }
        } catch (err) {
          // Headers are gone: the connection is cut (the client sees an incomplete body) and the
          // audit row records the failure.
          if (audit) audit.failedStatus = 500;
          throw err;
        }
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      reply
        .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="ztwatch-access-${stamp}.${format}"`)
        .header('cache-control', 'no-store');
      // Readable.from pulls the next chunk only when the socket has room: backpressure end to end.
      return reply.send(Readable.from(generate(), { objectMode: false }));
    },
  );

  app.get(
    '/v1/chain/verify',
    {
      config: { auth: 'verify', audit: 'chain.verify' },
      schema: {
        summary: 'Verify the tamper-evidence hash chain against the stored events',
        description: 'Recomputes every batch digest from the events table; reports modified or deleted rows and deleted, reordered or edited batches.',
        tags: ['compliance'],
        security: [{ bearerAuth: [] }],
        response: withErrors({ 200: VerifyReportSchema }),
      },
    },
    async (request) => {
      const report = await verifyChain(store);
      if (request.audit) request.audit.rows = report.rowsChecked;
      await writeAudit(store, request, 200);
      return {
        ok: report.ok,
        chains: report.chains.map((c) => ({ chain: c.chain, first_seq: c.firstSeq, head_seq: c.headSeq, head_hash: c.headHash, batches: c.batches })),
        batches_checked: report.batchesChecked,
        batches_expired: report.batchesExpired,
        rows_checked: report.rowsChecked,
        problem_count: report.problemCount,
        problems: report.problems,
      };
    },
  );
}
