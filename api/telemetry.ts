// The api stage's counters (docs/telemetry.md): `received` for every request, `sent` for every
// answer below 400. Errors are counted by code where they are answered (api/errors.ts), so a
// refused request counts once under received and once under errors{code}.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../core/metrics.ts';

/** Counts requests and successful answers on `app` as the api stage. */
export function installApiTelemetry(app: FastifyInstance, metrics: Metrics): void {
  const stage = metrics.stage('api');
  app.addHook('onRequest', async () => {
    stage.received();
  });
  app.addHook('onResponse', async (_request, reply) => {
    if (reply.statusCode < 400) stage.sent();
  });
}
