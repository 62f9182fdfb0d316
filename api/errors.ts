// Errors leave the API here (STYLE §5), each as `{ error: { code, message, retryable } }` with the
// HTTP status declared beside its code in core/errors.ts.
// Bad input is always a 4xx with a code; only a fault of ours or of a dependency is a 5xx.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ZtwError, createError, specOf, type ErrorName } from '../core/errors.ts';

/** Seconds a client is told to wait (Retry-After) before retrying a retryable 429/503. */
export const RETRY_AFTER_SECONDS = 1;

/** The error body of every non-2xx answer. */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, ZTW_<AREA>_<WHAT>' }),
      message: Type.String(),
      retryable: Type.Boolean({ description: 'True when the same request may succeed later' }),
    }),
  },
  { $id: 'ErrorBody', description: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBodySchema>;

/** Status declared for a code; a code ztwatch does not declare is a 500. */
export function statusOf(code: string): number {
  return specOf(code)?.status ?? 500;
}

/** Fastify's own 4xx errors (bad headers, media types, validation), in our codes. */
function fromFrameworkError(err: FastifyError): ZtwError | undefined {
  if (err.validation) return createError('API_BAD_REQUEST', err.message);
  const status = err.statusCode ?? 0;
  if (status < 400 || status >= 500) return undefined;
  const byStatus: Record<number, ErrorName> = {
    401: 'API_UNAUTHENTICATED',
    403: 'API_FORBIDDEN',
    404: 'API_NOT_FOUND',
    408: 'API_TIMEOUT',
    413: 'INGEST_BODY_TOO_LARGE',
    415: 'INGEST_BAD_CONTENT_TYPE',
  };
  return createError(byStatus[status] ?? 'API_BAD_REQUEST', err.message);
}

/** Turns any thrown value into a status and error body; internals never reach the client. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; error: ZtwError; internal: boolean } {
  let error: ZtwError | undefined = err instanceof ZtwError ? err : undefined;
  if (!error && err instanceof Error) error = fromFrameworkError(err as FastifyError);
  const internal = !error || statusOf(error.code) >= 500;
  if (!error) error = createError('API_INTERNAL', undefined, { cause: err });
  const status = statusOf(error.code);
  // A 5xx says which part failed, not how: store and engine messages may hold SQL and paths.
  const message = status >= 500 ? (specOf(error.code)?.message ?? 'internal error') : error.message;
  return { status, body: { error: { code: error.code, message, retryable: error.retryable } }, error, internal };
}

/** The code each request was refused with (read once it is answered, by api/telemetry.ts). */
const answeredCodes = new WeakMap<FastifyRequest, string>();

/** The code `request` was answered with by sendError; undefined when it was not refused. */
export function errorCodeOf(request: FastifyRequest): string | undefined {
  return answeredCodes.get(request);
}

/** Sends `err` as our error body, with Retry-After / WWW-Authenticate where they help. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body } = toErrorResponse(err);
  answeredCodes.set(reply.request, body.error.code);
  if (body.error.retryable && (status === 503 || status === 429)) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="ztwatch"');
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * Answers what Node's HTTP parser refuses before fastify sees a request (headers too large, a
 * malformed request line, a request that took too long) with our error body, then closes.
 */
export function writeClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const error =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? createError('API_TIMEOUT', 'the request did not arrive in time')
      : createError('API_BAD_REQUEST', err.code === 'HPE_HEADER_OVERFLOW' ? 'request line and headers are too large' : 'malformed HTTP request');
  const { status, body } = toErrorResponse(error);
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}

/** Installs the error and not-found handlers on `app` (api/telemetry.ts counts what they answer). */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { internal, error } = toErrorResponse(err);
    if (internal) request.log.error({ err, code: error.code }, 'request failed');
    else request.log.info({ code: error.code, msg: error.message }, 'request rejected');
    return sendError(reply, err);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, createError('API_NOT_FOUND', `${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`)),
  );
}
