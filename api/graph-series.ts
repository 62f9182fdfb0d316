// Counters of the service graph over time, for charts: an edge, a node or an incident's actors and
// targets, per step, with the mean of an earlier range as baseline (observed vs. baseline).
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createError } from '../core/errors.ts';
import { querySeries, SERIES_COUNTERS } from '../store/graph-queries.ts';
import type { Store } from '../store/client.ts';
import { withErrors } from './schemas.ts';
import { parseTimeMs } from './time.ts';

/** Default range when `from` is absent: one hour before `to`. */
const DEFAULT_RANGE_MS = 3_600_000;
/** Most identities or services one query names. */
const MAX_NAMES = 50;

const DateTime = (description: string) => Type.String({ format: 'date-time', pattern: '^(19[7-9][0-9]|2[0-2][0-9][0-9])-', maxLength: 64, description });
const Names = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: MAX_NAMES, description });

export const SeriesQuerySchema = Type.Object(
  {
    from: Type.Optional(DateTime('Start of the range; default one hour before `to`')),
    to: Type.Optional(DateTime('End of the range; default now')),
    src: Type.Optional(Names('Source identities (repeat the parameter for several); all when absent')),
    dst: Type.Optional(Names('Destination services (repeat the parameter for several); all when absent')),
    baseline_from: Type.Optional(DateTime('Start of the baseline range (with baseline_to)')),
    baseline_to: Type.Optional(DateTime('End of the baseline range (with baseline_from)')),
  },
  { additionalProperties: false },
);
export type SeriesQuery = Static<typeof SeriesQuerySchema>;

const counterArrays = Object.fromEntries(SERIES_COUNTERS.map((c) => [c, Type.Array(Type.Number())]));
const counterNumbers = Object.fromEntries(SERIES_COUNTERS.map((c) => [c, Type.Number()]));

export const SeriesSchema = Type.Object({
  from: Type.String(),
  to: Type.String(),
  step_seconds: Type.Integer({ description: 'Seconds between points (a multiple of 60; coarser for long ranges)' }),
  times: Type.Array(Type.Number(), { description: 'Start of each step, Unix seconds' }),
  values: Type.Object(counterArrays, { description: 'One value per step for each counter' }),
  baseline: Type.Union([Type.Object(counterNumbers), Type.Null()], { description: 'Mean per step over the baseline range; null when none was asked' }),
});

/** Registers /v1/graph/series. */
export function registerGraphSeriesRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: SeriesQuery }>(
    '/v1/graph/series',
    {
      config: { auth: 'graph' },
      schema: {
        summary: 'Service-graph counters over time, with an optional baseline',
        description:
          'Requests, denies, errors, TLS failures, plaintext and mTLS requests and bytes out per step for the edges from `src` to `dst`, ' +
          'read from the per-minute edge rollup; `baseline` is the mean per step over [baseline_from, baseline_to).',
        tags: ['detection'],
        security: [{ bearerAuth: [] }],
        querystring: SeriesQuerySchema,
        response: withErrors({ 200: SeriesSchema }),
      },
    },
    async (request) => {
      const q = request.query;
      const toMs = parseTimeMs(q.to, 'to') ?? Date.now();
      const fromMs = parseTimeMs(q.from, 'from') ?? Math.max(0, toMs - DEFAULT_RANGE_MS);
      if (fromMs >= toMs) throw createError('API_BAD_REQUEST', 'from must be before to');
      const baselineFromMs = parseTimeMs(q.baseline_from, 'baseline_from');
      const baselineToMs = parseTimeMs(q.baseline_to, 'baseline_to');
      if ((baselineFromMs === undefined) !== (baselineToMs === undefined)) throw createError('API_BAD_REQUEST', 'baseline_from and baseline_to go together');
      if (baselineFromMs !== undefined && baselineToMs !== undefined && baselineFromMs >= baselineToMs) throw createError('API_BAD_REQUEST', 'baseline_from must be before baseline_to');
      const series = await querySeries(store, { fromMs, toMs, src: q.src, dst: q.dst, baselineFromMs, baselineToMs });
      return {
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
        step_seconds: series.stepSeconds,
        times: series.times,
        values: series.values,
        baseline: series.baseline,
      };
    },
  );
}
