// The ingest pipeline shared by every collector (HTTP, files, backtest): parse each record with
// the format's parser, give accepted events their id, publish them keyed by destination service,
// and dead-letter the rest with their reason. Nothing valid is lost because a neighbour was bad.
import { randomUUID } from 'node:crypto';
import { repairEvent, type DeadLetter, type NormalizedEvent, type ParseOptions, type Parser } from '../core/event.ts';
import { codeOf, createError } from '../core/errors.ts';
import type { Metrics } from '../core/metrics.ts';
import { TOPICS, type Bus, type BusMessage } from '../bus/port.ts';
import { PARSERS, SKIP_REASONS, detectFormat } from './parsers/index.ts';

/** Formats accepted by `ingest`: a registered parser name, or `auto` to detect per record. */
export const AUTO_FORMAT = 'auto';

export interface IngestError {
  /** Position of the record in the request or file chunk. */
  readonly index: number;
  readonly reason: string;
}

export interface IngestResult {
  readonly accepted: number;
  readonly rejected: number;
  /** Records that are expected to carry no event (counted, not dead-lettered). */
  readonly skipped: number;
  /** The first few rejections, for the caller to show. */
  readonly errors: readonly IngestError[];
}

export interface Ingestor {
  /**
   * Parses and publishes `records`. `rejected` are records already refused upstream (too long,
   * bad encoding) that still belong on the dead-letter path. Resolves once the bus holds them.
   */
  ingest(format: string, records: readonly string[], rejected?: ReadonlyArray<{ raw: string; reason: string }>): Promise<IngestResult>;
  /** Parses without publishing (backtest, dry runs). */
  parse(format: string, records: readonly string[], observedTimeMs: number): ParsedBatch;
  /** Publishes events built elsewhere (metric scrapes), giving each its id and observed time. */
  ingestEvents(events: NormalizedEvent[]): Promise<IngestResult>;
}

export interface IngestorOptions {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly parseOptions?: ParseOptions;
  /** Clock for observed time, in ms. @default Date.now */
  readonly now?: () => number;
  /** Errors reported back per call at most. @default 10 */
  readonly maxErrors?: number;
  /**
   * Furthest an event's time may lie ahead of its observed time, in ms; later events are
   * dead-lettered as `time_in_future` (config `ingest.maxFutureSeconds`). @default 600000
   */
  readonly maxFutureMs?: number;
  /**
   * Events older than this at arrival, in ms, would be dropped by the store's TTL as they are
   * inserted: they are dead-lettered as `outside_retention` instead (config
   * `clickhouse.retentionDays`). @default no limit (backtests keep recorded files whole)
   */
  readonly retentionMs?: number;
}

/** Reason of an event whose time lies too far ahead of its arrival. */
export const TIME_IN_FUTURE = 'time_in_future';
/** Reason of an event older than the store keeps events. */
export const OUTSIDE_RETENTION = 'outside_retention';
/** Records parsed between two yields to the event loop. */
const PARSE_CHUNK_RECORDS = 2000;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface ParsedBatch {
  readonly events: NormalizedEvent[];
  readonly deadLetters: DeadLetter[];
  readonly errors: IngestError[];
  /** Expected non-events, by reason. */
  readonly skipped: Map<string, number>;
}

/** Longest raw text kept in a dead letter, in characters. */
const DEAD_LETTER_RAW_CHARS = 64 * 1024;

/** True when `format` names a parser or `auto`. */
export function isKnownFormat(format: string): boolean {
  return format === AUTO_FORMAT || Object.hasOwn(PARSERS, format);
}

function resolveParser(format: string, record: string): { parser: Parser; name: string } | undefined {
  const name = format === AUTO_FORMAT ? detectFormat(record) : format;
  const entry = name === undefined ? undefined : PARSERS[name];
  return entry && name !== undefined ? { parser: entry.parse, name } : undefined;
}

/** Creates the pipeline over a bus. */
export function createIngestor(options: IngestorOptions): Ingestor {
  const { bus, metrics } = options;
  const now = options.now ?? Date.now;
  const maxErrors = options.maxErrors ?? 10;
  const maxFutureMs = options.maxFutureMs ?? 600_000;
  const stage = metrics.stage('collector');

  const retentionMs = options.retentionMs ?? Number.POSITIVE_INFINITY;

  /** Why a parsed event is refused by time, if it is. */
  const refuseByTime = (timeMs: number, observedTimeMs: number): string | undefined => {
    if (timeMs > observedTimeMs + maxFutureMs) return TIME_IN_FUTURE;
    if (timeMs < observedTimeMs - retentionMs) return OUTSIDE_RETENTION;
    return undefined;
  };

  /** Parses records[from, to) into `batch`. */
  const parseRange = (format: string, records: readonly string[], from: number, to: number, observedTimeMs: number, batch: ParsedBatch): void => {
    const { events, deadLetters, errors, skipped } = batch;
    for (let i = from; i < to; i++) {
      const record = records[i] as string;
      const resolved = resolveParser(format, record);
      let result = resolved
        ? resolved.parser(record, observedTimeMs, options.parseOptions)
        : ({ ok: false, reason: 'unknown_format' } as const);
      if (result.ok) {
        const refused = refuseByTime(result.event.time, observedTimeMs);
        if (refused) result = { ok: false, reason: refused };
      }
      if (result.ok) {
        repairEvent(result.event);
        result.event.event_id = randomUUID();
        result.event.observed_time = observedTimeMs;
        events.push(result.event);
      } else if (SKIP_REASONS.has(result.reason)) {
        skipped.set(result.reason, (skipped.get(result.reason) ?? 0) + 1);
      } else {
        deadLetters.push({ observed_time: observedTimeMs, source: resolved?.name ?? format, reason: result.reason, raw: record.slice(0, DEAD_LETTER_RAW_CHARS) });
        if (errors.length < maxErrors) errors.push({ index: i, reason: result.reason });
      }
    }
  };

  const parse: Ingestor['parse'] = (format, records, observedTimeMs) => {
    if (!isKnownFormat(format)) throw createError('INGEST_UNKNOWN_SOURCE', format);
    const batch: ParsedBatch = { events: [], deadLetters: [], errors: [], skipped: new Map() };
    parseRange(format, records, 0, records.length, observedTimeMs, batch);
    return batch;
  };

  const publish = async (events: NormalizedEvent[], deadLetters: DeadLetter[]): Promise<void> => {
    const eventMessages: BusMessage[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as NormalizedEvent;
      // The event itself travels along: an in-process sink stores `value` without parsing it again.
      eventMessages.push({ key: e.dst_service, value: JSON.stringify(e), payload: e });
      if ((i + 1) % PARSE_CHUNK_RECORDS === 0) await yieldToEventLoop();
    }
    const letterMessages: BusMessage[] = deadLetters.map((d) => ({ key: d.source, value: JSON.stringify(d) }));
    try {
      await Promise.all([
        eventMessages.length > 0 ? bus.publish(TOPICS.events, eventMessages) : undefined,
        letterMessages.length > 0 ? bus.publish(TOPICS.deadLetters, letterMessages) : undefined,
      ]);
    } catch (err) {
      stage.error(codeOf(err, 'ZTW_BUS_UNAVAILABLE'));
      throw err;
    }
    stage.sent(events.length);
    for (const d of deadLetters) {
      stage.dropped(d.reason);
      metrics.deadLetters.inc({ source: d.source, reason: d.reason });
    }
  };

  return {
    parse,
    async ingest(format, records, rejected = []) {
      const observed = now();
      if (!isKnownFormat(format)) throw createError('INGEST_UNKNOWN_SOURCE', format);
      const batch: ParsedBatch = { events: [], deadLetters: [], errors: [], skipped: new Map() };
      // A chunk at a time, so one large request does not hold the event loop.
      for (let from = 0; from < records.length; from += PARSE_CHUNK_RECORDS) {
        if (from > 0) await yieldToEventLoop();
        parseRange(format, records, from, Math.min(records.length, from + PARSE_CHUNK_RECORDS), observed, batch);
      }
      const { events, deadLetters, errors, skipped } = batch;
      for (const r of rejected) {
        deadLetters.push({ observed_time: observed, source: format, reason: r.reason, raw: r.raw.slice(0, DEAD_LETTER_RAW_CHARS) });
        if (errors.length < maxErrors) errors.push({ index: -1, reason: r.reason });
      }
      stage.received(records.length + rejected.length);
      await publish(events, deadLetters);
      let skippedCount = 0;
      for (const [reason, count] of skipped) {
        stage.dropped(reason, count);
        skippedCount += count;
      }
      return { accepted: events.length, rejected: deadLetters.length, skipped: skippedCount, errors };
    },
    async ingestEvents(built) {
      const observed = now();
      const events: NormalizedEvent[] = [];
      const deadLetters: DeadLetter[] = [];
      const errors: IngestError[] = [];
      for (let i = 0; i < built.length; i++) {
        const e = built[i] as NormalizedEvent;
        const refused = refuseByTime(e.time, observed);
        if (refused) {
          deadLetters.push({ observed_time: observed, source: e.source, reason: refused, raw: (e.raw || JSON.stringify(e)).slice(0, DEAD_LETTER_RAW_CHARS) });
          if (errors.length < maxErrors) errors.push({ index: i, reason: refused });
          continue;
        }
        repairEvent(e);
        e.event_id = randomUUID();
        e.observed_time = observed;
        events.push(e);
      }
      stage.received(built.length);
      await publish(events, deadLetters);
      return { accepted: events.length, rejected: deadLetters.length, skipped: 0, errors };
    },
  };
}
