// The api stage's counters (docs/telemetry.md): `received` for every request, then, once it is
// answered, `sent` for a status below 400 or errors{code} with the code sendError answered it with
// (api/errors.ts: the error and not-found handlers and fastify's own refusals all answer there).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Metrics } from '../core/metrics.ts';
import { errorCodeOf } from './errors.ts';

/** Counts a request fastify refused before routing (a malformed URL), which no hook sees. */
export function countRefusedBeforeRouting(metrics: Metrics, reply: FastifyReply): void {
  const stage = metrics.stage('api');
  stage.received();
  stage.error(errorCodeOf(reply.request) ?? `http_${reply.statusCode}`);
}

/** Counts requests, successful answers and refusals by code on `app` as the api stage. */
export function installApiTelemetry(app: FastifyInstance, metrics: Metrics): void {
  const stage = metrics.stage('api');
  app.addHook('onRequest', async () => {
    stage.received();
  });
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) stage.sent();
    // Every error body goes through sendError; a bare status from elsewhere is named by its number.
    else stage.error(errorCodeOf(request) ?? `http_${reply.statusCode}`);
  });
}
