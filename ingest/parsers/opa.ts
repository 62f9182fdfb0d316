// OPA decision logs: one decision event per record — an element of the upload body (a JSON array
// split by records.ts), a line of NDJSON, or a console line (`decision_logs.console: true`), also
// behind a fluentd/kubectl/compose prefix. Reads, for example:
// {"decision_id":"4ca636c1-…","path":"http/example/authz/allow","input":{"method":"GET","path":"/salary/bob"},"result":"true","requested_by":"[::1]:59943","timestamp":"2018-01-01T00:00:00.000000Z"}
// For opa-envoy-plugin the input is Envoy's ext_authz CheckRequest (`input.attributes`, v2 and v3
// encodings): it gives the caller, the callee and the request. Masked or erased input fields are
// simply absent (or replaced by strings) and read as unknown.
import { createEmptyEvent, type NormalizedEvent, type ParseOptions, type ParseResult } from '../../core/event.ts';
import { canonicalizeIdentity, namespaceOfHost, parseSpiffeId, parseXfcc, serviceOfHost } from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { isJsonObject, parseJsonObject, readPort, readStatus, traceIdFromTraceparent, truncateText, type JsonObject } from './read-values.ts';
import { parseTimestampMs } from './timestamps.ts';
import type { FormatDeclaration } from './format.ts';

/** The `opa` format, as the registry, the pipeline and the docs know it. */
export const OPA_FORMAT: FormatDeclaration = {
  name: 'opa',
  source: 'opa',
  parse: parseOpa,
  description: 'OPA decision logs: upload bodies, NDJSON, console lines (Envoy ext_authz inputs mapped)',
  skipReasons: [],
  envelope: 'records',
  howToSend: "OPA's native upload: `services: [{name: ztwatch, url: http://HOST:8080/v1/opa}]`, `decision_logs: {service: ztwatch}`",
  docs: 'docs/api.md#opa-decision-logs',
};

/** Longest prefix (fluentd time and tag, pod name) skipped before the JSON object. */
const MAX_PREFIX_CHARS = 512;
const MAX_REASON_CHARS = 256;

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function obj(value: unknown): JsonObject | undefined {
  return isJsonObject(value) ? value : undefined;
}

function isDecisionEvent(event: JsonObject): boolean {
  return typeof event.decision_id === 'string' || event.type === 'openpolicyagent.org/decision_logs' || event.msg === 'Decision Log';
}

/** Sets decision (and status, when the policy chose one) from the policy's `result`. */
function applyResult(event: NormalizedEvent, result: unknown): void {
  let allowed: unknown = result;
  const object = obj(result);
  if (object !== undefined) {
    allowed = 'allowed' in object ? object.allowed : object.allow;
    const status = readStatus(object.http_status);
    if (status > 0) event.status = status;
  }
  if (allowed === true || allowed === 'true') event.decision = 'allow';
  else if (allowed === false || allowed === 'false') event.decision = 'deny';
  else event.decision = 'unknown';
}

/** ip and port of an Envoy `Address` in any of its JSON encodings (v3 protojson, snake_case, v2). */
function readSocketAddress(peer: JsonObject | undefined): { ip: string; port: number } {
  const address = obj(peer?.address);
  const socket = obj(address?.socketAddress) ?? obj(address?.socket_address) ?? obj(obj(address?.Address)?.SocketAddress);
  if (socket === undefined) return { ip: '', port: 0 };
  const port = socket.portValue ?? socket.port_value ?? obj(socket.PortSpecifier)?.PortValue;
  return { ip: str(socket.address), port: readPort(port) };
}

function header(headers: JsonObject | undefined, name: string): string {
  return headers === undefined ? '' : str(headers[name]);
}

/** Fills the event from an Envoy ext_authz `CheckRequest` input (`input.attributes`). */
function readExtAuthz(event: NormalizedEvent, input: JsonObject, attributes: JsonObject): void {
  const source = obj(attributes.source);
  const destination = obj(attributes.destination);
  const src = readSocketAddress(source);
  const dst = readSocketAddress(destination);
  event.src_ip = src.ip;
  event.src_port = src.port;
  event.dst_ip = dst.ip;
  event.dst_port = dst.port;

  const http = obj(obj(attributes.request)?.http);
  const headers = obj(http?.headers);
  event.method = str(http?.method) || header(headers, ':method');
  event.path = str(http?.path) || header(headers, ':path');
  if (event.path === '' && Array.isArray(input.parsed_path) && input.parsed_path.every((p) => typeof p === 'string')) {
    event.path = `/${input.parsed_path.join('/')}`;
  }
  event.authority = str(http?.host) || header(headers, ':authority');
  event.protocol = str(http?.protocol);
  event.request_id = header(headers, 'x-request-id');
  event.trace_id = header(headers, 'x-b3-traceid') || traceIdFromTraceparent(header(headers, 'traceparent'));

  // The peer certificate's URI SAN when Envoy terminated mTLS; otherwise what the last proxy forwarded.
  let srcIdentity = str(source?.principal);
  let dstIdentity = str(destination?.principal);
  const xfcc = header(headers, 'x-forwarded-client-cert');
  if (xfcc !== '') {
    const parsed = parseXfcc(xfcc);
    if (srcIdentity === '') srcIdentity = parsed.uri;
    if (dstIdentity === '') dstIdentity = parsed.by;
  }
  event.src_identity = canonicalizeIdentity(srcIdentity);
  event.dst_identity = canonicalizeIdentity(dstIdentity);
  if (event.src_identity.startsWith('spiffe://')) event.mtls = 'yes';
  event.dst_service = serviceOfHost(event.authority);
  event.dst_namespace = namespaceOfHost(event.authority);
}

function readPath(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length > 0 && value.every((p) => typeof p === 'string')) return `/${value.join('/')}`;
  return '';
}

/**
 * Fills the event from a policy input that is not an ext_authz request: the HTTP request may be
 * described at `input`, `input.request` or `input.body`; the caller at `input.principal`,
 * `input.subject`, `input.user` or (Kubernetes admission) `input.request.userInfo.username`.
 */
function readGenericInput(event: NormalizedEvent, input: JsonObject): void {
  const request = obj(input.request);
  const body = obj(input.body);
  for (const candidate of [input, request, body]) {
    if (candidate === undefined) continue;
    const method = str(candidate.method);
    const path = readPath(candidate.path);
    if (method !== '' || path !== '') {
      event.method = method;
      event.path = path;
      break;
    }
  }
  const identity =
    str(input.principal) || str(input.subject) || str(input.user) || str(obj(request?.userInfo)?.username);
  event.src_identity = canonicalizeIdentity(identity);
}

/** Parses one OPA decision-log record. */
export function parseOpa(line: string, observedTimeMs: number, _options?: ParseOptions): ParseResult {
  let start = 0;
  while (start < line.length && (line.charCodeAt(start) === 32 || line.charCodeAt(start) === 9 || line.charCodeAt(start) === 0xfeff)) start++;
  if (start >= line.length) return { ok: false, reason: 'opa_empty' };
  if (line.charCodeAt(start) === 35 /* # */) return { ok: false, reason: 'opa_comment' };
  if (line.charCodeAt(start) !== 123 /* { */) {
    // `2024-09-23T22:32:47+00:00<TAB>candigv2_opa_1<TAB>{…}`: a log shipper's prefix.
    const brace = line.indexOf('{', start);
    if (brace < 0 || brace - start > MAX_PREFIX_CHARS || line.lastIndexOf('"', brace) >= start) return { ok: false, reason: 'opa_not_json' };
    start = brace;
  }
  const record = parseJsonObject(start === 0 ? line : line.slice(start));
  if (record === undefined) return { ok: false, reason: 'opa_bad_json' };
  if (!isDecisionEvent(record)) return { ok: false, reason: 'opa_not_decision' };
  const time = parseTimestampMs(record.timestamp);
  if (time === undefined) return { ok: false, reason: 'opa_bad_timestamp' };

  const event = createEmptyEvent('opa', observedTimeMs);
  event.time = time;
  event.raw = line;
  event.reporter = 'authz';
  event.decision_id = str(record.decision_id);
  const policy = str(record.path) || str(record.query);
  event.decision_reason = truncateText(policy.startsWith('/') ? policy.slice(1) : policy, MAX_REASON_CHARS);
  applyResult(event, record.result);

  const input = obj(record.input);
  if (input !== undefined) {
    const attributes = obj(input.attributes);
    if (attributes !== undefined) readExtAuthz(event, input, attributes);
    else readGenericInput(event, input);
  }
  event.route = templateRoute(event.path);
  if (event.src_identity !== '') {
    const spiffe = parseSpiffeId(event.src_identity);
    if (spiffe) {
      event.src_namespace = spiffe.namespace;
      event.src_workload = spiffe.serviceAccount;
    }
  }
  if (event.dst_namespace === '' && event.dst_identity !== '') event.dst_namespace = parseSpiffeId(event.dst_identity)?.namespace ?? '';
  return { ok: true, event };
}
