// Ingest routes: `POST /v1/ingest/{source}` for any registered format (or `auto`), OPA's native
// decision-log upload (`POST /v1/opa/logs`, OPA appends `/logs` to its service URL), and the
// Kubernetes audit webhook (`POST /v1/ingest/k8s-audit`, an EventList). Checks run cheapest first:
// role, saturation, source and content type before a byte of the body is read; then size, gzip and
// time limits while reading; then UTF-8 and depth per record. A partly bad batch answers 200 with
// the rejected count: the rejected records are already dead-lettered, so a retry would not help.
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FrozenConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';
import type { Bus } from '../bus/port.ts';
import { AUTO_FORMAT, isKnownFormat, type Ingestor } from '../ingest/pipeline.ts';
import { PARSERS } from '../ingest/parsers/index.ts';
import { REJECTED_RAW_CHARS } from '../ingest/records.ts';
import { checkIngestContentType, readBody, splitBody, measureDepth, SPLIT_CHUNK_RECORDS, yieldToEventLoop, type BodyRecords, type SplitBodyOptions } from './body.ts';
import { IngestParamsSchema, IngestResultSchema, withErrors, type IngestResultBody } from './schemas.ts';

export interface IngestRoutesOptions {
  readonly config: FrozenConfig;
  readonly ingestor: Ingestor;
  readonly bus?: Bus | undefined;
}

/** Path of the Kubernetes audit webhook (also the name users know the format by). */
export const K8S_AUDIT_PATH = '/v1/ingest/k8s-audit';

/** Name of the first registered format whose events carry `source`, if any. */
export function findFormatBySource(source: string): string | undefined {
  return Object.entries(PARSERS).find(([, entry]) => entry.source === source)?.[0];
}

/**
 * Records of a Kubernetes audit body: the items of an `EventList` (what the API server's webhook
 * backend posts), or a single Event / audit-log lines, split as any other body.
 */
export async function splitK8sAuditBody(body: Buffer, options: SplitBodyOptions): Promise<BodyRecords> {
  if (isUtf8(body)) {
    const text = body.toString('utf8');
    const start = text.search(/\S/);
    // The list wrapper adds two levels (object, items array) over each event's own depth.
    if (start >= 0 && text.charCodeAt(start) === 123 && measureDepth(text, options.maxJsonDepth + 2) <= options.maxJsonDepth + 2) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'EventList') {
        const rawItems = (value as { items?: unknown }).items;
        const items: unknown[] = Array.isArray(rawItems) ? rawItems : [];
        const max = options.maxRecords ?? Number.POSITIVE_INFINITY;
        if (items.length > max) throw createError('INGEST_TOO_MANY_RECORDS', `the EventList holds ${items.length} items, more than ${max}`);
        const records: string[] = [];
        const rejected: Array<{ raw: string; reason: string }> = [];
        for (let i = 0; i < items.length; i++) {
          const record = JSON.stringify(items[i]) ?? 'null';
          if (Buffer.byteLength(record, 'utf8') > options.maxRecordBytes) rejected.push({ raw: record.slice(0, REJECTED_RAW_CHARS), reason: 'record_too_long' });
          else records.push(record);
          if ((i + 1) % SPLIT_CHUNK_RECORDS === 0) {
            options.onProgress?.(SPLIT_CHUNK_RECORDS);
            await yieldToEventLoop();
          }
        }
        if (items.length % SPLIT_CHUNK_RECORDS > 0) options.onProgress?.(items.length % SPLIT_CHUNK_RECORDS);
        return { records, rejected };
      }
    }
  }
  return splitBody(body, options);
}

function toResult(result: { accepted: number; rejected: number; errors: ReadonlyArray<{ index: number; reason: string }> }): IngestResultBody {
  return { accepted: result.accepted, rejected: result.rejected, errors: result.errors.map((e) => ({ index: e.index, reason: e.reason })) };
}

/** Registers the ingest routes in their own scope (they read bodies their own way). */
export async function registerIngestRoutes(app: FastifyInstance, options: IngestRoutesOptions): Promise<void> {
  const { config, ingestor, bus } = options;
  const limits = {
    bodyLimitBytes: config.http.bodyLimitBytes,
    compressedBodyLimitBytes: config.http.compressedBodyLimitBytes,
    requestTimeoutMs: config.http.requestTimeoutMs,
  };
  const baseSplitOptions: SplitBodyOptions = {
    maxRecordBytes: config.ingest.maxLineBytes,
    maxJsonDepth: config.http.maxJsonDepth,
    maxRecords: config.ingest.maxRecordsPerRequest,
  };
  /** Records held by requests being split, parsed or published (until answered). */
  let heldRecords = 0;
  const maxHeldRecords = config.bus.maxInFlightMessages;

  /** Runs before the body is read: saturation, then content type. */
  const admit = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (bus?.isSaturated() || heldRecords >= maxHeldRecords) {
      reply.header('retry-after', '1');
      throw createError('INGEST_OVERLOADED', 'the bus is full; retry after a second');
    }
    checkIngestContentType(request.headers['content-type']);
  };

  const ingest = async (
    request: FastifyRequest,
    format: string,
    split: (body: Buffer, options: SplitBodyOptions) => Promise<BodyRecords>,
    reply: FastifyReply,
  ): Promise<IngestResultBody> => {
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw createError('INGEST_EMPTY', 'send one record per line, a JSON array, or an EventList');
    let held = 0;
    // In-flight records are counted as they are split, not only checked before the body is read.
    const onProgress = (added: number) => {
      held += added;
      heldRecords += added;
      if (heldRecords > maxHeldRecords || bus?.isSaturated()) {
        reply.header('retry-after', '1');
        throw createError('INGEST_OVERLOADED', `${heldRecords} records are in flight (limit ${maxHeldRecords}); retry after a second`);
      }
    };
    try {
      const { records, rejected } = await split(body, { ...baseSplitOptions, onProgress });
      if (records.length === 0 && rejected.length === 0) throw createError('INGEST_EMPTY', 'the body holds only blank lines');
      const result = await ingestor.ingest(format, records, rejected);
      if (records.length === 0 && rejected.every((r) => r.reason === 'invalid_utf8')) {
        // Dead-lettered above all the same; the status tells the sender its encoding is wrong.
        throw createError('INGEST_BAD_ENCODING', `no record is valid UTF-8 (${rejected.length} dead-lettered as invalid_utf8)`);
      }
      reply.code(200);
      return toResult(result);
    } finally {
      heldRecords -= held;
    }
  };

  const formatList = Object.keys(PARSERS).join(', ');
  const resolveSplit = (format: string) => (format !== AUTO_FORMAT && PARSERS[format]?.envelope === 'k8s_event_list' ? splitK8sAuditBody : splitBody);

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // One parser for every media type: the raw stream, read under our limits (see api/body.ts).
    scope.addContentTypeParser('*', async (request: FastifyRequest, payload: FastifyRequest['raw']) => readBody(payload, request.headers, limits, request.receivedAtMs));

    const common = {
      tags: ['ingest'],
      security: [{ bearerAuth: [] }],
      consumes: ['application/x-ndjson', 'application/json', 'text/plain'],
      response: withErrors({ 200: IngestResultSchema }),
    };

    scope.post<{ Params: { source: string } }>(
      '/v1/ingest/:source',
      {
        config: { auth: 'ingest', rawBody: true },
        onRequest: async (request, reply) => {
          const source = request.params.source;
          if (!isKnownFormat(source)) throw createError('INGEST_UNKNOWN_SOURCE', `${source.slice(0, 64)}; known: ${formatList}, auto`);
          await admit(request, reply);
        },
        schema: {
          ...common,
          summary: 'Ingest records of one format',
          description: `\`source\` is one of: ${formatList}, or \`auto\` to detect the format of each record. Partly rejected batches answer 200; see \`rejected\`.`,
          params: IngestParamsSchema,
        },
      },
      async (request, reply) => {
        const source = request.params.source;
        return ingest(request, source, resolveSplit(source), reply);
      },
    );

    scope.post(
      K8S_AUDIT_PATH,
      {
        config: { auth: 'ingest', rawBody: true },
        onRequest: admit,
        schema: {
          ...common,
          summary: 'Kubernetes audit webhook (EventList), or audit-log lines',
          description: 'Point the API server\'s `--audit-webhook-config-file` kubeconfig at this URL.',
        },
      },
      async (request, reply) => {
        const format = findFormatBySource('k8s_audit');
        if (!format) throw createError('INGEST_UNKNOWN_SOURCE', 'no Kubernetes audit format is registered');
        return ingest(request, format, splitK8sAuditBody, reply);
      },
    );

    const opa = async (request: FastifyRequest, reply: FastifyReply) => {
      const format = findFormatBySource('opa');
      if (!format) throw createError('INGEST_UNKNOWN_SOURCE', 'no OPA decision-log format is registered');
      return ingest(request, format, splitBody, reply);
    };
    const opaSchema = {
      ...common,
      summary: 'OPA decision-log upload',
      description: 'OPA posts gzip JSON arrays of decision events to `<service url>/logs`: set the service url to `http://HOST:PORT/v1/opa`.',
    };
    scope.post('/v1/opa/logs', { config: { auth: 'ingest', rawBody: true }, onRequest: admit, schema: opaSchema }, opa);
    // Older OPA releases append the partition name: `<service url>/logs/<partition_name>`.
    scope.post('/v1/opa/logs/:partition', { config: { auth: 'ingest', rawBody: true }, onRequest: admit, schema: { ...opaSchema, params: { type: 'object', properties: { partition: { type: 'string', maxLength: 256 } } } } }, opa);
  });
}
