// Who decided what on an Envoy record: RBAC policy ids in the details, ext_authz, failure flags,
// status and TLS failure, turned into the event's decision and decision_reason.
import type { Decision, NormalizedEvent } from '../../core/event.ts';
import { truncateText } from './read-values.ts';
import { flagSetOfList, type FlagSet } from './envoy-flags.ts';

const RBAC_MARK = 'rbac_access_denied';
/** Longest decision_reason kept, in characters. */
export const MAX_DECISION_REASON_CHARS = 256;

/**
 * The policy in `rbac_access_denied_matched_policy[ns[foo]-policy[bar]-rule[0]]`
 * (→ `ns[foo]-policy[bar]-rule[0]`; `[none]` → `none`); `RBAC` for an RBAC denial without a
 * policy id; '' when `details` is not an RBAC denial.
 */
export function rbacPolicyOf(details: string): string {
  // Cheap guards first: this runs on every line, and nearly every line says `via_upstream`.
  if (details.length < 5 || details === 'via_upstream') return '';
  const mark = details.indexOf(RBAC_MARK);
  if (mark < 0) {
    const upper = details.indexOf('RBAC:');
    if (upper < 0) return '';
    return details.startsWith(' access denied', upper + 5) || details.startsWith('_access_denied', upper + 5) ? 'RBAC' : '';
  }
  const open = details.indexOf('[', mark);
  const close = details.lastIndexOf(']');
  if (open < 0 || close <= open) return 'RBAC';
  return truncateText(details.slice(open + 1, close), MAX_DECISION_REASON_CHARS);
}


/**
 * Writes the decision for an Envoy record and its reason into `event` (mapping table in
 * docs/ingest-formats.md), from its status, method and TLS failure, the parsed flags and the two
 * details fields. RBAC denial (details or `RBAC` flag) → deny with the policy; `UAEX` → deny
 * (error when 5xx: the authorization service itself failed); error flags or 5xx → error; 2xx/3xx
 * → allow; a TCP connection (no method, status 0, no flags) that ended normally → allow; else unknown.
 */
export function decideEnvoy(event: NormalizedEvent, set: FlagSet, details: string, termDetails: string): void {
  event.decision = decisionOf(event, set, details, termDetails);
}

/** The decision; sets `event.decision_reason` on the way (no pair allocated per line). */
function decisionOf(event: NormalizedEvent, set: FlagSet, details: string, termDetails: string): Decision {
  const { status, tls_failure: tlsFailure, method } = event;
  event.decision_reason = '';
  const flagCount = set.flags.length;
  // The common case first: an answered request with nothing unusual about it.
  if (status >= 200 && status < 400 && flagCount === 0 && termDetails === '' && (details === 'via_upstream' || details === '') && tlsFailure === '') {
    return 'allow';
  }
  let policy = rbacPolicyOf(details);
  if (policy === '') policy = rbacPolicyOf(termDetails);
  if (policy !== '') {
    event.decision_reason = policy;
    return 'deny';
  }
  if (set.rbac) {
    event.decision_reason = 'RBAC';
    return 'deny';
  }
  if (set.uaex) {
    event.decision_reason = 'UAEX';
    return status >= 500 || details.startsWith('ext_authz_error') ? 'error' : 'deny';
  }
  if (details.startsWith('ext_authz_denied')) {
    event.decision_reason = 'ext_authz_denied';
    return 'deny';
  }
  if (set.errorReason !== '') {
    event.decision_reason = set.errorReason;
    return 'error';
  }
  if (status >= 500 || details.startsWith('ext_authz_error')) {
    event.decision_reason = details === 'via_upstream' ? '' : truncateText(details, MAX_DECISION_REASON_CHARS);
    return 'error';
  }
  if (tlsFailure !== '') {
    event.decision_reason = tlsFailure;
    return 'error';
  }
  if (status >= 200 && status < 400) return 'allow';
  if (status === 0 && flagCount === 0 && method === '' && termDetails === '') return 'allow';
  return 'unknown';
}

/**
 * Sets `decision` and `decision_reason` from the status, response flags, method and TLS failure
 * already on `event` and the two details fields (see decideEnvoy).
 */
export function applyEnvoyDecision(event: NormalizedEvent, details: string, termDetails: string): void {
  decideEnvoy(event, flagSetOfList(event.response_flags), details, termDetails);
}
