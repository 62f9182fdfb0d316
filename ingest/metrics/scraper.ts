// The mesh-metrics source: scrapes Istio, Linkerd and Envoy metrics endpoints and turns the growth
// of their counters between two scrapes into aggregate events (`count` = how many requests,
// connections or handshakes the series gained). Meshes that log nothing still show who talks to
// whom, with which identity, over mTLS or not, and how often they are denied.
import type { NormalizedEvent } from '../../core/event.ts';
import { createError } from '../../core/errors.ts';
import { parseExposition, type MetricSample } from './exposition.ts';
import { collectDestinationEdges, computeMeshMetricEvents, selectMeshCounters } from './mesh-counters.ts';

/** One endpoint to scrape. */
export interface ScrapeTarget {
  /** Metrics URL, e.g. `http://10.0.0.5:15090/stats/prometheus` or `http://10.0.0.6:4191/metrics`. */
  readonly url: string;
  /** Time between two scrapes, in seconds. */
  readonly intervalSeconds: number;
}

export interface MetricsScraperOptions {
  readonly targets: readonly ScrapeTarget[];
  /** Receives the events of one scrape; a rejection keeps the old baseline, so the next scrape carries them. */
  readonly emit: (events: NormalizedEvent[]) => Promise<void>;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Clock in ms; event time of metric-derived events is the scrape time. @default Date.now */
  readonly now?: () => number;
  /** Longest wait for one scrape, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
  /** Largest metrics body read, in bytes. @default 33554432 */
  readonly maxBodyBytes?: number;
  /** Told about every failed scrape (unreachable target, bad status, emit failure). */
  readonly onError?: (url: string, error: Error) => void;
}

/** Counts since start, per scraper. */
export interface ScrapeStats {
  scrapes: number;
  failures: number;
  events: number;
  lastError: string;
}

export interface MetricsScraper {
  /** Scrapes every target now, then each on its own interval. */
  start(): void;
  /** Scrapes every target once and resolves when done (used by `start`, tests and one-shot runs). */
  scrapeOnce(): Promise<void>;
  stats(): Readonly<ScrapeStats>;
  /** Stops the timers and waits for scrapes in flight. */
  close(): Promise<void>;
}

const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=1,*/*;q=0.1';

interface TargetState {
  readonly target: ScrapeTarget;
  previous: MetricSample[] | undefined;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
}

/** Creates a scraper over `targets`; nothing runs until `start()` or `scrapeOnce()`. */
export function createMetricsScraper(options: MetricsScraperOptions): MetricsScraper {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  const states: TargetState[] = options.targets.map((target) => ({ target, previous: undefined, timer: undefined, running: undefined }));
  const destinationEdges = new Set<string>();
  const stats: ScrapeStats = { scrapes: 0, failures: 0, events: 0, lastError: '' };
  let closed = false;
  let started = false;

  async function scrapeTarget(state: TargetState): Promise<void> {
    const { url } = state.target;
    try {
      const response = await fetchImpl(url, { headers: { accept: ACCEPT }, signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw createError('INGEST_SCRAPE_FAILED', `${url} answered HTTP ${response.status}`);
      const declared = Number(response.headers.get('content-length') ?? 0);
      if (declared > maxBodyBytes) throw createError('INGEST_SCRAPE_FAILED', `${url} body of ${declared} bytes exceeds ${maxBodyBytes}`);
      const text = await response.text();
      if (text.length > maxBodyBytes) throw createError('INGEST_SCRAPE_FAILED', `${url} body exceeds ${maxBodyBytes} bytes`);
      const current = selectMeshCounters(parseExposition(text).samples);
      for (const edge of collectDestinationEdges(current)) destinationEdges.add(edge);
      const timeMs = now();
      const events = computeMeshMetricEvents(state.previous, current, { timeMs, targetUrl: url, destinationEdges });
      if (events.length > 0) await options.emit(events);
      // Only now: a failed emit keeps the old baseline, and the next scrape carries the growth.
      state.previous = current;
      stats.scrapes++;
      stats.events += events.length;
    } catch (cause) {
      stats.failures++;
      const error =
        cause instanceof Error && 'code' in cause && typeof cause.code === 'string' && cause.code.startsWith('ZTW_')
          ? cause
          : createError('INGEST_SCRAPE_FAILED', `${url}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      stats.lastError = error.message;
      options.onError?.(url, error);
    }
  }

  function runTarget(state: TargetState): Promise<void> {
    if (!state.running) {
      state.running = scrapeTarget(state).finally(() => {
        state.running = undefined;
      });
    }
    return state.running;
  }

  function schedule(state: TargetState): void {
    if (closed) return;
    state.timer = setTimeout(() => {
      void runTarget(state).then(() => schedule(state));
    }, Math.max(0.05, state.target.intervalSeconds) * 1000);
    state.timer.unref();
  }

  return {
    start() {
      if (started || closed) return;
      started = true;
      for (const state of states) void runTarget(state).then(() => schedule(state));
    },
    async scrapeOnce() {
      await Promise.all(states.map((state) => runTarget(state)));
    },
    stats() {
      return { ...stats };
    },
    async close() {
      closed = true;
      for (const state of states) clearTimeout(state.timer);
      await Promise.all(states.map((state) => state.running));
    },
  };
}
