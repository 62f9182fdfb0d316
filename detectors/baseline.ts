// Baseline building blocks shared by the detectors: bounded per-entity history with robust
// statistics (median / MAD / quantiles from simple-statistics, cached because recomputing them for
// every entity in every window would dominate a backtest), exponentially decayed counters, and a
// Poisson tail for "how surprising is this count given the expected rate".
import { gammaln, medianSorted, quantileSorted } from 'simple-statistics';

/** Robust summary of a history. */
export interface RobustStats {
  readonly count: number;
  readonly median: number;
  /** Median absolute deviation (unscaled). */
  readonly mad: number;
  readonly p99: number;
  readonly max: number;
}

const EMPTY_STATS: RobustStats = { count: 0, median: 0, mad: 0, p99: 0, max: 0 };

/** A bounded ring of recent values with cached robust statistics. */
export interface RollingSeries {
  push(value: number): void;
  readonly length: number;
  /** Statistics, recomputed at most every `refreshEvery` pushes. */
  stats(): RobustStats;
}

/** Creates a ring of at most `capacity` values; stats refresh after `refreshEvery` pushes. */
export function createRollingSeries(capacity: number, refreshEvery = 10): RollingSeries {
  const values: number[] = [];
  let next = 0;
  let cached: RobustStats = EMPTY_STATS;
  let pushesSinceRefresh = Infinity;
  return {
    push(value) {
      if (values.length < capacity) values.push(value);
      else {
        values[next] = value;
        next = (next + 1) % capacity;
      }
      pushesSinceRefresh++;
    },
    get length() {
      return values.length;
    },
    stats() {
      if (pushesSinceRefresh >= refreshEvery || (cached.count === 0 && values.length > 0)) {
        cached = computeRobustStats(values);
        pushesSinceRefresh = 0;
      }
      return cached;
    },
  };
}

/** A rolling series that learns with a delay: the lead-up of an incident can be thrown away. */
export interface DelayedSeries extends RollingSeries {
  /** Forgets values not yet learned (call when the entity is flagged). */
  discardPending(): void;
}

/**
 * Values reach the baseline only after `delay` more pushes. Windows just before a detection are
 * often the attack ramping up (a slow scan, a probe gathering pace); discarding them when the
 * entity is flagged keeps them from raising the bar the attack then has to clear.
 */
export function createDelayedSeries(capacity: number, delay: number, refreshEvery = 10): DelayedSeries {
  const learned = createRollingSeries(capacity, refreshEvery);
  const pending: number[] = [];
  return {
    push(value) {
      pending.push(value);
      while (pending.length > delay) learned.push(pending.shift() as number);
    },
    get length() {
      return learned.length;
    },
    stats: () => learned.stats(),
    discardPending() {
      pending.length = 0;
    },
  };
}

/** Median, MAD, p99 and max of `values` (any order). */
export function computeRobustStats(values: readonly number[]): RobustStats {
  if (values.length === 0) return EMPTY_STATS;
  const sorted = [...values].sort((a, b) => a - b);
  const median = medianSorted(sorted);
  const deviations = sorted.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
  return {
    count: sorted.length,
    median,
    mad: medianSorted(deviations),
    p99: quantileSorted(sorted, 0.99),
    max: sorted[sorted.length - 1] as number,
  };
}

/** Robust z-score: distance from the median in scaled MADs, with a floor so flat baselines stay sane. */
export function computeRobustZ(value: number, stats: RobustStats, relativeFloor = 0.05): number {
  const spread = Math.max(1.4826 * stats.mad, relativeFloor * Math.abs(stats.median), 1e-9);
  return (value - stats.median) / spread;
}

/** A counter whose past fades with a half-life in event time (per-entity baseline rates). */
export interface DecayedSum {
  value: number;
  atMs: number;
}

/** Adds `amount` at event time `atMs`, first decaying what was there. */
export function addDecayed(sum: DecayedSum, amount: number, atMs: number, halfLifeMs: number): void {
  sum.value = readDecayed(sum, atMs, halfLifeMs) + amount;
  sum.atMs = Math.max(sum.atMs, atMs);
}

/** The value as of `atMs`. */
export function readDecayed(sum: DecayedSum, atMs: number, halfLifeMs: number): number {
  const elapsed = atMs - sum.atMs;
  return elapsed <= 0 ? sum.value : sum.value * Math.pow(0.5, elapsed / halfLifeMs);
}

/**
 * −log10 P(X ≥ k) for X ~ Poisson(λ): how surprising `k` events are when `lambda` were expected.
 * Summed in log space from k upwards until the terms stop mattering.
 */
export function computePoissonSurprise(k: number, lambda: number): number {
  if (k <= 0) return 0;
  if (lambda <= 0) return 50;
  const logTerm = (i: number) => i * Math.log(lambda) - lambda - gammaln(i + 1);
  const first = logTerm(k);
  let total = 1;
  for (let i = k + 1; i < k + 100_000; i++) {
    const ratio = Math.exp(logTerm(i) - first);
    total += ratio;
    // Past the mode the terms only shrink; stop once they no longer change the sum.
    if (i > lambda && ratio < 1e-12 * total) break;
  }
  const logP = first + Math.log(total);
  return Math.min(50, Math.max(0, -logP / Math.LN10));
}

/** Forgets entries not touched for `maxIdleMs` (bounded memory over long replays). */
export function evictIdle<V extends { lastMs: number }>(map: Map<string, V>, nowMs: number, maxIdleMs: number): void {
  for (const [key, value] of map) if (nowMs - value.lastMs > maxIdleMs) map.delete(key);
}

/** Observed and expected amounts of one rollup bucket, for `findOnsetTs`. */
export interface BucketExcess {
  /** Bucket start, Unix seconds. */
  readonly ts: number;
  readonly observed: number;
  readonly expected: number;
}

/**
 * Onset of the anomalous evidence in a window: the first bucket of the excess still running at the
 * window's end (a one-sided CUSUM of observed − `factor` × expected that restarts at zero), so a
 * background count early in the window does not pass for the start of an incident. Undefined when
 * no excess runs to the end. Buckets may come in any order. With `minShareOfPeak` > 0, the onset
 * is the first bucket of that run whose own excess reaches that share of the run's largest one: on a
 * sparse series (a low-rate edge) nothing drains a slightly large ordinary value, so without it a
 * bucket of noise a minute before the real excess would date the finding.
 */
export function findOnsetTs(buckets: readonly BucketExcess[], factor = 2, minShareOfPeak = 0): number | undefined {
  let sum = 0;
  let run: Array<{ ts: number; excess: number }> = [];
  for (const b of [...buckets].sort((x, y) => x.ts - y.ts)) {
    const excess = b.observed - factor * b.expected;
    sum = Math.max(0, sum + excess);
    if (sum === 0) run = [];
    else run.push({ ts: b.ts, excess });
  }
  if (run.length === 0) return undefined;
  const peak = Math.max(...run.map((r) => r.excess));
  return (run.find((r) => r.excess > 0 && r.excess >= minShareOfPeak * peak) ?? run[0])?.ts;
}
