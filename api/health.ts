// Liveness, readiness and metrics. `/healthz` answers while the process runs; `/readyz` checks
// what this process depends on (store ping, bus room, the caller's own check); `/metrics` is the
// prom-client registry, open unless `auth.metricsOpen` is false.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../core/metrics.ts';
import type { Bus } from '../bus/port.ts';
import type { Store } from '../store/client.ts';
import { HealthSchema, ReadySchema } from './schemas.ts';

export interface HealthRoutesOptions {
  readonly metrics: Metrics;
  readonly metricsOpen: boolean;
  readonly store?: Store | undefined;
  readonly bus?: Bus | undefined;
  readonly isReady?: (() => boolean | Promise<boolean>) | undefined;
}

/** Registers /healthz, /readyz and /metrics. */
export function registerHealthRoutes(app: FastifyInstance, options: HealthRoutesOptions): void {
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: HealthSchema } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: store reachable, bus not saturated', tags: ['operations'], response: { 200: ReadySchema, 503: ReadySchema } } },
    async (_request, reply) => {
      const checks: Record<string, boolean> = {};
      if (options.store) checks.store = await options.store.ping();
      if (options.bus) checks.bus = !options.bus.isSaturated();
      if (options.isReady) {
        try {
          checks.process = await options.isReady();
        } catch {
          checks.process = false;
        }
      }
      const ready = Object.values(checks).every(Boolean);
      reply.code(ready ? 200 : 503);
      if (!ready) reply.header('retry-after', '1');
      return { status: ready ? 'ready' : 'not_ready', checks };
    },
  );

  app.get(
    '/metrics',
    {
      config: options.metricsOpen ? {} : { auth: 'metrics' },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['operations'],
        ...(options.metricsOpen ? {} : { security: [{ bearerAuth: [] }] }),
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      const text = await options.metrics.registry.metrics();
      return reply.header('content-type', options.metrics.registry.contentType).send(text);
    },
  );
}
