// deny_spike: denials (RBAC 403, ext_authz/UAEX, OPA false, Hubble POLICY_DENIED, Linkerd authz)
// far above their own baseline, per edge, and per destination or source when no single edge
// explains them. The baseline is a decayed deny ratio, so traffic growth at a constant ratio raises
// the expectation with it, and a steady background rate is simply part of the expectation; the bar
// of past windows' counts scales with the entity's current requests, so it follows the daily shape.
// A destination-level finding names its top sources and their share (src when one source holds
// most of the denials; evidence `actors`; the summary), and a source-level one its top destinations.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, computePoissonSurprise, createDelayedSeries, evictIdle, findOnsetTs, readDecayed, type DecayedSum, type DelayedSeries } from './baseline.ts';
import {
  BUCKET_RANGE_SQL,
  formatEdgeSubject,
  raiseSeverity,
  roundNumber,
  type Candidate,
  type DetectorDeclaration,
  type DetectorDefinition,
  type DetectorRunner,
} from './detector.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';

/** What deny_spike is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const DENY_SPIKE: DetectorDeclaration = {
  name: 'deny_spike',
  description: 'denials (RBAC 403, ext_authz `UAEX`, OPA `false`, Hubble `POLICY_DENIED`, Linkerd deny) per edge / destination / source far above their own baseline',
  mustNotFlag: 'steady background denial, growth with a constant deny ratio',
  explains: [],
  rollups: ['detector_edge_10s'],
  attackClasses: ['policy_misconfiguration'],
  alert: {
    name: 'ZtwatchDenySpike',
    subject: 'edge',
    for: '30s',
    labels: { team: 'security' },
    summary: 'Deny spike: {{ $labels.subject }}',
    description:
      'Detector {{ $labels.detector }} sees denials for {{ $labels.subject }} far above their own baseline (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}). Someone is being refused by RBAC, ext_authz, OPA or network policy much more than usual: probing, a stolen credential, or a policy rollout that broke a legitimate caller.',
  },
  runbook: {
    meaning:
      "`deny_spike` saw denials (HTTP 403 from Istio/Envoy RBAC, `UAEX` ext_authz denials, OPA `result: false`, Hubble `POLICY_DENIED` drops, Linkerd authorization denials) for the subject (an edge `src -> dst`, a destination or a source) far above that subject's own baseline. Steady background denials and traffic growth at a constant deny ratio do not fire it.",
    confirm: [
      "*ztwatch / SOC overview*: the deny-rate panel for the destination shows the step; the anomaly's evidence lists the deny count against the baseline and the policy names that denied.",
      "*ztwatch / Compliance access history*: filter by `decision = deny` and the source identity (or the destination service) over the alert's window: which methods and paths were refused, and the `decision_reason` of each.",
      '*ztwatch / Service graph*: the edge is drawn in the deny colour.',
    ],
    firstActions: [
      "One source, many refusals, paths it never used: treat as probing or a stolen credential. Find the workload behind the identity (`src_workload`, `src_namespace`), check its recent deploys and its pod's image; isolate it with a deny-all policy for that service account if in doubt.",
      'Many sources refused by one destination right after a policy or `AuthorizationPolicy` change: a broken rollout. Compare the `decision_reason` with the change and roll the policy back.',
      'Record the sample request ids from the evidence in the incident.',
    ],
  },
};

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
  /** Requests per window, alongside `history` (to scale its bar by the current traffic). */
  requestHistory: DelayedSeries;
  lastMs: number;
}

interface Tally {
  src: string | null;
  dst: string | null;
  dstNamespace: string;
  requests: number;
  denies: number;
  firstDenyTs: number;
  /** Denials by the other end (sources of a destination, destinations of a source). */
  peers: Map<string, number>;
  /** Requests and denials per bucket (Unix seconds), for the onset. */
  buckets: Map<number, { requests: number; denies: number }>;
}

type Level = 'edge' | 'destination' | 'source';

/** Windows a value waits before it becomes baseline (see createDelayedSeries). */
const LEARN_DELAY_WINDOWS = 15;

/** Sources (or destinations) a finding names, at most. */
const MAX_NAMED_PEERS = 5;
/** Share of the denials one source must hold to be named as the finding's src. */
const MAJORITY_SHARE = 0.5;

/** Scores are capped: against a near-zero baseline the ratio says nothing more past this. */
const MAX_SCORE = 1000;

function createTallies(): Map<string, Tally> {
  return new Map();
}

function addToTally(map: Map<string, Tally>, key: string, src: string | null, dst: string | null, row: DenySpikeRow, peer: string | null): void {
  let tally = map.get(key);
  if (!tally) {
    tally = { src, dst, dstNamespace: row.dst_namespace, requests: 0, denies: 0, firstDenyTs: Infinity, peers: new Map(), buckets: new Map() };
    map.set(key, tally);
  }
  tally.requests += row.requests;
  tally.denies += row.denies;
  if (peer !== null && row.denies > 0) tally.peers.set(peer, (tally.peers.get(peer) ?? 0) + row.denies);
  const bucket = tally.buckets.get(row.ts);
  if (bucket) {
    bucket.requests += row.requests;
    bucket.denies += row.denies;
  } else tally.buckets.set(row.ts, { requests: row.requests, denies: row.denies });
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
      state = { requests: { value: 0, atMs: 0 }, denies: { value: 0, atMs: 0 }, history: createDelayedSeries(720, LEARN_DELAY_WINDOWS), requestHistory: createDelayedSeries(720, LEARN_DELAY_WINDOWS), lastMs: 0 };
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
    // The bar scales with the entity's traffic now against its usual traffic (daily shape, surges).
    const past = state?.history.stats();
    const pastRequests = state?.requestHistory.stats();
    const trafficFactor = pastRequests && pastRequests.median > 0 ? Math.max(1, tally.requests / pastRequests.median) : 1;
    if (windowSeconds === options.shortWindowSeconds && past && past.count >= 10 && tally.denies < options.minRatio * past.p99 * trafficFactor) return undefined;

    let severity: Severity = 'medium';
    if (sensitiveNamespaces.has(tally.dstNamespace)) severity = raiseSeverity(severity);
    if (timesExpected >= 20 && tally.denies >= 50) severity = raiseSeverity(severity);
    const subject = level === 'edge' ? formatEdgeSubject(tally.src ?? '', tally.dst ?? '') : level === 'destination' ? (tally.dst ?? '') : (tally.src ?? '');
    const who = level === 'edge' ? `from ${tally.src} to ${tally.dst}` : level === 'destination' ? `at ${tally.dst}` : `of ${tally.src}`;
    // Who is behind a destination's denials (or where a source's denials land), from the same rows.
    const peers = [...tally.peers].sort((a, b) => b[1] - a[1]);
    const shares = peers.slice(0, MAX_NAMED_PEERS).map(([name, n]) => ({ name, denies: n, share: Math.round((n / Math.max(1, tally.denies)) * 100) / 100 }));
    const top = shares[0];
    const majority = top && top.share >= MAJORITY_SHARE ? top.name : null;
    const named = shares.map((p) => `${p.name} (${Math.round(p.share * 100)}%)`).join(', ');
    let attribution = '';
    if (level === 'destination') attribution = shares.length === 0 ? ' No source can be named from the evidence.' : majority ? ` Mostly from ${named}.` : ` From ${peers.length} sources: ${named}.`;
    if (level === 'source' && shares.length > 0) attribution = ` At ${named}.`;
    const src = level === 'destination' ? majority : tally.src;
    const dst = level === 'source' ? majority : tally.dst;
    const onsetTs = findOnsetTs([...tally.buckets].map(([ts, b]) => ({ ts, observed: b.denies, expected: b.requests * baselineRatio })));
    return {
      subject,
      src,
      dst,
      severity,
      score: roundNumber(Math.min(timesExpected, MAX_SCORE)),
      summary: `Denials ${who}: ${tally.denies} of ${tally.requests} requests in ${windowSeconds} s, ${roundNumber(timesExpected)}× the ${roundNumber(expected)} expected from a ${roundNumber(baselineRatio * 100)}% baseline deny ratio.${attribution}`,
      evidence: {
        ...(level === 'destination' ? { actors: shares.map((p) => ({ src: p.name, denies: p.denies, share: p.share })), actors_named: shares.length > 0 } : {}),
        ...(level === 'source' ? { top_destinations: shares.map((p) => ({ dst: p.name, denies: p.denies, share: p.share })) } : {}),
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
      firstEvidenceMs: onsetTs !== undefined ? onsetTs * 1000 : tally.firstDenyTs === Infinity ? endMs - windowSeconds * 1000 : tally.firstDenyTs * 1000,
    };
  };

  const learn = (level: Level, key: string, tally: Tally, endMs: number): void => {
    const state = stateOf(level, key);
    addDecayed(state.requests, tally.requests, endMs, halfLifeMs);
    addDecayed(state.denies, tally.denies, endMs, halfLifeMs);
    state.history.push(tally.denies);
    state.requestHistory.push(tally.requests);
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
          addToTally(edges, `${row.src_key}\u0000${row.dst_key}`, row.src_key, row.dst_key, row, null);
          addToTally(destinations, row.dst_key, null, row.dst_key, row, row.src_key);
          addToTally(sources, row.src_key, row.src_key, null, row, row.dst_key);
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
          else {
            states[level].get(key)?.history.discardPending();
            states[level].get(key)?.requestHistory.discardPending();
          }
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
  ...DENY_SPIKE,
  optionsSchema: DenySpikeOptions,
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
