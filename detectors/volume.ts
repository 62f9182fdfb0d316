// volume: bytes per request on an edge far above that edge's own baseline (exfiltration over an
// existing edge). Bytes per request, not bytes, so a surge of ordinary requests changes nothing;
// the baseline is the median and MAD of past windows, so one large response is noise, not news;
// and the edge's own tail (p99 window) too, so large payloads an edge has sent before do not page;
// and the excess must not be carried by one 10 s bucket alone (one large response); and the count of
// large buckets in the window, or in the last ten minutes, must be surprising against how often
// the edge's buckets were large before, so a few heavy-tail responses on an edge that mixes small and
// large routes are not an export (an export makes every response larger, and a slow one keeps on;
// a heavy tail has been seen before).
// first_seen is the first bucket of the excess bytes, not the start of the window looked back over.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { computePoissonSurprise, computeRobustZ, createDelayedSeries, evictIdle, findOnsetTs, type DelayedSeries } from './baseline.ts';
import { BUCKET_RANGE_SQL, formatEdgeSubject, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorRunner, type DetectorDeclaration } from './detector.ts';
import { pickRequestIds, sampleEvents } from './evidence.ts';

/** What volume is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const VOLUME: DetectorDeclaration = {
  name: 'volume',
  description: 'bytes per request on an edge far above its baseline (exfiltration)',
  mustNotFlag: 'surges that raise request counts, not bytes per request',
  explains: [],
  rollups: ['detector_edge_10s'],
  attackClasses: ['exfiltration'],
  alert: {
    name: 'ZtwatchVolumeAnomaly',
    subject: 'edge',
    for: '30s',
    labels: { team: 'security' },
    summary: 'Unusual bytes per request: {{ $labels.subject }}',
    description:
      'Detector {{ $labels.detector }} sees bytes per request on {{ $labels.subject }} far above that edge\'s baseline (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}). Request counts alone do not explain it: large responses leaving the service can mean data exfiltration.',
  },
  runbook: {
    meaning:
      "`volume` saw bytes per request on an edge far above the edge's baseline: responses much larger than usual leaving a service, which can be data exfiltration. Surges that raise request counts but not bytes per request do not fire it.",
    confirm: [
      "*ztwatch / SOC overview*: the anomaly's evidence compares observed and baseline bytes per request and names sample request ids.",
      '*ztwatch / Compliance access history*: filter by the edge; sort by `bytes_out`; look at paths and the identity behind the largest responses.',
    ],
    firstActions: [
      'Check whether a legitimate export or backup job explains it (scheduled? known identity?).',
      'If not: block the edge with an authorization policy, preserve the access records (export them as CSV/NDJSON from the access-history API), and start an incident for the data owner.',
    ],
  },
};

export const VolumeOptions = Type.Object(
  {
    /** Window length, in seconds; long enough for low-rate edges to reach `minRequests`. @default 120 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 120 }),
    /** Fewest requests on the edge in a window for its bytes per request to be judged. @default 3 */
    minRequests: Type.Integer({ minimum: 1, default: 3 }),
    /** Event time an edge must have been seen (in windows with enough requests) before it is judged, in seconds. @default 1800 */
    minBaselineSeconds: Type.Integer({ minimum: 0, default: 1800 }),
    /** Bytes per request must be at least this many times the baseline median (a window of a few requests is noisy). @default 6 */
    minRatio: Type.Number({ minimum: 1, default: 6 }),
    /** Bytes per request must also be at least this many times the edge's own p99 window: large payloads it has shown before (a heavy tail the median and MAD ignore) are not news. @default 1.5 */
    minTailRatio: Type.Number({ minimum: 0, default: 1.5 }),
    /** Robust z-score (scaled MADs above the median) to reach. @default 8 */
    minZ: Type.Number({ minimum: 0, default: 8 }),
    /** Bytes above the baseline in the window to reach, so one odd response on a tiny edge does not page. @default 65536 */
    minExcessBytes: Type.Integer({ minimum: 0, default: 65_536 }),
    /** Bytes above the baseline in one window that make it critical. @default 104857600 */
    criticalExcessBytes: Type.Integer({ minimum: 0, default: 104_857_600 }),
  },
  { additionalProperties: false },
);
type Options = typeof VolumeOptions.static;

/** A bucket dates the excess only when its own excess bytes reach this share of the window's largest (findOnsetTs). */
const ONSET_SHARE_OF_PEAK = 0.2;
/** −log10 of the chance, at the edge's own rate of large buckets, of as many large buckets as the window (or the last LARGE_BUCKET_HORIZON_SECONDS) has. */
const MIN_LARGE_BUCKET_SURPRISE = 4;
/** Windows a window's large-bucket counts wait before they are learned (thrown away when the edge is flagged). */
const LARGE_BUCKET_DELAY = 15;
/** The longer look back for large buckets, in seconds: a slow export on a skewed edge adds up over it. */
const LARGE_BUCKET_HORIZON_SECONDS = 600;

/** One rollup row: requests and bytes (both directions) of one edge in one 10 s bucket. */
export interface VolumeRow {
  ts: number;
  src_key: string;
  dst_key: string;
  src_namespace: string;
  dst_namespace: string;
  requests: number;
  bytes: number;
}

interface EdgeState {
  bytesPerRequest: DelayedSeries;
  /** Buckets judged, and of those large (at least half of `minRatio` times the median), in learned windows. */
  buckets: number;
  largeBuckets: number;
  pending: Array<{ buckets: number; large: number }>;
  /** Buckets of the last LARGE_BUCKET_HORIZON_SECONDS: start (s) → large. */
  recent: Map<number, boolean>;
  lastMs: number;
}

/** Pure scoring of bytes per request; exported for tests. */
export function createVolumeRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>, stepSeconds: number): DetectorRunner<VolumeRow> {
  const edges = new Map<string, EdgeState>();
  const minBaselineWindows = Math.max(3, Math.ceil(options.minBaselineSeconds / stepSeconds));
  let windowsSeen = 0;

  return {
    evaluate(window, rows) {
      const perEdge = new Map<string, { src: string; dst: string; srcNs: string; dstNs: string; requests: number; bytes: number; firstTs: number; buckets: Array<{ ts: number; requests: number; bytes: number }> }>();
      for (const row of rows) {
        const key = `${row.src_key}\u0000${row.dst_key}`;
        const e = perEdge.get(key) ?? { src: row.src_key, dst: row.dst_key, srcNs: row.src_namespace, dstNs: row.dst_namespace, requests: 0, bytes: 0, firstTs: row.ts, buckets: [] };
        e.requests += row.requests;
        e.bytes += row.bytes;
        e.buckets.push({ ts: row.ts, requests: row.requests, bytes: row.bytes });
        e.firstTs = Math.min(e.firstTs, row.ts);
        e.srcNs ||= row.src_namespace;
        e.dstNs ||= row.dst_namespace;
        perEdge.set(key, e);
      }
      const candidates: Candidate[] = [];
      for (const [key, e] of perEdge) {
        if (e.requests < options.minRequests) continue;
        const bpr = e.bytes / e.requests;
        let state = edges.get(key);
        if (!state) {
          state = { bytesPerRequest: createDelayedSeries(1080, 15), buckets: 0, largeBuckets: 0, pending: [], recent: new Map(), lastMs: window.endMs };
          edges.set(key, state);
        }
        state.lastMs = window.endMs;
        const stats = state.bytesPerRequest.length >= minBaselineWindows ? state.bytesPerRequest.stats() : undefined;
        const median = state.bytesPerRequest.length > 0 ? state.bytesPerRequest.stats().median : undefined;
        const isLarge = (b: { requests: number; bytes: number }) => median !== undefined && b.requests > 0 && b.bytes / b.requests >= (options.minRatio / 2) * Math.max(median, 1);
        const large = e.buckets.filter(isLarge).length;
        for (const b of e.buckets) state.recent.set(b.ts, isLarge(b));
        for (const ts of state.recent.keys()) if (ts < window.endMs / 1000 - LARGE_BUCKET_HORIZON_SECONDS) state.recent.delete(ts);
        if (stats) {
          const ratio = bpr / Math.max(stats.median, 1);
          const z = computeRobustZ(bpr, stats);
          const excess = (bpr - stats.median) * e.requests;
          // One large response is noise: without the bucket of the largest excess, what is left of
          // the window must still be well above the median (every response larger, or several large ones).
          let top = e.buckets[0] as { ts: number; requests: number; bytes: number };
          for (const b of e.buckets) if (b.bytes - b.requests * stats.median > top.bytes - top.requests * stats.median) top = b;
          const restRequests = e.requests - top.requests;
          const restRatio = restRequests > 0 ? (e.bytes - top.bytes) / restRequests / Math.max(stats.median, 1) : 0;
          const sustained = restRatio >= options.minRatio / 2;
          // As many large buckets as this, at the rate the edge has had them (one in a hundred before
          // it has shown any), must be surprising: a heavy tail the edge has is not news.
          const largeRate = (state.largeBuckets + 1) / (state.buckets + 100);
          let recentLarge = 0;
          for (const l of state.recent.values()) if (l) recentLarge++;
          const largeSurprise = Math.max(computePoissonSurprise(large, largeRate * e.buckets.length), computePoissonSurprise(recentLarge, largeRate * state.recent.size));
          if (ratio >= options.minRatio && z >= options.minZ && excess >= options.minExcessBytes && bpr >= options.minTailRatio * stats.p99 && sustained && largeSurprise >= MIN_LARGE_BUCKET_SURPRISE) {
            let severity: Severity = 'high';
            if (sensitiveNamespaces.has(e.dstNs) || sensitiveNamespaces.has(e.srcNs) || excess >= options.criticalExcessBytes) severity = raiseSeverity(severity);
            candidates.push({
              subject: formatEdgeSubject(e.src, e.dst),
              src: e.src,
              dst: e.dst,
              severity,
              score: roundNumber(ratio),
              summary: `Bytes per request from ${e.dst} to ${e.src} at ${formatBytes(bpr)}, ${roundNumber(ratio)}× the edge's median ${formatBytes(stats.median)}: ${formatBytes(excess)} above baseline in ${options.windowSeconds} s.`,
              evidence: {
                window_seconds: options.windowSeconds,
                requests: e.requests,
                bytes: e.bytes,
                bytes_per_request: Math.round(bpr),
                baseline_median_bytes_per_request: Math.round(stats.median),
                baseline_mad_bytes_per_request: Math.round(stats.mad),
                baseline_p99_bytes_per_request: Math.round(stats.p99),
                ratio_without_largest_bucket: roundNumber(restRatio),
                large_buckets: large,
                buckets: e.buckets.length,
                recent_large_buckets: recentLarge,
                recent_buckets: state.recent.size,
                baseline_large_bucket_rate: Number(largeRate.toPrecision(2)),
                large_bucket_surprise: roundNumber(largeSurprise),
                baseline_windows: stats.count,
                ratio: roundNumber(ratio),
                robust_z: roundNumber(z),
                excess_bytes: Math.round(excess),
              },
              firstEvidenceMs: (findOnsetTs(e.buckets.map((b) => ({ ts: b.ts, observed: b.bytes, expected: b.requests * stats.median })), 2, ONSET_SHARE_OF_PEAK) ?? e.firstTs) * 1000,
            });
            state.bytesPerRequest.discardPending();
            state.pending.length = 0;
            continue;
          }
        }
        state.bytesPerRequest.push(bpr);
        if (median !== undefined) state.pending.push({ buckets: e.buckets.length, large });
        while (state.pending.length > LARGE_BUCKET_DELAY) {
          const learned = state.pending.shift() as { buckets: number; large: number };
          state.buckets += learned.buckets;
          state.largeBuckets += learned.large;
        }
      }
      if (++windowsSeen % 360 === 0) evictIdle(edges, window.endMs, 7 * 86_400_000);
      return candidates;
    },
  };
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${roundNumber(value)} ${units[unit]}`;
}

/** The volume detector. */
export const volume: DetectorDefinition<VolumeRow, typeof VolumeOptions> = {
  ...VOLUME,
  optionsSchema: VolumeOptions,
  // Per edge and bucket, the source that logged the bytes (a sidecar; OPA and Hubble flows carry none).
  query: (database) => `
    SELECT ts, src_key, dst_key, max(sns) AS src_namespace, max(dns) AS dst_namespace,
           argMax(r, b) AS requests, max(b) AS bytes
    FROM (
      SELECT toUInt32(ts) AS ts, src_key, dst_key, source, max(src_namespace) AS sns, max(dst_namespace) AS dns,
             toFloat64(sum(requests)) AS r, toFloat64(sum(bytes_in) + sum(bytes_out)) AS b
      FROM ${database}.detector_edge_10s
      WHERE ${BUCKET_RANGE_SQL}
      GROUP BY ts, src_key, dst_key, source)
    GROUP BY ts, src_key, dst_key
    HAVING bytes > 0`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createVolumeRunner(options, context.sensitiveNamespaces, context.stepSeconds),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.src, dst: candidate.dst, orderBy: 'bytes_in + bytes_out DESC', limit: 10 });
    return {
      sample_request_ids: pickRequestIds(events),
      largest_requests: events.slice(0, 5).map((e) => ({ request_id: e.request_id, bytes: e.bytes, path: e.path })),
    };
  },
};
