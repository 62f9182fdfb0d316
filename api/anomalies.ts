// Anomaly routes: the list (filtered by detector, status, severity and time, newest opening first,
// keyset-paginated) and one anomaly with its evidence.
import type { FastifyInstance } from 'fastify';
import { AnomalySchema } from '../core/anomaly.ts';
import { createError } from '../core/errors.ts';
import { getAnomaly, queryAnomalies } from '../store/anomaly-queries.ts';
import type { Store } from '../store/client.ts';
import { decodeCursor, encodeCursor, fingerprintQuery } from './cursor.ts';
import { AnomalyListSchema, AnomalyParamsSchema, AnomalyQuerySchema, withErrors, type AnomalyQuery } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Registers /v1/anomalies and /v1/anomalies/:id. */
export function registerAnomalyRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: AnomalyQuery }>(
    '/v1/anomalies',
    {
      config: { auth: 'anomalies' },
      schema: {
        summary: 'Anomalies, newest opening first',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        querystring: AnomalyQuerySchema,
        response: withErrors({ 200: AnomalyListSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const sinceMs = parseTimeMs(q.since, 'since');
      const untilMs = parseTimeMs(q.until, 'until');
      const filters = { detector: q.detector, status: q.status, severity: q.severity, sinceMs, untilMs };
      const fingerprint = fingerprintQuery(filters);
      const after = q.cursor ? decodeCursor(q.cursor, fingerprint, { t: 'number', id: 'string' }) : undefined;
      const page = await queryAnomalies(store, filters, {
        limit: q.limit ?? 50,
        after: after ? { firstSeenMs: after.t as number, id: after.id as string } : undefined,
      });
      return {
        items: page.anomalies,
        next_cursor: page.next ? encodeCursor(fingerprint, { t: page.next.firstSeenMs, id: page.next.id }) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/anomalies/:id',
    {
      config: { auth: 'anomalies' },
      schema: {
        summary: 'One anomaly, latest state, with its evidence',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        params: AnomalyParamsSchema,
        response: withErrors({ 200: AnomalySchema }),
      },
    },
    async (request) => {
      const anomaly = await getAnomaly(store, request.params.id);
      if (!anomaly) throw createError('API_NOT_FOUND', 'no anomaly with this id');
      return anomaly;
    },
  );
}
