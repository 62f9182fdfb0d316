// authz_deny_burst: one principal denied by the policy engine (OPA decision logs, ext_authz) across
// many distinct actions in a short window: privilege probing. One request retried many times is
// one action, so it never counts; the principal's own past sets the bar twice: its distinct denied
// actions per window, and its deny ratio — a busy principal denied 1% of the time collects a few
// distinct denials per window from volume alone, a prober is denied far more than its share.
// Actions are counted by concrete path (method + path), not only by route template, so enumerating
// ids under one template (/users/1001, /users/1002, …) is as visible as trying many templates.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, computePoissonSurprise, createDelayedSeries, evictIdle, readDecayed, type DecayedSum, type DelayedSeries } from './baseline.ts';
import { BUCKET_RANGE_SQL, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorRunner } from './detector.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';

export const AuthzDenyBurstOptions = Type.Object(
  {
    /** Window length, in seconds; a slow prober's attempts must fit in it. @default 300 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 300 }),
    /** Fewest distinct denied actions (method + concrete path) in the window. @default 4 */
    minDistinctActions: Type.Integer({ minimum: 2, default: 4 }),
    /** Distinct denied actions must exceed this many times the principal's usual p99 per window. @default 2 */
    minRatio: Type.Number({ minimum: 1, default: 2 }),
    /** Distinct denied actions must be at least this many times the denials expected from the principal's decisions and deny ratio. @default 4 */
    minTimesExpected: Type.Number({ minimum: 1, default: 4 }),
    /** Poisson surprise, −log10 p, the denials must reach given that expectation. @default 4 */
    minSurpriseLog10: Type.Number({ minimum: 0, default: 4 }),
    /** Deny ratio assumed before a principal has history. @default 0.02 */
    priorDenyRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.02 }),
    /** Half-life of the learned deny ratio, in seconds. @default 21600 */
    halfLifeSeconds: Type.Integer({ minimum: 60, default: 21_600 }),
    /** Distinct denied actions that make it high severity. @default 15 */
    highDistinctActions: Type.Integer({ minimum: 2, default: 15 }),
  },
  { additionalProperties: false },
);
type Options = typeof AuthzDenyBurstOptions.static;

/** One rollup row: policy-engine decisions of one principal in one 10 s bucket; denials carry their action. */
export interface AuthzDenyBurstRow {
  ts: number;
  principal: string;
  dst_key: string;
  dst_namespace: string;
  /** '' on the row folding allowed decisions. */
  method: string;
  action_path: string;
  /** Concrete denied paths behind `action_path` (the template); empty on old rows. */
  concrete_paths?: readonly string[];
  policy: string;
  denies: number;
  decisions: number;
}

interface PrincipalState {
  history: DelayedSeries;
  decisions: DecayedSum;
  denies: DecayedSum;
  /** Window counts waiting to be learned, like `history` (a probe's lead-up must not teach its deny ratio). */
  pending: Array<{ decisions: number; denies: number; atMs: number }>;
  lastMs: number;
}

/** Windows a count waits before it is learned. */
const LEARN_DELAY_WINDOWS = 15;

/** Weight of the prior deny ratio, in decisions. */
const PRIOR_DECISIONS = 50;

/** Pure scoring of denial bursts; exported for tests. */
export function createAuthzDenyBurstRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>, stepSeconds = options.windowSeconds): DetectorRunner<AuthzDenyBurstRow> {
  const principals = new Map<string, PrincipalState>();
  const halfLifeMs = options.halfLifeSeconds * 1000;
  let windowsSeen = 0;

  return {
    evaluate(window, rows) {
      // The deny ratio is learned from the newest step only: windows overlap, and counting each
      // decision once per window it sits in would let a few decisions outweigh the prior.
      const newestFromTs = (window.endMs - Math.min(stepSeconds, options.windowSeconds) * 1000) / 1000;
      const perPrincipal = new Map<string, { actions: Set<string>; denies: number; decisions: number; newDenies: number; newDecisions: number; policies: Map<string, number>; dsts: Set<string>; namespaces: Set<string>; firstTs: number }>();
      for (const row of rows) {
        let p = perPrincipal.get(row.principal);
        if (!p) perPrincipal.set(row.principal, (p = { actions: new Set(), denies: 0, decisions: 0, newDenies: 0, newDecisions: 0, policies: new Map(), dsts: new Set(), namespaces: new Set(), firstTs: Infinity }));
        p.decisions += row.decisions;
        if (row.ts >= newestFromTs) {
          p.newDecisions += row.decisions;
          p.newDenies += row.denies;
        }
        if (row.denies === 0) continue;
        const concrete = row.concrete_paths ?? [];
        if (concrete.length === 0) p.actions.add(`${row.method} ${row.action_path}`.trim());
        for (const path of concrete) p.actions.add(`${row.method} ${path}`.trim());
        p.denies += row.denies;
        if (row.policy) p.policies.set(row.policy, (p.policies.get(row.policy) ?? 0) + row.denies);
        if (row.dst_key) p.dsts.add(row.dst_key);
        if (row.dst_namespace) p.namespaces.add(row.dst_namespace);
        p.firstTs = Math.min(p.firstTs, row.ts);
      }
      const candidates: Candidate[] = [];
      for (const [principal, p] of perPrincipal) {
        let state = principals.get(principal);
        if (!state) principals.set(principal, (state = { history: createDelayedSeries(720, LEARN_DELAY_WINDOWS), decisions: { value: 0, atMs: 0 }, denies: { value: 0, atMs: 0 }, pending: [], lastMs: window.endMs }));
        state.lastMs = window.endMs;
        const distinct = p.actions.size;
        const usual = state.history.length >= 10 ? state.history.stats().p99 : 0;
        const histDecisions = readDecayed(state.decisions, window.endMs, halfLifeMs);
        const baselineRatio = (readDecayed(state.denies, window.endMs, halfLifeMs) + options.priorDenyRatio * PRIOR_DECISIONS) / (histDecisions + PRIOR_DECISIONS);
        const expected = Math.max(p.decisions * baselineRatio, 0.05);
        const flagged =
          distinct >= options.minDistinctActions &&
          distinct > options.minRatio * usual &&
          // Distinct actions, not denials: a denied request retried five times is one surprise, not five.
          distinct >= options.minTimesExpected * expected &&
          computePoissonSurprise(distinct, expected) >= options.minSurpriseLog10;
        if (!flagged) {
          if (p.denies > 0) state.history.push(distinct);
          state.pending.push({ decisions: p.newDecisions, denies: p.newDenies, atMs: window.endMs });
          while (state.pending.length > LEARN_DELAY_WINDOWS) {
            const learned = state.pending.shift() as { decisions: number; denies: number; atMs: number };
            addDecayed(state.decisions, learned.decisions, learned.atMs, halfLifeMs);
            addDecayed(state.denies, learned.denies, learned.atMs, halfLifeMs);
          }
          continue;
        }
        state.history.discardPending();
        state.pending.length = 0;
        let severity: Severity = distinct >= options.highDistinctActions ? 'high' : 'medium';
        // The target: the one destination service, or — for application decision logs, which name
        // no service — the policy (decision path) that denied, so the finding still names what was probed.
        const topPolicy = [...p.policies].sort((a, b) => b[1] - a[1])[0]?.[0];
        const target = p.dsts.size === 1 ? ([...p.dsts][0] ?? null) : p.dsts.size === 0 && topPolicy ? `policy ${topPolicy}` : null;
        if ([...p.namespaces].some((ns) => sensitiveNamespaces.has(ns))) severity = raiseSeverity(severity);
        candidates.push({
          subject: principal,
          src: principal,
          dst: target,
          severity,
          score: distinct,
          summary: `${principal} was denied by the policy engine${target ? ` at ${target}` : ''} on ${distinct} distinct actions (${p.denies} of ${p.decisions} decisions) in ${options.windowSeconds} s, usually ${roundNumber(usual)} actions and a ${roundNumber(baselineRatio * 100)}% deny ratio.`,
          evidence: {
            window_seconds: options.windowSeconds,
            distinct_actions: distinct,
            denies: p.denies,
            decisions: p.decisions,
            expected_denies: roundNumber(expected),
            baseline_deny_ratio: Number(baselineRatio.toFixed(4)),
            usual_p99_distinct_actions: roundNumber(usual),
            actions: [...p.actions].slice(0, 20),
            policies: Object.fromEntries([...p.policies].sort((a, b) => b[1] - a[1]).slice(0, 5)),
            destinations: [...p.dsts].slice(0, 10),
          },
          firstEvidenceMs: p.firstTs * 1000,
        });
      }
      if (++windowsSeen % 360 === 0) evictIdle(principals, window.endMs, 7 * 86_400_000);
      return candidates;
    },
  };
}

/** The authz_deny_burst detector. */
export const authzDenyBurst: DetectorDefinition<AuthzDenyBurstRow, typeof AuthzDenyBurstOptions> = {
  name: 'authz_deny_burst',
  description: 'one principal denied by the policy engine across many distinct actions (privilege probing)',
  optionsSchema: AuthzDenyBurstOptions,
  explains: ['deny_spike', 'new_edge'],
  query: (database) => `
    SELECT toUInt32(ts) AS ts, principal, dst_key, max(dst_namespace) AS dst_namespace, method, action_path, policy,
           toFloat64(sum(denies)) AS denies, toFloat64(sum(decisions)) AS decisions, groupUniqArrayArray(concrete_paths) AS concrete_paths
    FROM ${database}.detector_authz_10s
    WHERE ${BUCKET_RANGE_SQL}
    GROUP BY ts, principal, dst_key, method, action_path, policy`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createAuthzDenyBurstRunner(options, context.sensitiveNamespaces, context.stepSeconds),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.subject, where: "decision = 'deny' AND (reporter = 'authz' OR source = 'opa')" });
    return {
      sample_decision_ids: [...new Set(events.map((e) => e.decision_id).filter(Boolean))].slice(0, 5),
      sample_request_ids: pickRequestIds(events),
      policies_sampled: countValues(events.map((e) => e.decision_reason)),
    };
  },
};
