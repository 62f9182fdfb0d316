// Reading ingest bodies from hostile clients: a wire-size cap before inflation, a cap on inflated
// bytes while inflating (a gzip bomb stops at the cap, it is never fully expanded), a deadline for
// the whole body (slow senders), then records split by their framing with invalid UTF-8 and
// over-deep JSON refused per record, so the valid rest of the batch is never lost. Splitting runs
// a chunk of records at a time, yielding to the event loop in between (health checks and other
// senders keep being answered), and counts records as it goes: past `maxRecords` it stops.
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import { createError } from '../core/errors.ts';
import { createRecordSplitter, REJECTED_RAW_CHARS, type RejectedRecord } from '../ingest/records.ts';

export interface BodyLimits {
  /** Most bytes after decompression (`http.bodyLimitBytes`). */
  readonly bodyLimitBytes: number;
  /** Most bytes on the wire when the body is compressed (`http.compressedBodyLimitBytes`). */
  readonly compressedBodyLimitBytes: number;
  /** Time allowed for the whole body, from the start of the request, in ms. */
  readonly requestTimeoutMs: number;
}

/** Media types ingest accepts; JSON ones are read as JSON, the rest as lines. */
export const INGEST_MEDIA_TYPES = [
  'application/json',
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
  'application/jsonlines',
  'text/plain',
  'application/octet-stream',
] as const;

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function readMediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Throws 415 unless the content type is one ingest reads (absent means plain lines). */
export function checkIngestContentType(header: string | undefined): void {
  const media = readMediaType(header);
  if (media === '' || (INGEST_MEDIA_TYPES as readonly string[]).includes(media) || media.endsWith('+json')) return;
  throw createError('INGEST_BAD_CONTENT_TYPE', `${media.slice(0, 100)}; send one of ${INGEST_MEDIA_TYPES.join(', ')}`);
}

type Decoder = Gunzip | Inflate;

function createDecoder(encoding: string | undefined): Decoder | undefined {
  const value = (encoding ?? '').trim().toLowerCase();
  if (value === '' || value === 'identity') return undefined;
  if (value === 'gzip' || value === 'x-gzip') return createGunzip();
  if (value === 'deflate') return createInflate();
  throw createError('INGEST_BAD_CONTENT_TYPE', `content-encoding ${value.slice(0, 50)} is not supported; use gzip, deflate or none`);
}

/**
 * Reads the whole body of `payload` within the limits; rejects with a coded error (413, 408, 400)
 * as soon as one is crossed, without reading further.
 */
export function readBody(payload: Readable, headers: Record<string, string | string[] | undefined>, limits: BodyLimits, startedAtMs: number): Promise<Buffer> {
  const encodingHeader = headers['content-encoding'];
  const decoder = createDecoder(Array.isArray(encodingHeader) ? encodingHeader.join(',') : encodingHeader);
  const wireLimit = decoder ? limits.compressedBodyLimitBytes : limits.bodyLimitBytes;
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > wireLimit) {
    return Promise.reject(createError('INGEST_BODY_TOO_LARGE', `content-length ${declared} is over the limit of ${wireLimit} bytes`));
  }

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let wireBytes = 0;
    let bodyBytes = 0;
    let settled = false;
    const remainingMs = Math.max(1, limits.requestTimeoutMs - (Date.now() - startedAtMs));
    const timer = setTimeout(() => finish(createError('API_TIMEOUT', `the body did not arrive within ${limits.requestTimeoutMs} ms`)), remainingMs);

    const cleanup = () => {
      clearTimeout(timer);
      payload.removeListener('data', onWire);
      payload.removeListener('end', onWireEnd);
      payload.removeListener('error', onWireError);
      payload.removeListener('aborted', onAborted);
      if (decoder) {
        decoder.removeAllListeners('data');
        decoder.removeAllListeners('end');
        decoder.removeAllListeners('error');
        // Swallow late errors of an abandoned decoder; its input is discarded.
        decoder.on('error', () => undefined);
        decoder.destroy();
      }
      // Keep draining whatever the client still sends, so the error reply can be written.
      payload.resume();
    };
    function finish(err: Error | undefined, body?: Buffer) {
      if (settled) return;
      settled = true;
      cleanup();
      if (err) reject(err);
      else resolve(body as Buffer);
    }
    const onBody = (chunk: Buffer) => {
      bodyBytes += chunk.length;
      if (bodyBytes > limits.bodyLimitBytes) {
        finish(createError('INGEST_BODY_TOO_LARGE', `the body is over the limit of ${limits.bodyLimitBytes} bytes${decoder ? ' once decompressed' : ''}`));
        return;
      }
      chunks.push(chunk);
    };
    function onWire(chunk: Buffer | string) {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      wireBytes += data.length;
      if (wireBytes > wireLimit) {
        finish(createError('INGEST_BODY_TOO_LARGE', `the body is over the limit of ${wireLimit} bytes${decoder ? ' compressed' : ''}`));
        return;
      }
      if (!decoder) onBody(data);
      // Inflation is paced by the wire: a small compressed chunk can only expand so far per write.
      else if (!decoder.write(data)) {
        payload.pause();
        decoder.once('drain', () => {
          if (!settled) payload.resume();
        });
      }
    }
    function onWireEnd() {
      if (decoder) decoder.end();
      else finish(undefined, Buffer.concat(chunks, bodyBytes));
    }
    function onWireError(err: Error) {
      finish(createError('INGEST_BAD_BODY', err.message.slice(0, 200), { cause: err }));
    }
    function onAborted() {
      finish(createError('INGEST_BAD_BODY', 'the client closed the connection before the body was complete'));
    }
    if (decoder) {
      decoder.on('data', onBody);
      decoder.on('end', () => finish(undefined, Buffer.concat(chunks, bodyBytes)));
      decoder.on('error', (err) => finish(createError('INGEST_BAD_ENCODING', `the body is not valid gzip/deflate data: ${err.message}`.slice(0, 300), { cause: err })));
    }
    payload.on('data', onWire);
    payload.on('end', onWireEnd);
    payload.on('error', onWireError);
    payload.on('aborted', onAborted);
    payload.resume();
  });
}

/** Records of one body, ready for the ingestor. */
export interface BodyRecords {
  readonly records: string[];
  /** Refused before parsing (invalid UTF-8, too long, too deep, truncated JSON). */
  readonly rejected: RejectedRecord[];
}

export interface SplitBodyOptions {
  /** Longest record, in bytes (`ingest.maxLineBytes`). */
  readonly maxRecordBytes: number;
  /** Deepest JSON nesting per record (`http.maxJsonDepth`). */
  readonly maxJsonDepth: number;
  /**
   * Most records and rejections in one body (`ingest.maxRecordsPerRequest`); one more throws
   * ZTW_INGEST_TOO_MANY_RECORDS. @default no limit
   */
  readonly maxRecords?: number;
  /** Called with the records (and rejections) each chunk added; may throw to stop splitting. */
  readonly onProgress?: (added: number) => void;
}

/** Records split between two yields to the event loop. */
export const SPLIT_CHUNK_RECORDS = 2000;

/** Lets timers and I/O run before the next chunk of work. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Counts what a body has produced so far against its limit, and reports the growth. */
function createTally(options: SplitBodyOptions, records: string[], rejected: RejectedRecord[]): () => void {
  const max = options.maxRecords ?? Number.POSITIVE_INFINITY;
  let counted = 0;
  return () => {
    const total = records.length + rejected.length;
    if (total > max) throw createError('INGEST_TOO_MANY_RECORDS', `the body holds more than ${max} records; split it into several requests`);
    if (total > counted) {
      const added = total - counted;
      counted = total;
      options.onProgress?.(added);
    }
  };
}

/** True when `text` holds at most `limit` opening brackets (so nests no deeper), found with indexOf. */
function fewOpenings(text: string, limit: number): boolean {
  let n = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i >= 0; i = text.indexOf(bracket, i + 1)) if (++n > limit) return false;
  }
  return true;
}

/** Deepest bracket nesting of `text` outside strings, stopping early once over `limit`. */
export function measureDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth = Math.max(0, depth - 1);
  }
  return max;
}

function cut(text: string): string {
  return text.length <= REJECTED_RAW_CHARS ? text : `${text.slice(0, REJECTED_RAW_CHARS)}…[truncated, ${text.length} characters in all]`;
}

/**
 * Splits a body into records (NDJSON, JSON arrays, pretty-printed objects, text lines: see
 * ingest/records.ts). Lines that are not valid UTF-8 are refused as `invalid_utf8` one by one; the
 * valid lines around them are kept. Records nested deeper than the limit are `json_too_deep`.
 * Works SPLIT_CHUNK_RECORDS records at a time, yielding in between.
 */
export async function splitBody(body: Buffer, options: SplitBodyOptions): Promise<BodyRecords> {
  const records: string[] = [];
  const rejected: RejectedRecord[] = [];
  const tally = createTally(options, records, rejected);
  const take = async (text: string) => {
    const splitter = createRecordSplitter(text, { maxLineBytes: options.maxRecordBytes });
    const fresh: string[] = [];
    while (!splitter.done) {
      fresh.length = 0;
      splitter.next(SPLIT_CHUNK_RECORDS, fresh, rejected);
      for (const record of fresh) {
        if (!fewOpenings(record, options.maxJsonDepth) && measureDepth(record, options.maxJsonDepth) > options.maxJsonDepth) rejected.push({ raw: cut(record), reason: 'json_too_deep' });
        else records.push(record);
      }
      tally();
      if (!splitter.done) await yieldToEventLoop();
    }
  };
  if (isUtf8(body)) {
    await take(body.toString('utf8'));
    return { records, rejected };
  }
  // Slow path: only a body holding invalid UTF-8 is taken apart line by line.
  let runStart = 0;
  let lineStart = 0;
  let lines = 0;
  while (lineStart < body.length) {
    let lineEnd = body.indexOf(10, lineStart);
    if (lineEnd < 0) lineEnd = body.length;
    const line = body.subarray(lineStart, lineEnd);
    if (!isUtf8(line)) {
      if (lineStart > runStart) await take(body.subarray(runStart, lineStart).toString('utf8'));
      rejected.push({ raw: cut(line.toString('utf8')), reason: 'invalid_utf8' });
      runStart = lineEnd + 1;
    }
    lineStart = lineEnd + 1;
    if (++lines % SPLIT_CHUNK_RECORDS === 0) {
      tally();
      await yieldToEventLoop();
    }
  }
  if (runStart < body.length) await take(body.subarray(runStart).toString('utf8'));
  tally();
  return { records, rejected };
}
