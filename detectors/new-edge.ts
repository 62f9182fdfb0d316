// new_edge: an established identity calling a service it never called during the learning window.
// It pages when the calls are denied (medium) or reach a sensitive namespace (high; critical when
// denied too); an allowed call elsewhere is `info`, since policy permits it and rare edges exist. A brand-new identity (a
// rollout) calling its dependencies is at most `info`; a source opening many new edges at once is
// left to fanout, which explains it better. The first `learningSeconds` of observation only learn.
// A destination that is itself brand-new (first called within `establishedSeconds`, after the
// warm-up) is a new service being wired in: allowed calls to it are at most `info` too.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import type { Store } from '../store/client.ts';
import { BUCKET_RANGE_SQL, formatEdgeSubject, raiseSeverity, type Candidate, type DetectorDefinition, type DetectorRunner, type DetectorDeclaration } from './detector.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';

/** What new_edge is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const NEW_EDGE: DetectorDeclaration = {
  name: 'new_edge',
  description: 'an established identity calling a service it never called in the learning window (higher when denied or to a sensitive namespace)',
  mustNotFlag: 'a brand-new identity (rollout) calling its dependencies: at most `info`',
  explains: [],
  rollups: ['detector_edge_10s'],
  attackClasses: ['new_edge'],
  alert: {
    name: 'ZtwatchNewEdge',
    subject: 'edge',
    for: '30s',
    labels: { team: 'security' },
    summary: 'New service-to-service edge: {{ $labels.subject }}',
    description:
      'Detector {{ $labels.detector }} sees an established identity calling a service it never called during the learning window: {{ $labels.subject }} (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}; higher when denied or into a sensitive namespace). Either a release added a dependency, or a compromised workload is exploring.',
  },
  runbook: {
    meaning:
      '`new_edge` saw an established identity call a service it never called during the learning window. Severity is higher when the new calls were denied or go into a sensitive namespace; a brand-new identity (a rollout) calling its dependencies is only `info` and never alerts. While the same source has a `ZtwatchLateralMovement` alert, new-edge alerts from it are inhibited in Alertmanager (the lateral-movement alert tells the story).',
    confirm: [
      "*ztwatch / Service graph*: the new edge appears for the first time in the window; check the source's other edges.",
      '*ztwatch / Compliance access history*: filter by the source identity and the destination service: first request time, methods, paths, decisions.',
    ],
    firstActions: [
      "Ask whether a release added the dependency: compare with the source workload's deploy history. If so, the edge becomes part of the baseline once the learning window passes; close the alert.",
      'If not (or the calls were denied, or the destination is a secret store, a database or a control-plane namespace): treat the source workload as possibly compromised, capture its pod, and restrict it with an authorization policy allowing only its known edges.',
    ],
  },
};

export const NewEdgeOptions = Type.Object(
  {
    /** Window length, in seconds: an edge stays new (its requests add up) for this long after its first call. @default 300 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 300 }),
    /** How long an edge stays known after its last call, in seconds (the learning window). @default 604800 */
    learningSeconds: Type.Integer({ minimum: 60, default: 604_800 }),
    /** Observation time before anything is flagged: edges seen earlier are simply learned, in seconds. @default 3600 */
    warmupSeconds: Type.Integer({ minimum: 0, default: 3600 }),
    /** Age after which an identity counts as established, in seconds. @default 3600 */
    establishedSeconds: Type.Integer({ minimum: 0, default: 3600 }),
    /** Fewest requests on a new edge outside sensitive namespaces before it is flagged. @default 1 */
    minRequests: Type.Integer({ minimum: 1, default: 1 }),
    /** Requests on a new edge before it pages, unless denied into a sensitive namespace (fewer stay info). @default 2 */
    minPagingRequests: Type.Integer({ minimum: 1, default: 2 }),
    /** More new edges than this from one source in a window is fanout's to report. @default 4 */
    maxNewEdgesPerSource: Type.Integer({ minimum: 1, default: 4 }),
  },
  { additionalProperties: false },
);
type Options = typeof NewEdgeOptions.static;

/** One rollup row: calls on one edge in one 10 s bucket. */
export interface NewEdgeRow {
  ts: number;
  src_key: string;
  dst_key: string;
  dst_namespace: string;
  /** The callee's identity when known: a workload seen serving is not brand-new when it first calls out. */
  dst_identity: string;
  requests: number;
  denies: number;
}

/** True for an IPv4 or IPv6 literal (a source without a workload identity). */
export function isIpAddress(key: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(key) || (key.includes(':') && /^[0-9a-fA-F:.]+$/.test(key));
}

/** An identity seen within this long of the start of observation existed before it. */
const PRE_EXISTING_GRACE_MS = 5 * 60_000;

/** Pure scoring of new edges; exported for tests. */
export function createNewEdgeRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>): DetectorRunner<NewEdgeRow> {
  const learningMs = options.learningSeconds * 1000;
  /** src → dst → last call (ms). */
  const known = new Map<string, Map<string, number>>();
  const firstSeen = new Map<string, number>();
  /** Edge (`src\0dst`) → first call of its current life (ms); -Infinity when first called while learning. */
  const firstCall = new Map<string, number>();
  /** Destination key → first time it was called (ms). */
  const firstCalled = new Map<string, number>();
  let observedSinceMs: number | undefined;
  let windowsSeen = 0;

  const isEstablished = (src: string, atMs: number): boolean => {
    const first = firstSeen.get(src) ?? atMs;
    const preExisting = observedSinceMs !== undefined && first <= observedSinceMs + PRE_EXISTING_GRACE_MS;
    return preExisting || atMs - first >= options.establishedSeconds * 1000;
  };

  return {
    async seed(store: Store, beforeMs: number) {
      const rows = await store.query<{ src: string; dst: string; first_ms: number; last_ms: number }>(
        `SELECT src_identity AS src, dst_service AS dst, toFloat64(toUnixTimestamp64Milli(min(first_seen))) AS first_ms,
                toFloat64(toUnixTimestamp64Milli(max(last_seen))) AS last_ms
         FROM ${store.database}.edge_seen GROUP BY src_identity, dst_service
         HAVING first_ms < {beforeMs:Float64} AND last_ms >= {sinceMs:Float64}`,
        { beforeMs, sinceMs: beforeMs - learningMs },
      );
      for (const row of rows) {
        let dsts = known.get(row.src);
        if (!dsts) known.set(row.src, (dsts = new Map()));
        dsts.set(row.dst, Math.min(row.last_ms, beforeMs));
        firstSeen.set(row.src, Math.min(firstSeen.get(row.src) ?? Infinity, row.first_ms));
        observedSinceMs = Math.min(observedSinceMs ?? Infinity, row.first_ms);
      }
    },
    evaluate(window, rows) {
      observedSinceMs ??= window.startMs;
      const edges = new Map<string, { src: string; dst: string; ns: string; requests: number; denies: number; firstTs: number; lastTs: number }>();
      for (const row of rows) {
        for (const identity of [row.src_key, row.dst_identity]) {
          if (identity && (!firstSeen.has(identity) || (firstSeen.get(identity) as number) > row.ts * 1000)) firstSeen.set(identity, row.ts * 1000);
        }
        if (!firstCalled.has(row.dst_key) || (firstCalled.get(row.dst_key) as number) > row.ts * 1000) firstCalled.set(row.dst_key, row.ts * 1000);
        const key = `${row.src_key}\u0000${row.dst_key}`;
        const edge = edges.get(key) ?? { src: row.src_key, dst: row.dst_key, ns: row.dst_namespace, requests: 0, denies: 0, firstTs: row.ts, lastTs: row.ts };
        edge.requests += row.requests;
        edge.denies += row.denies;
        edge.firstTs = Math.min(edge.firstTs, row.ts);
        edge.lastTs = Math.max(edge.lastTs, row.ts);
        if (!edge.ns && row.dst_namespace) edge.ns = row.dst_namespace;
        edges.set(key, edge);
      }
      const learning = window.endMs - observedSinceMs <= options.warmupSeconds * 1000;
      // Callers known only by IP are not identities: plaintext and fanout speak for them.
      // New: never called in the learning window, or first called within this window (its calls
      // add up until the window has moved past the first one).
      const fresh = [...edges.values()].filter((e) => {
        if (isIpAddress(e.src)) return false;
        const last = known.get(e.src)?.get(e.dst);
        if (last === undefined || e.firstTs * 1000 - last > learningMs) return true;
        return (firstCall.get(`${e.src}\u0000${e.dst}`) ?? -Infinity) >= window.startMs;
      });
      const newPerSource = new Map<string, number>();
      for (const e of fresh) newPerSource.set(e.src, (newPerSource.get(e.src) ?? 0) + 1);

      const candidates: Candidate[] = [];
      if (!learning) {
        for (const e of fresh) {
          if ((newPerSource.get(e.src) ?? 0) > options.maxNewEdgesPerSource) continue;
          const sensitive = sensitiveNamespaces.has(e.ns);
          const denied = e.denies > 0 && e.denies >= 0.5 * e.requests;
          if (e.requests < options.minRequests && !sensitive && !denied) continue;
          const established = isEstablished(e.src, e.firstTs * 1000);
          const dstFirstMs = firstCalled.get(e.dst) ?? e.firstTs * 1000;
          // Denied calls are never a new service being wired in: its callers would be allowed.
          const newDestination = !denied && dstFirstMs > (observedSinceMs ?? 0) + options.warmupSeconds * 1000 && e.firstTs * 1000 - dstFirstMs < options.establishedSeconds * 1000;
          let severity: Severity = 'info';
          // An allowed call outside sensitive namespaces is what policy permits (rare edges exist:
          // a weekly job, a fallback path): it is recorded, not paged.
          // One call is what a rare legitimate edge looks like too; only a denied call to a sensitive
          // namespace pages on its own.
          const enough = e.requests >= options.minPagingRequests || (sensitive && denied);
          if (established && !newDestination && (sensitive || denied) && enough) {
            severity = sensitive ? 'high' : 'medium';
            if (sensitive && denied) severity = raiseSeverity(severity);
          }
          const ageMinutes = Math.round((e.firstTs * 1000 - (firstSeen.get(e.src) ?? e.firstTs * 1000)) / 60_000);
          candidates.push({
            subject: formatEdgeSubject(e.src, e.dst),
            src: e.src,
            dst: e.dst,
            severity,
            score: e.requests,
            summary: `${established ? 'Established' : 'Brand-new'} identity ${e.src} called ${e.dst}${e.ns ? ` in namespace ${e.ns}` : ''} for the first time: ${e.requests} request${e.requests === 1 ? '' : 's'}, ${e.denies} denied.`,
            evidence: {
              window_seconds: options.windowSeconds,
              requests: e.requests,
              denies: e.denies,
              dst_namespace: e.ns || null,
              sensitive_namespace: sensitive,
              established_identity: established,
              new_destination: newDestination,
              identity_age_minutes: established && ageMinutes === 0 ? null : ageMinutes,
              known_destinations: [...(known.get(e.src)?.keys() ?? [])].slice(0, 20),
              new_edges_from_source: newPerSource.get(e.src) ?? 0,
            },
            firstEvidenceMs: e.firstTs * 1000,
          });
        }
      }
      for (const e of edges.values()) {
        let dsts = known.get(e.src);
        if (!dsts) known.set(e.src, (dsts = new Map()));
        const last = dsts.get(e.dst);
        if (last === undefined || e.firstTs * 1000 - last > learningMs) firstCall.set(`${e.src}\u0000${e.dst}`, learning ? -Infinity : e.firstTs * 1000);
        dsts.set(e.dst, Math.max(last ?? 0, e.lastTs * 1000));
      }
      if (windowsSeen % 90 === 0) for (const [key, at] of firstCall) if (at < window.startMs) firstCall.delete(key);
      if (++windowsSeen % 1440 === 0) {
        for (const [src, dsts] of known) {
          for (const [dst, last] of dsts) if (window.endMs - last > learningMs) dsts.delete(dst);
          if (dsts.size === 0) {
            known.delete(src);
            firstSeen.delete(src);
          }
        }
      }
      return candidates;
    },
  };
}

/** The new_edge detector. */
export const newEdge: DetectorDefinition<NewEdgeRow, typeof NewEdgeOptions> = {
  ...NEW_EDGE,
  optionsSchema: NewEdgeOptions,
  query: (database) => `
    SELECT toUInt32(ts) AS ts, src_key, dst_key, max(dst_namespace) AS dst_namespace, max(dst_identity) AS dst_identity,
           toFloat64(sum(requests)) AS requests, toFloat64(sum(denies)) AS denies
    FROM ${database}.detector_edge_10s
    WHERE ${BUCKET_RANGE_SQL}
    GROUP BY ts, src_key, dst_key`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createNewEdgeRunner(options, context.sensitiveNamespaces),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.src, dst: candidate.dst, limit: 50 });
    return {
      sample_request_ids: pickRequestIds(events),
      requests_sample: countValues(events.map((e) => `${e.method} ${e.path}`.trim() || `port ${e.dst_port}`)),
      statuses: countValues(events.map((e) => String(e.status))),
      policies: countValues(events.map((e) => e.decision_reason)),
    };
  },
};
