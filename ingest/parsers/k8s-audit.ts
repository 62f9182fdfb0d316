// Kubernetes audit events, from the audit log file (one Event per line) or the audit webhook (an
// EventList per POST). The API server logs each request at several stages; only the final one
// (ResponseComplete, or Panic) becomes an event, so a request is counted once.
import { isIP } from 'node:net';
import { createEmptyEvent, type NormalizedEvent, type ParseResult } from '../../core/event.ts';
import { canonicalizeIdentity, namespaceOfSpiffe } from '../identity.ts';
import { isJsonObject } from './read-values.ts';
import { parseTimestampMs } from './timestamps.ts';
import type { FormatDeclaration } from './format.ts';

/** Reasons for records that are read correctly but are counted elsewhere (earlier stages). */
export const K8S_AUDIT_SKIP_REASONS = ['k8s_audit_not_final_stage'] as const;

/** The `k8s-audit` format, as the registry, the pipeline and the docs know it. */
export const K8S_AUDIT_FORMAT: FormatDeclaration = {
  name: 'k8s-audit',
  source: 'k8s_audit',
  parse: parseK8sAudit,
  description: 'Kubernetes audit events (audit log NDJSON, webhook EventList items); final stage only',
  skipReasons: K8S_AUDIT_SKIP_REASONS,
  envelope: 'k8s_event_list',
  howToSend: '`--audit-webhook-config-file` pointing at `POST /v1/ingest/k8s-audit`',
  docs: 'docs/ingest-sources.md',
};

/** The destination every audit event names: the API server that logged it. */
export const K8S_API_SERVICE = 'kube-apiserver';

const FINAL_STAGES = new Set(['ResponseComplete', 'Panic']);
const EARLY_STAGES = new Set(['RequestReceived', 'ResponseStarted']);

/** True when `head` (leading blanks removed) looks like an audit Event or EventList. */
export function looksLikeK8sAudit(head: string): boolean {
  return head.startsWith('{') && (head.includes('"auditID"') || (head.includes('"kind":"EventList"') && head.includes('audit.k8s.io')));
}

/**
 * The items of an `audit.k8s.io` EventList (the audit webhook's body), each as JSON text ready for
 * `parseK8sAudit`; undefined when `body` is not an EventList.
 */
export function splitEventList(body: unknown): string[] | undefined {
  if (!isJsonObject(body) || body.kind !== 'EventList' || !Array.isArray(body.items)) return undefined;
  return body.items.map((item) => JSON.stringify(item));
}

/**
 * Parses one audit Event. Reads, for example:
 * `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"1d11…","stage":"ResponseComplete","requestURI":"/apis?timeout=32s","verb":"get","user":{"username":"alice"},"sourceIPs":["10.0.0.7"],"responseStatus":{"code":403,"reason":"Forbidden"},"stageTimestamp":"2022-08-16T16:11:07.678798Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":"…"}}`
 */
export function parseK8sAudit(line: string, observedTimeMs: number): ParseResult {
  const text = line.trim();
  if (text === '') return fail('k8s_audit_empty');
  if (!text.startsWith('{')) return fail('k8s_audit_not_json');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('k8s_audit_bad_json');
  }
  if (!isJsonObject(value)) return fail('k8s_audit_not_an_object');
  if (value.kind === 'EventList') return fail('k8s_audit_event_list');
  if (value.kind !== undefined && value.kind !== 'Event') return fail('k8s_audit_not_an_event');
  const stage = str(value.stage);
  if (EARLY_STAGES.has(stage)) return fail('k8s_audit_not_final_stage');
  if (!FINAL_STAGES.has(stage)) return fail('k8s_audit_bad_stage');
  const verb = str(value.verb);
  const auditId = str(value.auditID);
  if (verb === '' || auditId === '') return fail('k8s_audit_missing_fields');
  const time = readTime(value.stageTimestamp) ?? readTime(value.requestReceivedTimestamp) ?? readTime(value.timestamp);
  if (time === undefined) return fail('k8s_audit_bad_timestamp');

  const event = createEmptyEvent('k8s_audit', observedTimeMs);
  event.time = time;
  event.reporter = 'apiserver';
  event.request_id = auditId;
  event.method = verb;
  event.path = str(value.requestURI);
  event.dst_service = K8S_API_SERVICE;
  const objectRef = isJsonObject(value.objectRef) ? value.objectRef : {};
  // The namespace of the object acted on: what a compliance query filters by.
  event.dst_namespace = str(objectRef.namespace);
  event.route = toRoute(event.path, objectRef);
  event.protocol = 'https';
  setUser(event, isJsonObject(value.user) ? value.user : {});
  const sourceIp = Array.isArray(value.sourceIPs) ? str(value.sourceIPs[0]) : '';
  event.src_ip = isIP(sourceIp) ? sourceIp : '';
  const response = isJsonObject(value.responseStatus) ? value.responseStatus : {};
  const code = response.code;
  event.status = typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 999 ? code : 0;
  decide(event, stage, response, isJsonObject(value.annotations) ? value.annotations : {});
  event.raw = line;
  return { ok: true, event };
}

function setUser(event: NormalizedEvent, user: Record<string, unknown>): void {
  // `system:serviceaccount:NS:SA` becomes its SPIFFE ID; people and groups keep their names.
  event.src_identity = canonicalizeIdentity(str(user.username));
  event.src_namespace = namespaceOfSpiffe(event.src_identity);
}

function decide(event: NormalizedEvent, stage: string, response: Record<string, unknown>, annotations: Record<string, unknown>): void {
  const decision = str(annotations['authorization.k8s.io/decision']);
  const authzReason = str(annotations['authorization.k8s.io/reason']);
  const message = str(response.message);
  if (stage === 'Panic') {
    event.decision = 'error';
    event.decision_reason = 'panic';
    if (event.status === 0) event.status = 500;
  } else if (decision === 'forbid' || event.status === 403) {
    event.decision = 'deny';
    // RBAC leaves the reason empty on denial; the response message then says who could not do what.
    event.decision_reason = authzReason || message || str(response.reason) || 'forbidden';
  } else if (event.status === 401) {
    event.decision = 'deny';
    event.decision_reason = message || 'unauthenticated';
  } else if (event.status >= 500) {
    event.decision = 'error';
    event.decision_reason = message || str(response.reason);
  } else if (decision === 'allow' || (event.status > 0 && event.status < 400)) {
    event.decision = 'allow';
    event.decision_reason = authzReason;
  } else {
    // Authorized but failed for another reason (404, 409, 422): the request was allowed.
    event.decision = event.status > 0 ? 'allow' : 'unknown';
    event.decision_reason = authzReason;
  }
  event.decision_reason = event.decision_reason.slice(0, 512);
}

/**
 * `/api/v1/namespaces/default/pods/nginx-7998/exec?command=bash` → `/api/v1/namespaces/{namespace}/pods/{name}/exec`:
 * object names and namespaces are the high-cardinality parts of an API path.
 */
function toRoute(uri: string, objectRef: Record<string, unknown>): string {
  const end = uri.indexOf('?');
  const path = end >= 0 ? uri.slice(0, end) : uri;
  const name = str(objectRef.name);
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (i > 0 && segments[i - 1] === 'namespaces' && segment !== '') segments[i] = '{namespace}';
    else if (name !== '' && segment === name && i > 1) segments[i] = '{name}';
  }
  return segments.join('/');
}

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}


function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** RFC 3339 (the API server writes microseconds) → ms, UTC; other shapes are no time. */
function readTime(value: unknown): number | undefined {
  return typeof value === 'string' && value.length >= 20 ? parseTimestampMs(value) : undefined;
}
