// authz_deny_burst: one principal denied by the policy engine (OPA decision logs, ext_authz) across
// many distinct actions in a short window: privilege probing. One request retried many times is
// one action, so it never counts; the principal's own past sets the bar twice: its distinct denied
// actions per window, and its deny ratio — a busy principal denied 1% of the time collects a few
// distinct denials per window from volume alone, a prober is denied far more than its share.
// Actions are counted by concrete path (method + path), not only by route template, so enumerating
// ids under one template (/users/1001, /users/1002, …) is as visible as trying many templates.
// A slow prober (a handful of actions spread over several minutes) is judged over a longer window
// too, `slowWindowSeconds`, against the decisions the principal made in it and a stricter surprise;
// and, since a busy principal's background denials can hide a handful of probes in those counts, by
// novelty: denied actions on route templates the principal was never denied on before, against the
// pace at which it met new ones once established.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, computePoissonSurprise, createDelayedSeries, evictIdle, readDecayed, type DecayedSum, type DelayedSeries } from './baseline.ts';
import { BUCKET_RANGE_SQL, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorRunner, type DetectorDeclaration } from './detector.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';
import { templateRoute } from '../core/route.ts';

/** What authz_deny_burst is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const AUTHZ_DENY_BURST: DetectorDeclaration = {
  name: 'authz_deny_burst',
  description: 'one principal denied by the policy engine across many distinct actions/paths (privilege probing)',
  mustNotFlag: 'one retried request',
  explains: ['deny_spike', 'new_edge'],
  rollups: ['detector_authz_10s'],
  attackClasses: ['privilege_probing'],
  alert: {
    name: 'ZtwatchAuthzDenyBurst',
    subject: 'source',
    for: '30s',
    labels: { team: 'security' },
    summary: 'Privilege probing by {{ $labels.src }}',
    description:
      'Detector {{ $labels.detector }} sees {{ $labels.subject }} denied by the policy engine across many distinct actions or paths (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}): a principal trying what it may do, rather than one retried request.',
  },
  runbook: {
    meaning:
      '`authz_deny_burst` saw one principal (a user or a workload identity) denied by the policy engine across many distinct actions or paths in a short window: privilege probing. One retried request does not fire it.',
    confirm: [
      '*ztwatch / Compliance access history*: filter by the principal and `decision = deny`: the list of distinct paths/actions and the OPA decision ids.',
      "*ztwatch / SOC overview*: the anomaly's evidence lists the distinct actions and policy names.",
    ],
    firstActions: [
      'Human principal (e-mail/user): contact the owner; if the activity is not theirs, revoke the session at the identity-aware proxy and reset the credential.',
      'Workload principal: treat as a compromised workload (see ZtwatchLateralMovement).',
      'If a policy change caused legitimate requests to be denied, fix the policy and close.',
    ],
  },
};

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
    /** Longer window for slow probing (a handful of actions over several minutes), in seconds; 0 turns it off. @default 900 */
    slowWindowSeconds: Type.Integer({ minimum: 0, multipleOf: 10, default: 900 }),
    /** Fewest distinct denied actions in the slow window. @default 5 */
    slowMinDistinctActions: Type.Integer({ minimum: 2, default: 5 }),
    /** Poisson surprise, −log10 p, the slow window's distinct denials must reach. @default 5 */
    slowMinSurpriseLog10: Type.Number({ minimum: 0, default: 5 }),
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
  /** Slow window: denied action → event time (s) it was last denied. */
  slowActions: Map<string, number>;
  /** Slow window: decisions of each step, newest last. */
  slowSteps: Array<{ ts: number; decisions: number }>;
  /** Distinct denied actions per slow window, learned like `history`. */
  slowHistory: DelayedSeries;
  /** Event time (ms) the principal was first seen. */
  firstMs: number;
  /** Slow window: denied action → its route template (action_path). */
  slowTemplates: Map<string, string>;
  /** Route templates the principal was denied on before the slow window: template → last event time (ms). */
  knownTemplates: Map<string, number>;
  /** Denied templates of recent steps, learned into knownTemplates once they leave the slow window. */
  templateQueue: Array<{ ms: number; template: string }>;
  /** Templates that were new to the principal when learned, once it was established (its own pace of novelty). */
  novelLearned: number;
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
  // A slow probe's own denials must not be learned as the principal's deny ratio before the slow window judged them.
  const learnDelay = Math.max(LEARN_DELAY_WINDOWS, Math.ceil(options.slowWindowSeconds / Math.max(stepSeconds, 1)) + 1);

  return {
    evaluate(window, rows) {
      // The deny ratio is learned from the newest step only: windows overlap, and counting each
      // decision once per window it sits in would let a few decisions outweigh the prior.
      const newestFromTs = (window.endMs - Math.min(stepSeconds, options.windowSeconds) * 1000) / 1000;
      const perPrincipal = new Map<string, { actions: Set<string>; lastTs: Map<string, number>; templates: Map<string, string>; newTemplates: Array<{ ms: number; template: string }>; denies: number; decisions: number; newDenies: number; newDecisions: number; policies: Map<string, number>; dsts: Set<string>; namespaces: Set<string>; firstTs: number }>();
      for (const row of rows) {
        let p = perPrincipal.get(row.principal);
        if (!p) perPrincipal.set(row.principal, (p = { actions: new Set(), lastTs: new Map(), templates: new Map(), newTemplates: [], denies: 0, decisions: 0, newDenies: 0, newDecisions: 0, policies: new Map(), dsts: new Set(), namespaces: new Set(), firstTs: Infinity }));
        p.decisions += row.decisions;
        if (row.ts >= newestFromTs) {
          p.newDecisions += row.decisions;
          p.newDenies += row.denies;
        }
        if (row.denies === 0) continue;
        const concrete = row.concrete_paths ?? [];
        const named = concrete.length === 0 ? [`${row.method} ${row.action_path}`.trim()] : concrete.map((path) => `${row.method} ${path}`.trim());
        for (const action of named) {
          p.actions.add(action);
          p.lastTs.set(action, Math.max(p.lastTs.get(action) ?? 0, row.ts));
          // Decision logs without a route name concrete paths: their template is what is novel or not.
          p.templates.set(action, templateRoute(row.action_path));
        }
        p.denies += row.denies;
        if (row.ts >= newestFromTs) p.newTemplates.push({ ms: row.ts * 1000, template: templateRoute(row.action_path) });
        if (row.policy) p.policies.set(row.policy, (p.policies.get(row.policy) ?? 0) + row.denies);
        if (row.dst_key) p.dsts.add(row.dst_key);
        if (row.dst_namespace) p.namespaces.add(row.dst_namespace);
        p.firstTs = Math.min(p.firstTs, row.ts);
      }
      const candidates: Candidate[] = [];
      for (const [principal, p] of perPrincipal) {
        let state = principals.get(principal);
        if (!state)
          principals.set(
            principal,
            (state = { history: createDelayedSeries(720, LEARN_DELAY_WINDOWS), decisions: { value: 0, atMs: 0 }, denies: { value: 0, atMs: 0 }, pending: [], lastMs: window.endMs, slowActions: new Map(), slowSteps: [], slowHistory: createDelayedSeries(720, learnDelay), firstMs: window.endMs, slowTemplates: new Map(), knownTemplates: new Map(), templateQueue: [], novelLearned: 0 }),
          );
        state.lastMs = window.endMs;
        const distinct = p.actions.size;
        const usual = state.history.length >= 10 ? state.history.stats().p99 : 0;
        const histDecisions = readDecayed(state.decisions, window.endMs, halfLifeMs);
        const baselineRatio = (readDecayed(state.denies, window.endMs, halfLifeMs) + options.priorDenyRatio * PRIOR_DECISIONS) / (histDecisions + PRIOR_DECISIONS);
        const expected = Math.max(p.decisions * baselineRatio, 0.05);
        let flagged =
          distinct >= options.minDistinctActions &&
          distinct > options.minRatio * usual &&
          // Distinct actions, not denials: a denied request retried five times is one surprise, not five.
          distinct >= options.minTimesExpected * expected &&
          computePoissonSurprise(distinct, expected) >= options.minSurpriseLog10;
        // The slow window: the same tests over slowWindowSeconds, with a stricter surprise.
        let slow: { distinct: number; decisions: number; expected: number; usual: number; firstTs: number; novel?: { actions: number; expected: number } } | undefined;
        if (options.slowWindowSeconds > options.windowSeconds) {
          const fromTs = window.endMs / 1000 - options.slowWindowSeconds;
          for (const [action, ts] of p.lastTs) state.slowActions.set(action, Math.max(state.slowActions.get(action) ?? 0, ts));
          for (const [action, template] of p.templates) state.slowTemplates.set(action, template);
          let firstTs = Infinity;
          for (const [action, ts] of state.slowActions) {
            if (ts < fromTs) {
              state.slowActions.delete(action);
              state.slowTemplates.delete(action);
            } else firstTs = Math.min(firstTs, ts);
          }
          // Route templates become known once their denials leave the slow window; one first
          // denied after the principal was established counts towards its own pace of novelty.
          const slowMs = options.slowWindowSeconds * 1000;
          const establishedAtMs = state.firstMs + 2 * slowMs;
          state.templateQueue.push(...p.newTemplates);
          while ((state.templateQueue[0]?.ms ?? Infinity) < fromTs * 1000) {
            const { ms, template } = state.templateQueue.shift() as { ms: number; template: string };
            if (!state.knownTemplates.has(template) && ms >= establishedAtMs) state.novelLearned++;
            state.knownTemplates.set(template, ms);
          }
          state.slowSteps.push({ ts: newestFromTs, decisions: p.newDecisions });
          while ((state.slowSteps[0]?.ts ?? Infinity) < fromTs) state.slowSteps.shift();
          const decisions = Math.max(p.decisions, state.slowSteps.reduce((n, x) => n + x.decisions, 0));
          const slowDistinct = state.slowActions.size;
          const slowUsual = state.slowHistory.length >= 10 ? state.slowHistory.stats().p99 : 0;
          const slowExpected = Math.max(decisions * baselineRatio, 0.05);
          if (
            !flagged &&
            slowDistinct >= options.slowMinDistinctActions &&
            slowDistinct > options.minRatio * slowUsual &&
            slowDistinct >= options.minTimesExpected * slowExpected &&
            computePoissonSurprise(slowDistinct, slowExpected) >= options.slowMinSurpriseLog10
          ) {
            flagged = true;
            slow = { distinct: slowDistinct, decisions, expected: slowExpected, usual: slowUsual, firstTs };
          } else if (!flagged && window.endMs >= establishedAtMs) {
            // A busy principal's own background denials hide a handful of probes in the counts above;
            // what they do not hide is novelty: actions on routes the principal was never denied on,
            // judged against the pace at which it met such routes before.
            let novel = 0;
            let novelFirstTs = Infinity;
            for (const [action, template] of state.slowTemplates) {
              if (state.knownTemplates.has(template)) continue;
              novel++;
              novelFirstTs = Math.min(novelFirstTs, state.slowActions.get(action) ?? Infinity);
            }
            const learnedSpanMs = Math.max(slowMs, window.endMs - slowMs - establishedAtMs);
            const novelExpected = Math.max((state.novelLearned * slowMs) / learnedSpanMs, 0.05);
            if (novel >= options.slowMinDistinctActions && novel >= options.minTimesExpected * novelExpected && computePoissonSurprise(novel, novelExpected) >= options.slowMinSurpriseLog10) {
              flagged = true;
              slow = { distinct: slowDistinct, decisions, expected: slowExpected, usual: slowUsual, firstTs: novelFirstTs, novel: { actions: novel, expected: novelExpected } };
            }
          }
          if (!flagged && state.slowActions.size > 0) state.slowHistory.push(slowDistinct);
        }
        if (!flagged) {
          if (p.denies > 0) state.history.push(distinct);
          state.pending.push({ decisions: p.newDecisions, denies: p.newDenies, atMs: window.endMs });
          while (state.pending.length > learnDelay) {
            const learned = state.pending.shift() as { decisions: number; denies: number; atMs: number };
            addDecayed(state.decisions, learned.decisions, learned.atMs, halfLifeMs);
            addDecayed(state.denies, learned.denies, learned.atMs, halfLifeMs);
          }
          continue;
        }
        state.history.discardPending();
        state.slowHistory.discardPending();
        state.pending.length = 0;
        const shown = slow ? slow.distinct : distinct;
        const windowSeconds = slow ? options.slowWindowSeconds : options.windowSeconds;
        let severity: Severity = shown >= options.highDistinctActions ? 'high' : 'medium';
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
          score: shown,
          summary: `${principal} was denied by the policy engine${target ? ` at ${target}` : ''} on ${shown} distinct actions (${slow ? `${roundNumber(slow.decisions)} decisions` : `${p.denies} of ${p.decisions} decisions`}) in ${windowSeconds} s${slow ? (slow.novel ? ` (slow probing: ${slow.novel.actions} on routes it was never denied on before, ${roundNumber(slow.novel.expected)} expected)` : ' (slow probing)') : ''}, usually ${roundNumber(slow ? slow.usual : usual)} actions and a ${roundNumber(baselineRatio * 100)}% deny ratio.`,
          evidence: {
            window_seconds: windowSeconds,
            ...(slow ? { slow: true } : {}),
            ...(slow?.novel ? { novel_actions: slow.novel.actions, expected_novel_actions: roundNumber(slow.novel.expected) } : {}),
            distinct_actions: shown,
            denies: p.denies,
            decisions: slow ? slow.decisions : p.decisions,
            expected_denies: roundNumber(slow ? slow.expected : expected),
            baseline_deny_ratio: Number(baselineRatio.toFixed(4)),
            usual_p99_distinct_actions: roundNumber(slow ? slow.usual : usual),
            actions: (slow ? [...state.slowActions.keys()] : [...p.actions]).slice(0, 20),
            policies: Object.fromEntries([...p.policies].sort((a, b) => b[1] - a[1]).slice(0, 5)),
            destinations: [...p.dsts].slice(0, 10),
          },
          firstEvidenceMs: (slow ? Math.min(slow.firstTs, p.firstTs) : p.firstTs) * 1000,
        });
      }
      if (++windowsSeen % 360 === 0) evictIdle(principals, window.endMs, 7 * 86_400_000);
      return candidates;
    },
  };
}

/** The authz_deny_burst detector. */
export const authzDenyBurst: DetectorDefinition<AuthzDenyBurstRow, typeof AuthzDenyBurstOptions> = {
  ...AUTHZ_DENY_BURST,
  optionsSchema: AuthzDenyBurstOptions,
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
