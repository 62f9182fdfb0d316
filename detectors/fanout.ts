// fanout: one source reaching many distinct destinations/ports it had not reached before, in a
// short window (scans, lateral movement), from L7 logs and from Hubble drops alike. A batch job that
// always fans out reaches the same targets each run, so after its first run they are known; and a
// source never seen before (a job's first run, a rollout) is at most `info` unless most of its
// attempts are denied or fail, which is what a scan from outside the mesh looks like. An established
// source pages only when the fan-out looks like a scan: mostly never-reached targets, or attempts
// that mostly fail (overall or on the new targets); a few rare edges showing up together is info.
// A slow scan (a target every few minutes) never fills one short window: per source, the targets
// first reached within `slowWindowSeconds` are counted from its state, and `slowMinNewTargets` of
// them, mostly failing, are a scan too.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { createDelayedSeries, type DelayedSeries } from './baseline.ts';
import { BUCKET_RANGE_SQL, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorDeclaration, type DetectorRunner } from './detector.ts';
import { countValues, identitiesSeenOn, isAddress, pickRequestIds, sampleEvents } from './evidence.ts';

/** What fanout is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const FANOUT: DetectorDeclaration = {
  name: 'fanout',
  description: 'one source reaching many distinct destinations/ports in a short window (scans, lateral movement), from L7 and Hubble drops',
  mustNotFlag: 'periodic batch jobs that always do so',
  explains: ['new_edge', 'deny_spike', 'plaintext'],
  rollups: ['detector_edge_10s'],
  attackClasses: ['lateral_movement'],
  alert: {
    name: 'ZtwatchLateralMovement',
    subject: 'source',
    for: '30s',
    labels: { team: 'security' },
    summary: 'Lateral movement suspected from {{ $labels.src }}',
    description:
      'Detector {{ $labels.detector }} sees {{ $labels.subject }} reaching many distinct destinations or ports in a short window (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}), a pattern of scans and lateral movement that its own history does not explain. New-edge alerts from the same source are held back while this fires.',
  },
  runbook: {
    meaning:
      '`fanout` saw one source reach many distinct destinations or ports in a short window, from L7 logs and from Hubble drops: a scan or lateral movement. Periodic batch jobs that always do so are part of their own baseline and do not fire it. This alert inhibits `ZtwatchNewEdge` alerts with the same `src`.',
    confirm: [
      '*ztwatch / Service graph*: the source has a burst of new edges, many of them denied or dropped.',
      "*ztwatch / SOC overview*: the anomaly's evidence lists the destinations and ports reached and the drop/deny counts.",
      '*ztwatch / Compliance access history*: filter by the source identity over the window.',
    ],
    firstActions: [
      'Treat as an incident: isolate the source workload (deny-all authorization policy or network policy for its service account), keep the pod for forensics instead of deleting it.',
      'List what it reached successfully (decision `allow`) — those services need checking next.',
      'Rotate credentials the workload held.',
    ],
  },
};

export const FanoutOptions = Type.Object(
  {
    /** Window length, in seconds; slow scans need a longer one. @default 300 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 300 }),
    /** Fewest new (never reached) destination/port targets in the window. @default 6 */
    minNewTargets: Type.Integer({ minimum: 1, default: 6 }),
    /** Distinct targets must also exceed this many times the source's usual maximum per window. @default 1.5 */
    minRatio: Type.Number({ minimum: 1, default: 1.5 }),
    /** How long a reached target stays known after its last contact, in seconds. @default 604800 */
    learningSeconds: Type.Integer({ minimum: 60, default: 604_800 }),
    /** Observation time before anything is flagged (every target is new at first), in seconds. @default 900 */
    warmupSeconds: Type.Integer({ minimum: 0, default: 900 }),
    /** Age after which a source counts as established, in seconds. @default 3600 */
    establishedSeconds: Type.Integer({ minimum: 0, default: 3600 }),
    /** Share of denied, dropped or failed attempts (overall, or to the never-reached targets) that makes a fan-out a scan. @default 0.5 */
    minFailedShare: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
    /** Long window for slow scans, in seconds (read from per-source state, not from rows). @default 1800 */
    slowWindowSeconds: Type.Integer({ minimum: 60, default: 1800 }),
    /** Fewest never-reached targets first contacted within the long window, mostly failing, that make a slow scan. @default 6 */
    slowMinNewTargets: Type.Integer({ minimum: 1, default: 6 }),
    /** Share of never-reached targets among the distinct targets that makes an established source's fan-out a scan even when it succeeds. @default 0.5 */
    minNewShare: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
  },
  { additionalProperties: false },
);
type Options = typeof FanoutOptions.static;

/** One rollup row: attempts from a source to one destination and port in one 10 s bucket. */
export interface FanoutRow {
  ts: number;
  src_key: string;
  dst_key: string;
  dst_port: number;
  dst_namespace: string;
  requests: number;
  failed: number;
}

interface Target {
  firstMs: number;
  lastMs: number;
  /** Attempts and failures while the target was new (within the long window of its first contact). */
  attempts: number;
  failed: number;
}

interface SourceState {
  targets: Map<string, Target>;
  firstMs: number;
  /** Distinct already-known targets per window, for windows the source was active and not flagged in. */
  history: DelayedSeries;
  lastMs: number;
}

const PRE_EXISTING_GRACE_MS = 5 * 60_000;

/** Pure scoring of fan-out; exported for tests. */
export function createFanoutRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>, stepSeconds: number): DetectorRunner<FanoutRow> {
  const learningMs = options.learningSeconds * 1000;
  const slowWindowMs = options.slowWindowSeconds * 1000;
  const sources = new Map<string, SourceState>();
  let observedSinceMs: number | undefined;
  let windowsSeen = 0;

  return {
    evaluate(window, rows) {
      // Observation starts with the first data, not with the start of the first window looked back over.
      if (observedSinceMs === undefined && rows.length > 0) observedSinceMs = rows.reduce((min, r) => Math.min(min, r.ts * 1000), Infinity);
      // Targets first contacted in the newest step become known (their first contact time is kept).
      const newestFromTs = (window.endMs - stepSeconds * 1000) / 1000;
      const perSource = new Map<string, { targets: Map<string, { ns: string; requests: number; failed: number; dst: string }>; }>();
      for (const row of rows) {
        let state = sources.get(row.src_key);
        if (!state) {
          state = { targets: new Map(), firstMs: row.ts * 1000, history: createDelayedSeries(1440, 15), lastMs: row.ts * 1000 };
          sources.set(row.src_key, state);
        }
        const targetKey = `${row.dst_key}:${row.dst_port}`;
        if (row.ts >= newestFromTs) {
          const t = state.targets.get(targetKey);
          if (!t || row.ts * 1000 - t.lastMs > learningMs) state.targets.set(targetKey, { firstMs: row.ts * 1000, lastMs: row.ts * 1000, attempts: row.requests, failed: row.failed });
          else {
            t.lastMs = Math.max(t.lastMs, row.ts * 1000);
            if (row.ts * 1000 - t.firstMs <= slowWindowMs) {
              t.attempts += row.requests;
              t.failed += row.failed;
            }
          }
          state.lastMs = Math.max(state.lastMs, row.ts * 1000);
        }
        let agg = perSource.get(row.src_key);
        if (!agg) perSource.set(row.src_key, (agg = { targets: new Map() }));
        const target = agg.targets.get(targetKey) ?? { ns: row.dst_namespace, requests: 0, failed: 0, dst: row.dst_key };
        target.requests += row.requests;
        target.failed += row.failed;
        if (!target.ns && row.dst_namespace) target.ns = row.dst_namespace;
        agg.targets.set(targetKey, target);
      }

      if (observedSinceMs === undefined) return [];
      const warmEndMs = observedSinceMs + options.warmupSeconds * 1000;
      const learning = window.endMs <= warmEndMs;
      // Never reached = first reached in this window after the warm-up: a target first contacted
      // while everything was new (a low-rate edge of a hub at the start of the data) is not news.
      const freshSinceMs = Math.max(window.startMs, warmEndMs);
      const candidates: Candidate[] = [];
      for (const [src, agg] of perSource) {
        const state = sources.get(src) as SourceState;
        const distinct = agg.targets.size;
        let fresh = 0;
        let firstNewMs = Infinity;
        for (const key of agg.targets.keys()) {
          const t = state.targets.get(key);
          if (t && t.firstMs >= freshSinceMs) {
            fresh++;
            firstNewMs = Math.min(firstNewMs, t.firstMs);
          }
        }
        const usualMax = state.history.length > 0 ? state.history.stats().max : 0;
        // The slow view: targets first reached within the long window (after the warm-up).
        let slowNew = 0;
        let slowAttempts = 0;
        let slowFailed = 0;
        let slowFirstMs = Infinity;
        const slowTargets: string[] = [];
        if (!learning) {
          const sinceMs = Math.max(window.endMs - slowWindowMs, warmEndMs);
          for (const [key, t] of state.targets) {
            if (t.firstMs < sinceMs) continue;
            slowNew++;
            slowAttempts += t.attempts;
            slowFailed += t.failed;
            slowFirstMs = Math.min(slowFirstMs, t.firstMs);
            if (slowTargets.length < 25) slowTargets.push(key);
          }
        }
        const slowScan = slowNew >= options.slowMinNewTargets && slowAttempts > 0 && slowFailed / slowAttempts >= options.minFailedShare;
        const fastScan = !learning && fresh >= options.minNewTargets && distinct > options.minRatio * usualMax;
        const flagged = fastScan || slowScan;
        if (!flagged) {
          // Targets reached for the first time do not raise the source's usual reach.
          state.history.push(distinct - fresh);
          continue;
        }
        state.history.discardPending();
        let requests = 0;
        let failed = 0;
        let freshRequests = 0;
        let freshFailed = 0;
        const namespaces = new Set<string>();
        const services = new Set<string>();
        for (const [key, t] of agg.targets) {
          requests += t.requests;
          failed += t.failed;
          const known = state.targets.get(key);
          if (known && known.firstMs >= freshSinceMs) {
            freshRequests += t.requests;
            freshFailed += t.failed;
          }
          if (t.ns) namespaces.add(t.ns);
          services.add(t.dst);
        }
        const failedShare = requests > 0 ? failed / requests : 0;
        const freshFailedShare = freshRequests > 0 ? freshFailed / freshRequests : 0;
        // A busy source whose rare edges happen to show up together (a surge) reaches a few new
        // targets among many known ones, and reaches them fine; a scan mostly tries new targets,
        // or mostly fails on them.
        const scanLike = failedShare >= options.minFailedShare || freshFailedShare >= options.minFailedShare || fresh / distinct >= options.minNewShare;
        const preExisting = state.firstMs <= observedSinceMs + PRE_EXISTING_GRACE_MS;
        const established = preExisting || firstNewMs - state.firstMs >= options.establishedSeconds * 1000;
        const sensitiveHit = [...namespaces].filter((ns) => sensitiveNamespaces.has(ns));
        let severity: Severity = 'info';
        if ((established && scanLike) || failedShare >= options.minFailedShare || freshFailedShare >= options.minFailedShare || (slowScan && !fastScan)) {
          severity = 'high';
          if (sensitiveHit.length > 0) severity = raiseSeverity(severity);
        }
        candidates.push({
          subject: src,
          src,
          dst: services.size === 1 ? ([...services][0] ?? null) : null,
          severity,
          score: roundNumber(distinct / Math.max(usualMax, 1)),
          summary:
            slowScan && !fastScan
              ? `${established ? 'Established' : 'New'} source ${src} reached ${slowNew} never-reached destination/ports over ${Math.round(options.slowWindowSeconds / 60)} minutes (a slow scan); ${Math.round((slowFailed / slowAttempts) * 100)}% of those attempts denied or failed.`
              : `${established ? 'Established' : 'New'} source ${src} reached ${distinct} distinct destination/ports (${fresh} never reached before) across ${services.size} services in ${options.windowSeconds} s; ${Math.round(failedShare * 100)}% denied or failed.`,
          evidence: {
            window_seconds: options.windowSeconds,
            distinct_targets: distinct,
            new_targets: fresh,
            distinct_services: services.size,
            usual_max_targets: usualMax,
            attempts: requests,
            failed_attempts: failed,
            failed_share: roundNumber(failedShare),
            new_target_failed_share: roundNumber(freshFailedShare),
            established_source: established,
            namespaces: [...namespaces].sort(),
            sensitive_namespaces: sensitiveHit,
            targets: [...new Set([...agg.targets.keys(), ...slowTargets])].slice(0, 25),
            slow_window_seconds: options.slowWindowSeconds,
            slow_new_targets: slowNew,
            slow_failed_share: slowAttempts > 0 ? roundNumber(slowFailed / slowAttempts) : null,
          },
          firstEvidenceMs: slowScan && !fastScan && slowFirstMs !== Infinity ? slowFirstMs : firstNewMs === Infinity ? window.startMs : firstNewMs,
        });
      }
      if (++windowsSeen % 1440 === 0) {
        for (const [src, state] of sources) {
          for (const [key, t] of state.targets) if (window.endMs - t.lastMs > learningMs) state.targets.delete(key);
          if (state.targets.size === 0 && window.endMs - state.lastMs > learningMs) sources.delete(src);
        }
      }
      return candidates;
    },
  };
}

/** The fanout detector. */
export const fanout: DetectorDefinition<FanoutRow, typeof FanoutOptions> = {
  ...FANOUT,
  optionsSchema: FanoutOptions,
  query: (database) => `
    SELECT toUInt32(ts) AS ts, src_key, dst_key, toUInt32(dst_port) AS dst_port, max(dst_namespace) AS dst_namespace,
           toFloat64(sum(requests)) AS requests,
           -- A failed handshake is an error (or a deny) decision too: counted once, never above the attempts.
           least(requests, toFloat64(greatest(sum(denies) + sum(errors), sum(tls_failures)))) AS failed
    FROM ${database}.detector_edge_10s
    WHERE ${BUCKET_RANGE_SQL}
    GROUP BY ts, src_key, dst_key, dst_port`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createFanoutRunner(options, context.sensitiveNamespaces, context.stepSeconds),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.subject, limit: 300 });
    const tlsFailures = events.filter((e) => e.tls_failure !== '');
    return {
      sample_request_ids: pickRequestIds(events),
      policies: countValues(events.map((e) => e.decision_reason)),
      reported_by: countValues(events.map((e) => e.source)),
      statuses: countValues(events.map((e) => String(e.status))),
      // Attempts that failed the TLS handshake never reached an application: a workload that lost
      // its certificate looks like this at every server it calls (the incidents stage weighs it).
      tls_failures: countValues(tlsFailures.map((e) => e.tls_failure)),
      tls_failure_share: events.length > 0 ? roundNumber(tlsFailures.length / events.length) : 0,
      ...(isAddress(candidate.subject) ? { ip_identities: (await identitiesSeenOn(store, [candidate.subject], window))[candidate.subject] ?? [] } : {}),
    };
  },
};
