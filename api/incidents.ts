// Incident routes (DESIGN §6b): the list (filtered by status, severity, paging and time, most
// recently raised first, keyset-paginated) and one incident with its member anomalies.
import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.ts';
import type { Store } from '../store/client.ts';
import { getIncident, queryIncidents } from '../store/incident-queries.ts';
import { decodeCursor, encodeCursor, fingerprintQuery } from './cursor.ts';
import { IncidentDetailSchema, IncidentListSchema, IncidentParamsSchema, IncidentQuerySchema, withErrors, type IncidentQuery } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Registers /v1/incidents and /v1/incidents/:id (role analyst, like anomalies). */
export function registerIncidentRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: IncidentQuery }>(
    '/v1/incidents',
    {
      config: { auth: 'anomalies' },
      schema: {
        summary: 'Incidents (one per attack or cause, one page each), most recently raised first',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        querystring: IncidentQuerySchema,
        response: withErrors({ 200: IncidentListSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceMs = parseTimeMs(q.since, 'since');
      const untilMs = parseTimeMs(q.until, 'until');
      const filters = { status: q.status, severity: q.severity, notify: q.notify, sinceMs, untilMs };
      const fingerprint = fingerprintQuery(filters);
      const after = q.cursor ? decodeCursor(q.cursor, fingerprint, { t: 'number', id: 'string' }) : undefined;
      const page = await queryIncidents(store, filters, {
        limit: q.limit ?? 50,
        after: after ? { detectedAtMs: after.t as number, id: after.id as string } : undefined,
      });
      return {
        items: page.incidents,
        next_cursor: page.next ? encodeCursor(fingerprint, { t: page.next.detectedAtMs, id: page.next.id }) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/incidents/:id',
    {
      config: { auth: 'anomalies' },
      schema: {
        summary: 'One incident, latest state, with its timeline, evidence and member anomalies',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        params: IncidentParamsSchema,
        response: withErrors({ 200: IncidentDetailSchema }),
      },
    },
    async (request) => {
      const found = await getIncident(store, request.params.id);
      if (!found) throw createError('API_NOT_FOUND', 'no incident with this id');
      return found;
    },
  );
}
