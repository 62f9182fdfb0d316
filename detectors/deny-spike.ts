// deny_spike: denials (RBAC 403, ext_authz/UAEX, OPA false, Hubble POLICY_DENIED, Linkerd authz)
// far above their own baseline, per edge, and per destination or source when no single edge
// explains them. The baseline is a decayed deny ratio, so traffic growth at a constant ratio raises
// the expectation with it, and a steady background rate is simply part of the expectation.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, computePoissonSurprise, createDelayedSeries, evictIdle, readDecayed, type DecayedSum, type DelayedSeries } from './baseline.ts';
import {
  BUCKET_RANGE_SQL,
  formatEdgeSubject,
  raiseSeverity,
  roundNumber,
  type Candidate,
  type DetectorDefinition,
  type DetectorRunner,
} from './detector.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';

export const DenySpikeOptions = Type.Object(
  {
    /** Short window, in seconds: fast detection on busy entities; baselines are learned per short window. @default 60 */
    shortWindowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 60 }),
    /** Long window, in seconds: lets quiet entities accumulate evidence (a low-rate edge fully denied). @default 300 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 300 }),
    /** Fewest denials in a window before anything is flagged. @default 5 */
    minDenies: Type.Integer({ minimum: 1, default: 5 }),
    /** Observed denials must be at least this many times the expected count. @default 4 */
    minRatio: Type.Number({ minimum: 1, default: 4 }),
    /** Poisson surprise, −log10 p, the count must reach. @default 6 */
    minSurpriseLog10: Type.Number({ minimum: 0, default: 6 }),
    /** Event time an entity must have been seen before it is judged, so a young baseline cannot page, in seconds. @default 1800 */
    minBaselineSeconds: Type.Integer({ minimum: 0, default: 1800 }),
    /** Half-life of the learned deny ratio, in seconds. @default 21600 */
    halfLifeSeconds: Type.Integer({ minimum: 60, default: 21_600 }),
    /** Deny ratio assumed before an entity has history. @default 0.01 */
    priorDenyRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.01 }),
    /** Weight of that prior, in requests. @default 50 */
    priorRequests: Type.Number({ minimum: 0, default: 50 }),
  },
  { additionalProperties: false },
);
type Options = typeof DenySpikeOptions.static;

/** One rollup row: requests and denials of one edge in one 10 s bucket. */
export interface DenySpikeRow {
  ts: number;
  src_key: string;
  dst_key: string;
  dst_namespace: string;
  requests: number;
  denies: number;
}

interface EntityState {
  requests: DecayedSum;
  denies: DecayedSum;
  /** Denials per window, for windows the entity was active in. */
  history: DelayedSeries;
  lastMs: number;
}

interface Tally {
  src: string | null;
  dst: string | null;
  dstNamespace: string;
  requests: number;
  denies: number;
  firstDenyTs: number;
}

type Level = 'edge' | 'destination' | 'source';

/** Windows a value waits before it becomes baseline (see createDelayedSeries). */
const LEARN_DELAY_WINDOWS = 15;

/** Scores are capped: against a near-zero baseline the ratio says nothing more past this. */
const MAX_SCORE = 1000;

function createTallies(): Map<string, Tally> {
  return new Map();
}

function addToTally(map: Map<string, Tally>, key: string, src: string | null, dst: string | null, row: DenySpikeRow): void {
  let tally = map.get(key);
  if (!tally) {
    tally = { src, dst, dstNamespace: row.dst_namespace, requests: 0, denies: 0, firstDenyTs: Infinity };
    map.set(key, tally);
  }
  tally.requests += row.requests;
  tally.denies += row.denies;
  if (row.dst_namespace && !tally.dstNamespace) tally.dstNamespace = row.dst_namespace;
  if (row.denies > 0 && row.ts < tally.firstDenyTs) tally.firstDenyTs = row.ts;
}

/** Pure scoring of deny spikes; exported for tests. */
export function createDenySpikeRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>, stepSeconds: number): DetectorRunner<DenySpikeRow> {
  const halfLifeMs = options.halfLifeSeconds * 1000;
  // History holds one value per evaluated window the entity was active in.
  const minBaselineWindows = Math.ceil(options.minBaselineSeconds / stepSeconds);
  const states: Record<Level, Map<string, EntityState>> = { edge: new Map(), destination: new Map(), source: new Map() };
  let windowsSeen = 0;
  /** When an edge-level finding last named a destination (`d:`) or source (`s:`), event time in ms. */
  const edgeFlaggedAt = new Map<string, number>();

  const stateOf = (level: Level, key: string): EntityState => {
    let state = states[level].get(key);
    if (!state) {
      state = { requests: { value: 0, atMs: 0 }, denies: { value: 0, atMs: 0 }, history: createDelayedSeries(720, LEARN_DELAY_WINDOWS), lastMs: 0 };
      states[level].set(key, state);
    }
    return state;
  };

  const score = (level: Level, key: string, tally: Tally, endMs: number, windowSeconds: number): Candidate | undefined => {
    if (tally.denies < options.minDenies) return undefined;
    const state = states[level].get(key);
    if ((state?.history.length ?? 0) < minBaselineWindows) return undefined;
    const histRequests = state ? readDecayed(state.requests, endMs, halfLifeMs) : 0;
    const histDenies = state ? readDecayed(state.denies, endMs, halfLifeMs) : 0;
    const baselineRatio = (histDenies + options.priorDenyRatio * options.priorRequests) / (histRequests + options.priorRequests);
    const expected = Math.max(tally.requests * baselineRatio, 1e-3);
    const timesExpected = tally.denies / expected;
    if (timesExpected < options.minRatio) return undefined;
    const surprise = computePoissonSurprise(tally.denies, expected);
    if (surprise < options.minSurpriseLog10) return undefined;
    // Bursty-but-normal entities: the count must also clear its own past windows by the same factor.
    // The p99 of past short windows only compares with a short window.
    const past = state?.history.stats();
    if (windowSeconds === options.shortWindowSeconds && past && past.count >= 10 && tally.denies < options.minRatio * past.p99) return undefined;

    let severity: Severity = 'medium';
    if (sensitiveNamespaces.has(tally.dstNamespace)) severity = raiseSeverity(severity);
    if (timesExpected >= 20 && tally.denies >= 50) severity = raiseSeverity(severity);
    const subject = level === 'edge' ? formatEdgeSubject(tally.src ?? '', tally.dst ?? '') : level === 'destination' ? (tally.dst ?? '') : (tally.src ?? '');
    const who = level === 'edge' ? `from ${tally.src} to ${tally.dst}` : level === 'destination' ? `at ${tally.dst}` : `of ${tally.src}`;
    return {
      subject,
      src: tally.src,
      dst: tally.dst,
      severity,
      score: roundNumber(Math.min(timesExpected, MAX_SCORE)),
      summary: `Denials ${who}: ${tally.denies} of ${tally.requests} requests in ${windowSeconds} s, ${roundNumber(timesExpected)}× the ${roundNumber(expected)} expected from a ${roundNumber(baselineRatio * 100)}% baseline deny ratio.`,
      evidence: {
        level,
        window_seconds: windowSeconds,
        requests: tally.requests,
        denies: tally.denies,
        deny_ratio: roundNumber(tally.denies / Math.max(1, tally.requests)),
        baseline_deny_ratio: Number(baselineRatio.toFixed(5)),
        baseline_requests: roundNumber(histRequests),
        expected_denies: Number(expected.toFixed(3)),
        times_expected: roundNumber(timesExpected),
        surprise_log10: roundNumber(surprise),
        baseline_p99_denies: past ? roundNumber(past.p99) : null,
        dst_namespace: tally.dstNamespace || null,
      },
      firstEvidenceMs: tally.firstDenyTs === Infinity ? endMs - windowSeconds * 1000 : tally.firstDenyTs * 1000,
    };
  };

  const learn = (level: Level, key: string, tally: Tally, endMs: number): void => {
    const state = stateOf(level, key);
    addDecayed(state.requests, tally.requests, endMs, halfLifeMs);
    addDecayed(state.denies, tally.denies, endMs, halfLifeMs);
    state.history.push(tally.denies);
    state.lastMs = endMs;
  };

  return {
    evaluate(window, rows) {
      const shortFromTs = (window.endMs - options.shortWindowSeconds * 1000) / 1000;
      const tallies = (from: number) => {
        const edges = createTallies();
        const destinations = createTallies();
        const sources = createTallies();
        for (const row of rows) {
          if (row.ts < from) continue;
          addToTally(edges, `${row.src_key}\u0000${row.dst_key}`, row.src_key, row.dst_key, row);
          addToTally(destinations, row.dst_key, null, row.dst_key, row);
          addToTally(sources, row.src_key, row.src_key, null, row);
        }
        return { edge: edges, destination: destinations, source: sources } as const;
      };
      const short = tallies(shortFromTs);
      const long = options.windowSeconds > options.shortWindowSeconds ? tallies(-Infinity) : undefined;
      const flagged = new Map<string, Candidate>();
      for (const level of ['edge', 'destination', 'source'] as const) {
        for (const [key, tally] of short[level]) {
          const c = score(level, key, tally, window.endMs, options.shortWindowSeconds);
          if (c) flagged.set(`${level}:${key}`, c);
        }
        for (const [key, tally] of long?.[level] ?? []) {
          if (flagged.has(`${level}:${key}`)) continue;
          const c = score(level, key, tally, window.endMs, options.windowSeconds);
          if (c) flagged.set(`${level}:${key}`, c);
        }
      }
      // An edge explains its destination's and its source's totals, for as long as its denials
      // are still inside the long window.
      const candidates: Candidate[] = [];
      for (const [key, c] of flagged) {
        if (!key.startsWith('edge:')) continue;
        candidates.push(c);
        edgeFlaggedAt.set(`d:${c.dst}`, window.endMs);
        edgeFlaggedAt.set(`s:${c.src}`, window.endMs);
      }
      const explained = (key: string) => window.endMs - (edgeFlaggedAt.get(key) ?? -Infinity) <= options.windowSeconds * 1000;
      for (const [key, c] of flagged) {
        if (key.startsWith('destination:') && !explained(`d:${c.dst}`)) candidates.push(c);
        if (key.startsWith('source:') && !explained(`s:${c.src}`)) candidates.push(c);
      }
      // Learn (per short window) only from windows that were not anomalous, so an incident does not become the baseline.
      for (const level of ['edge', 'destination', 'source'] as const) {
        for (const [key, tally] of short[level]) {
          if (!flagged.has(`${level}:${key}`)) learn(level, key, tally, window.endMs);
          else states[level].get(key)?.history.discardPending();
        }
      }
      if (++windowsSeen % 360 === 0) {
        for (const map of Object.values(states)) evictIdle(map, window.endMs, 8 * halfLifeMs);
        for (const [key, at] of edgeFlaggedAt) if (window.endMs - at > options.windowSeconds * 1000) edgeFlaggedAt.delete(key);
      }
      return candidates;
    },
  };
}

/** The deny_spike detector. */
export const denySpike: DetectorDefinition<DenySpikeRow, typeof DenySpikeOptions> = {
  name: 'deny_spike',
  description: 'denials per edge, destination or source far above their own baseline deny ratio',
  optionsSchema: DenySpikeOptions,
  explains: [],
  // One request may be logged by several vantage points (sidecar, OPA, Hubble): per edge and
  // bucket, the busiest one counts, so a denial seen twice is not two denials.
  query: (database) => `
    SELECT ts, src_key, dst_key, max(ns) AS dst_namespace, max(r) AS requests, max(d) AS denies
    FROM (
      SELECT toUInt32(ts) AS ts, src_key, dst_key, source, max(dst_namespace) AS ns,
             toFloat64(sum(requests)) AS r, toFloat64(sum(denies)) AS d
      FROM ${database}.detector_edge_10s
      WHERE ${BUCKET_RANGE_SQL}
      GROUP BY ts, src_key, dst_key, source)
    GROUP BY ts, src_key, dst_key`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createDenySpikeRunner(options, context.sensitiveNamespaces, context.stepSeconds),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.src, dst: candidate.dst, where: "decision = 'deny'" });
    return {
      sample_request_ids: pickRequestIds(events),
      policies: countValues(events.map((e) => e.decision_reason)),
      reported_by: countValues(events.map((e) => e.source)),
      statuses: countValues(events.map((e) => String(e.status))),
    };
  },
};
