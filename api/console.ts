// The web console (DESIGN §8b): a page at `/` and its script and styles, bundled with esbuild from
// console/src on first request and kept in memory, so `npm start` needs no build step and nothing
// is fetched from another origin. The console only calls the API with the token the user gives it;
// `/v1/session` tells it who that token is. The assets themselves hold no data and need no token.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createError } from '../core/errors.ts';
import { withErrors } from './schemas.ts';

/** Where the console's sources live. */
export const CONSOLE_ENTRY = fileURLToPath(new URL('../console/src/main.ts', import.meta.url));

export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong validator, from the content. */
  readonly etag: string;
}

export interface ConsoleBundle {
  readonly html: ConsoleAsset;
  readonly js: ConsoleAsset;
  readonly css: ConsoleAsset;
}

/**
 * The page only loads same-origin script and styles and talks only to its own API. uPlot and
 * cytoscape set element styles from script, hence 'unsafe-inline' for styles (never for scripts).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>ztwatch console</title>
<link rel="stylesheet" href="/console/app.css">
<script type="module" src="/console/app.js"></script>
</head>
<body><div id="app" aria-live="polite"></div></body>
</html>
`;

function toAsset(body: Buffer | Uint8Array | string, contentType: string): ConsoleAsset {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return { body: buffer, contentType, etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 27)}"` };
}

/** Bundles the console (script with cytoscape, fcose and uPlot; styles) in memory. */
export async function buildConsoleBundle(entry: string = CONSOLE_ENTRY): Promise<ConsoleBundle> {
  const result = await build({
    entryPoints: { app: entry },
    bundle: true,
    write: false,
    outdir: 'console-out',
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!js || !css) throw new Error('console bundle lacks its script or styles');
  return {
    html: toAsset(HTML, 'text/html; charset=utf-8'),
    js: toAsset(js.contents, 'text/javascript; charset=utf-8'),
    css: toAsset(css.contents, 'text/css; charset=utf-8'),
  };
}

let cached: Promise<ConsoleBundle> | undefined;

/** The bundle, built once per process; a failed build is retried on the next request. */
export function loadConsoleBundle(): Promise<ConsoleBundle> {
  if (!cached) {
    cached = buildConsoleBundle().catch((err: unknown) => {
      cached = undefined;
      throw createError('API_INTERNAL', 'the console could not be built', { cause: err });
    });
  }
  return cached;
}

async function sendAsset(request: FastifyRequest, reply: FastifyReply, pick: (bundle: ConsoleBundle) => ConsoleAsset): Promise<FastifyReply> {
  const asset = pick(await loadConsoleBundle());
  reply.header('cache-control', 'no-cache').header('etag', asset.etag).header('content-security-policy', CONSOLE_CSP).header('x-frame-options', 'DENY');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

const SessionSchema = Type.Object({
  name: Type.String({ description: 'Token name (or client certificate SPIFFE ID)' }),
  role: Type.String({ description: 'ingest, analyst, auditor or admin' }),
});

/** Registers `/`, `/console/app.js`, `/console/app.css` and `/v1/session`. */
export function registerConsoleRoutes(app: FastifyInstance): void {
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, (request, reply) => sendAsset(request, reply, (b) => b.html));
  app.get('/console/app.js', hidden, (request, reply) => sendAsset(request, reply, (b) => b.js));
  app.get('/console/app.css', hidden, (request, reply) => sendAsset(request, reply, (b) => b.css));
  app.get(
    '/v1/session',
    {
      config: { auth: 'session' },
      schema: {
        summary: 'Who the presented token is: its name and role',
        description: 'The console calls this at login to check the token and to show only the pages the role may use.',
        tags: ['operations'],
        security: [{ bearerAuth: [] }],
        response: withErrors({ 200: SessionSchema }),
      },
    },
    async (request) => {
      const principal = request.principal;
      if (!principal) throw createError('API_UNAUTHENTICATED', 'send Authorization: Bearer <token>');
      return { name: principal.name, role: principal.role };
    },
  );
}
