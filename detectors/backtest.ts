// Backtest (DESIGN §6): replays recorded records through the same path as live traffic — the
// ingest parsers, the bus, the sink with its tamper-evidence chain, the store (events, rollups)
// and the detector engine — in event-time order, on a temporary embedded store, with no
// wall-clock waits. Files are read as streams and merged by event time: the source furthest
// behind is always read next, and events are released to the bus only once every source has
// moved past them (mild disorder inside a file is sorted out). The bus acknowledges a release once
// the sink has stored it; only then do the detectors advance over it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Anomaly } from '../core/anomaly.ts';
import { buildConfig, type FrozenConfig } from '../core/config.ts';
import type { DeadLetter, NormalizedEvent } from '../core/event.ts';
import { createMetrics, type Metrics } from '../core/metrics.ts';
import { createStore, type Store } from '../store/client.ts';
import { createBusSinkPath } from '../store/sink-with-chain.ts';
import { createDetectorEngine } from './engine.ts';

/**
 * Parses records of one format into events and dead letters: the ingest pipeline's `parse`,
 * handed in by the caller (the detectors stage does not import ingest; DESIGN §1).
 */
export type RecordParser = (format: string, records: readonly string[], observedTimeMs: number) => { events: NormalizedEvent[]; deadLetters: DeadLetter[] };

/** Records of one format, as read from a source. */
export interface RecordGroup {
  readonly format: string;
  readonly records: readonly string[];
  /** Format to try again, per record, for records `format` rejected (a file detected as a whole). */
  readonly fallbackFormat?: string;
}

/** A stream of records in (roughly) event-time order: a file, or generated traffic. */
export interface ReplaySource {
  readonly name: string;
  /** The next records, or undefined at the end. */
  next(): Promise<{ groups: RecordGroup[]; rejected: Array<{ raw: string; reason: string }> } | undefined>;
  close?(): Promise<void>;
}

/** Where a replay stands, for progress output. */
export interface ReplayProgress {
  readonly events: number;
  readonly deadLetters: number;
  readonly anomalies: number;
  /** Newest event time released to the store, in ms. */
  readonly eventTimeMs: number;
  readonly wallSeconds: number;
  readonly eventsPerSecond: number;
}

export interface ReplayOptions {
  readonly store: Store;
  readonly config: FrozenConfig;
  readonly sources: readonly ReplaySource[];
  readonly parse: RecordParser;
  readonly metrics?: Metrics;
  /** Called about once a second and at the end. */
  readonly onProgress?: (progress: ReplayProgress) => void;
  readonly onAnomaly?: (anomaly: Anomaly, change: 'opened' | 'updated' | 'resolved') => void;
  /** Events buffered before a release to the bus. @default 50000 */
  readonly flushEvents?: number;
}

export interface ReplayResult {
  readonly events: number;
  readonly deadLetters: number;
  /** Dead letters by reason, most frequent first. */
  readonly deadLetterReasons: Record<string, number>;
  /** Events that arrived after the detectors had already passed their time. */
  readonly lateEvents: number;
  /** Every anomaly in its final lifecycle state, by first_seen. */
  readonly anomalies: Anomaly[];
  /** Event time of the first and last event, in ms (0 when there were none). */
  readonly firstEventMs: number;
  readonly lastEventMs: number;
  readonly wallSeconds: number;
  readonly eventsPerSecond: number;
}


/** Replays `sources` into a migrated `store` and runs the detectors over them; see the file comment. */
export async function replayIntoStore(options: ReplayOptions): Promise<ReplayResult> {
  const { store, config } = options;
  const metrics = options.metrics ?? createMetrics();
  const flushEvents = options.flushEvents ?? 50_000;
  const toleranceMs = config.detectors.allowedLatenessSeconds * 1000;
  const latest = new Map<string, Anomaly>();
  const engine = createDetectorEngine({
    store,
    metrics,
    config,
    onAnomaly: (a, change) => {
      latest.set(a.id, a);
      options.onAnomaly?.(a, change);
    },
  });

  // The live path: bus → sink with its chain → store; each write resolves once stored.
  const path = await createBusSinkPath({ store, metrics, config, maxInFlightMessages: Math.max(2 * flushEvents, 100_000) });

  const started = performance.now();
  const states = options.sources.map((source) => ({ source, done: false, maxTimeMs: -Infinity }));
  let pending: NormalizedEvent[] = [];
  let events = 0;
  let deadLetters = 0;
  let lateEvents = 0;
  const reasons = new Map<string, number>();
  let firstEventMs = Infinity;
  let lastEventMs = -Infinity;
  let releasedUpToMs = -Infinity;
  let lastProgressMs = 0;

  const progress = (force = false): void => {
    const now = performance.now();
    if (!options.onProgress || (!force && now - lastProgressMs < 1000)) return;
    lastProgressMs = now;
    const wallSeconds = (now - started) / 1000;
    options.onProgress({ events, deadLetters, anomalies: latest.size, eventTimeMs: Number.isFinite(lastEventMs) ? Math.min(lastEventMs, releasedUpToMs) : 0, wallSeconds, eventsPerSecond: events / Math.max(wallSeconds, 1e-3) });
  };

  const storeDeadLetters = async (letters: DeadLetter[]): Promise<void> => {
    if (letters.length === 0) return;
    deadLetters += letters.length;
    for (const d of letters) reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
    await path.storeDeadLetters(letters);
  };

  // Stores and detector runs overlap with reading and parsing the next records: at most one
  // release is in flight, and it is awaited before the next one starts.
  let inFlight: Promise<void> = Promise.resolve();
  const release = async (safeMs: number): Promise<void> => {
    const ready: NormalizedEvent[] = [];
    const rest: NormalizedEvent[] = [];
    for (const e of pending) (e.time <= safeMs ? ready : rest).push(e);
    pending = rest;
    if (ready.length === 0) return;
    ready.sort((a, b) => a.time - b.time);
    for (const e of ready) if (e.time < releasedUpToMs - toleranceMs) lateEvents++;
    const newest = (ready[ready.length - 1] as NormalizedEvent).time;
    releasedUpToMs = Math.max(releasedUpToMs, Number.isFinite(safeMs) ? safeMs : newest);
    const watermarkMs = Math.min(releasedUpToMs, lastEventMs) - toleranceMs;
    await inFlight;
    inFlight = (async () => {
      await path.storeEvents(ready);
      events += ready.length;
      await engine.advanceTo(watermarkMs);
      progress();
    })();
  };

  try {
    for (;;) {
      const open = states.filter((s) => !s.done);
      if (open.length === 0) break;
      // Read from the source furthest behind in event time, so every source advances together.
      const state = open.reduce((a, b) => (b.maxTimeMs < a.maxTimeMs ? b : a));
      const chunk = await state.source.next();
      if (!chunk) {
        state.done = true;
        await state.source.close?.();
      } else {
        const observed = Date.now();
        const letters: DeadLetter[] = chunk.rejected.map((r) => ({ observed_time: observed, source: state.source.name, reason: r.reason, raw: r.raw }));
        for (const group of chunk.groups) {
          const parsed = options.parse(group.format, group.records, observed);
          let parsedEvents = parsed.events;
          if (group.fallbackFormat !== undefined && parsed.deadLetters.length > 0) {
            // A mixed file: what the file's format refused gets a second chance, detected per record.
            const again = options.parse(group.fallbackFormat, parsed.deadLetters.map((d) => d.raw), observed);
            parsedEvents = parsedEvents.concat(again.events);
            letters.push(...again.deadLetters);
          } else letters.push(...parsed.deadLetters);
          for (const e of parsedEvents) {
            pending.push(e);
            if (e.time > state.maxTimeMs) state.maxTimeMs = e.time;
            if (e.time < firstEventMs) firstEventMs = e.time;
            if (e.time > lastEventMs) lastEventMs = e.time;
          }
        }
        await storeDeadLetters(letters);
      }
      const stillOpen = states.filter((s) => !s.done);
      const safeMs = stillOpen.length === 0 ? Infinity : Math.min(...stillOpen.map((s) => s.maxTimeMs)) - toleranceMs;
      if (pending.length >= flushEvents || stillOpen.length === 0) await release(safeMs);
    }
    await release(Infinity);
    await inFlight;
  } finally {
    // A failed release must not leave its promise unobserved.
    await inFlight.catch(() => undefined);
    await path.close();
  }
  if (Number.isFinite(lastEventMs)) await engine.finish(lastEventMs);
  progress(true);
  const wallSeconds = (performance.now() - started) / 1000;
  return {
    events,
    deadLetters,
    deadLetterReasons: Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])),
    lateEvents,
    anomalies: [...latest.values()].sort((a, b) => a.first_seen.localeCompare(b.first_seen) || a.id.localeCompare(b.id)),
    firstEventMs: Number.isFinite(firstEventMs) ? firstEventMs : 0,
    lastEventMs: Number.isFinite(lastEventMs) ? lastEventMs : 0,
    wallSeconds,
    eventsPerSecond: events / Math.max(wallSeconds, 1e-3),
  };
}

export interface BacktestOptions {
  /** Opens the sources once the temporary store's config is known (it sets `ingest.maxLineBytes`). */
  readonly openSources: (config: FrozenConfig) => ReplaySource[];
  readonly parse: RecordParser;
  /** Configuration (detector options); its store settings are replaced by a temporary embedded store. */
  readonly config: FrozenConfig;
  /** Where the temporary store lives: a fresh directory under the OS temp dir, or ':memory:'. @default 'temp' */
  readonly storage?: 'temp' | ':memory:';
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** Called for every anomaly lifecycle change, in event-time order (e.g. to correlate incidents). */
  readonly onAnomaly?: (anomaly: Anomaly, change: 'opened' | 'updated' | 'resolved') => void;
}

/** Runs a backtest over sources (files) on a temporary embedded store, removed at the end. */
export async function runBacktest(options: BacktestOptions): Promise<ReplayResult> {
  const dataDir = options.storage === ':memory:' ? ':memory:' : await mkdtemp(join(tmpdir(), 'ztwatch-backtest-'));
  const base = structuredClone(options.config) as unknown as Record<string, unknown>;
  const config = buildConfig({
    ...base,
    dataDir,
    clickhouse: { ...(base.clickhouse as Record<string, unknown>), url: '', cluster: '', database: `backtest_${process.pid}_${Date.now().toString(36)}`, retentionDays: 20_000, anomalyRetentionDays: 20_000, deadLetterRetentionDays: 20_000 },
  });
  const store = createStore(config);
  try {
    await store.migrate();
    return await replayIntoStore({
      store,
      config,
      sources: options.openSources(config),
      parse: options.parse,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onAnomaly ? { onAnomaly: options.onAnomaly } : {}),
    });
  } finally {
    try {
      await store.command(`DROP DATABASE IF EXISTS ${store.database}`);
    } finally {
      await store.close();
      if (dataDir !== ':memory:') await rm(dataDir, { recursive: true, force: true });
    }
  }
}
