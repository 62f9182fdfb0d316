// The HTTP API: one fastify instance per process, with the routes this process's role can serve.
// Ingest routes exist only with an ingestor, query routes only with a store; health, metrics and
// the OpenAPI document always. Authentication runs first on every request (onRequest), before a
// body is read; least privilege per route comes from each route's `config.auth` (api/auth.ts).
import { readFileSync } from 'node:fs';
import type { ServerOptions as HttpsOptions } from 'node:https';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { ApiRole, FrozenConfig } from '../core/config.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Bus } from '../bus/port.ts';
import type { Ingestor } from '../ingest/pipeline.ts';
import type { Store } from '../store/client.ts';
import { registerAccessRoutes } from './access.ts';
import { registerAnomalyRoutes } from './anomalies.ts';
import { finishAudit, registerAuditRoutes, startAudit } from './audit.ts';
import { createAuthenticator } from './auth.ts';
import { configureCursorKey, resolveCursorKey } from './cursor.ts';
import { registerConsoleRoutes } from './console.ts';
import { ErrorBodySchema, installErrorHandlers, sendError, writeClientError } from './errors.ts';
import { countRefusedBeforeRouting, installApiTelemetry } from './telemetry.ts';
import { registerGraphRoutes } from './graph.ts';
import { registerGraphSeriesRoutes } from './graph-series.ts';
import { registerHealthRoutes } from './health.ts';
import { registerIncidentRoutes } from './incidents.ts';
import { registerIngestRoutes } from './ingest.ts';
import { registerPostureRoutes } from './posture.ts';
import { IngestBodySchema } from './schemas.ts';

export interface AppOptions {
  config: FrozenConfig;
  metrics: Metrics;
  /** Present when this process serves queries (api role). */
  store?: Store;
  /** Present when this process accepts events (collector role). */
  ingestor?: Ingestor;
  /** Bus, for saturation checks (503 with Retry-After when bus.isSaturated()). */
  bus?: Bus;
  /** Extra plaintext tokens valid for this process only (the demo prints one). */
  extraTokens?: Array<{ name: string; role: ApiRole; token: string }>;
  /** Readiness beyond the built-ins (e.g. sink connected). */
  isReady?: () => boolean | Promise<boolean>;
}

/** Longest route parameter (`/v1/anomalies/:id`, `/v1/ingest/:source`), in characters. */
const MAX_PARAM_CHARS = 256;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function readTls(config: FrozenConfig): HttpsOptions | null {
  const tls = config.http.tls;
  if (!tls.certFile || !tls.keyFile) return null;
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    // Client certificates are requested and verified against the CA, but not demanded at the
    // handshake: tokens still work; ingest decides per route (api/auth.ts).
    ...(tls.caFile ? { ca: readFileSync(tls.caFile), requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/** Builds the API for this process; the caller listens (`app.listen`) and closes it. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config, metrics, store, ingestor, bus } = options;
  const tls = readTls(config);
  // Headers must arrive within the configured time; Node checks its timeouts every
  // connectionsCheckingInterval (30 s by default, so 30 s configured became up to 60 s).
  const serverTimeouts = { headersTimeout: config.http.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.http.requestTimeoutMs) };
  const https = tls ? { ...tls, ...serverTimeouts } : null;
  const cursorKey = resolveCursorKey(config);
  if (cursorKey) configureCursorKey(cursorKey);
  const app = Fastify({
    logger: config.log.level === 'silent' ? false : { level: config.log.level },
    ...(https ? { https } : { http: serverTimeouts }),
    bodyLimit: config.http.bodyLimitBytes,
    // Our own body deadline answers 408 with a code (api/body.ts); Node's is the backstop.
    requestTimeout: config.http.requestTimeoutMs + 1000,
    routerOptions: { maxParamLength: MAX_PARAM_CHARS },
    // One line per request would drown the log at ingest rates; errors and refusals are logged.
    logController: new LogController({ disableRequestLogging: true }),
    clientErrorHandler: writeClientError,
    // Router-level refusals (a parameter too long, a malformed URL) in our error body too.
    frameworkErrors: (err, _request, reply) => {
      sendError(reply, err);
      countRefusedBeforeRouting(metrics, reply);
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  }) as unknown as FastifyInstance;

  const auth = createAuthenticator(config, options.extraTokens);
  installErrorHandlers(app);
  installApiTelemetry(app, metrics);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('audit', undefined);
  app.decorateRequest('receivedAtMs', 0);
  app.addHook('onRequest', async (request, reply) => {
    request.receivedAtMs = Date.now();
    const routeConfig = request.routeOptions.config;
    if (routeConfig.audit && store) startAudit(store, request, reply, routeConfig.audit);
    if (routeConfig.auth) {
      // Known before the role check, so a refusal is audited under the caller's name.
      request.principal = auth.authenticate(request);
      request.principal = auth.authorize(request, request.principal, routeConfig.auth);
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    if (store && request.audit && !request.audit.written) await finishAudit(store, request, reply);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (request.url.startsWith('/v1/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'ztwatch API',
        version: readVersion(),
        description: 'Ingest zero-trust network events; query access history, incidents, anomalies and the service graph.',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token (see `ztwatch token`)' } },
        schemas: { ErrorBody: ErrorBodySchema },
      },
      tags: [
        { name: 'ingest', description: 'Event intake (role ingest)' },
        { name: 'compliance', description: 'Access history, export, tamper evidence, audit log' },
        { name: 'detection', description: 'Incidents, anomalies and the service graph (role analyst)' },
        { name: 'operations', description: 'Health and metrics' },
        { name: 'posture', description: 'Rollout guidance: STRICT readiness, policy replay, least privilege, blast radius (role analyst)' },
      ],
    },
    // Ingest bodies are read raw (never validated as JSON); the document still describes them.
    transform: ({ schema, url, route }) => {
      if (!route.config || !(route.config as { rawBody?: boolean }).rawBody) return { schema, url };
      return { schema: { ...schema, body: IngestBodySchema }, url };
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerHealthRoutes(app, { metrics, metricsOpen: config.auth.metricsOpen, store, bus, isReady: options.isReady });
  if (ingestor) await registerIngestRoutes(app, { config, ingestor, bus });
  if (store) {
    registerAccessRoutes(app, store);
    registerAnomalyRoutes(app, store);
    registerIncidentRoutes(app, store);
    registerGraphRoutes(app, store);
    registerPostureRoutes(app, store);
    registerGraphSeriesRoutes(app, store);
    registerAuditRoutes(app, store);
    // The console belongs with the query routes it calls.
    registerConsoleRoutes(app);
  }
  return app;
}
