// Istio ambient ztunnel access logs, text or JSON (`LOG_FORMAT=json`). Reads, for example:
// 2025-01-23T05:07:25.806642Z	info	access	connection complete	src.addr=10.129.0.48:40978 src.workload="productpage-v1-57ffb6658c-vmb6z" src.namespace="bookinfo" src.identity="spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage" dst.addr=10.129.0.43:15008 dst.hbone_addr=10.129.0.43:9080 dst.service="details.bookinfo.svc.cluster.local" … direction="outbound" bytes_sent=0 bytes_recv=0 duration="12ms"
// Columns may be separated by tabs or spaces. A line without its time column (as log shippers
// that keep the time elsewhere produce) takes the observed time. `connection opened` lines
// (debug) are skipped: the `connection complete` line of the same connection carries everything.
import { createEmptyEvent, type NormalizedEvent, type ParseOptions, type ParseResult } from '../../core/event.ts';
import { canonicalizeIdentity, namespaceOfHost, parseSpiffeId, serviceOfHost, workloadOfPod } from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { splitHostPort } from './addresses.ts';
import { scanLogfmt } from './logfmt.ts';
import { isJsonObject, parseJsonObject, readCount, readStatus, readText, truncateText } from './read-values.ts';
import { parseDurationMs, parseTimestampMs } from './timestamps.ts';
import { normalizeTlsFailure } from './tls-failures.ts';
import type { FormatDeclaration } from './format.ts';

/** The `ztunnel` format, as the registry, the pipeline and the docs know it. */
export const ZTUNNEL_FORMAT: FormatDeclaration = {
  name: 'ztunnel',
  source: 'ztunnel',
  parse: parseZtunnel,
  description: 'Istio ambient ztunnel access logs (text or JSON)',
  skipReasons: [],
  envelope: 'records',
  howToSend: "ship ztunnel's logs",
  docs: 'docs/ingest-formats.md',
};

const HBONE_PORT = 15008;
const MAX_REASON_CHARS = 256;
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']);
const POLICY_REJECTION = 'policy rejection';
const EXPLICIT_DENY = 'explicitly denied by: ';

/** One access line's fields ('' = absent). Reused between lines. */
class ZtunnelFields {
  srcAddr = '';
  srcWorkload = '';
  srcNamespace = '';
  srcIdentity = '';
  dstAddr = '';
  dstHboneAddr = '';
  dstService = '';
  dstWorkload = '';
  dstNamespace = '';
  dstIdentity = '';
  direction = '';
  bytesSent: unknown = '';
  bytesRecv: unknown = '';
  duration = '';
  error = '';
  method = '';
  path = '';
  protocol = '';
  status: unknown = '';
  host = '';
  requestId = '';

  reset(): this {
    this.srcAddr = this.srcWorkload = this.srcNamespace = this.srcIdentity = '';
    this.dstAddr = this.dstHboneAddr = this.dstService = this.dstWorkload = this.dstNamespace = this.dstIdentity = '';
    this.direction = this.duration = this.error = this.method = this.path = this.protocol = this.host = this.requestId = '';
    this.bytesSent = this.bytesRecv = this.status = '';
    return this;
  }

  assign(key: string, value: unknown): void {
    switch (key) {
      case 'src.addr': this.srcAddr = readText(value); break;
      case 'src.workload': this.srcWorkload = readText(value); break;
      case 'src.namespace': this.srcNamespace = readText(value); break;
      case 'src.identity': this.srcIdentity = readText(value); break;
      case 'dst.addr': this.dstAddr = readText(value); break;
      case 'dst.hbone_addr': this.dstHboneAddr = readText(value); break;
      case 'dst.service': this.dstService = readText(value); break;
      case 'dst.workload': this.dstWorkload = readText(value); break;
      case 'dst.namespace': this.dstNamespace = readText(value); break;
      case 'dst.identity': this.dstIdentity = readText(value); break;
      case 'direction': this.direction = readText(value); break;
      case 'bytes_sent': this.bytesSent = value; break;
      case 'bytes_recv': this.bytesRecv = value; break;
      case 'duration': this.duration = readText(value); break;
      case 'error': this.error = readText(value); break;
      case 'method': this.method = readText(value); break;
      case 'path': this.path = readText(value); break;
      case 'protocol': this.protocol = readText(value); break;
      case 'response_code': this.status = value; break;
      case 'host': this.host = readText(value); break;
      case 'request_id': this.requestId = readText(value); break;
      default: break;
    }
  }
}

const fields = new ZtunnelFields();
const assignField = (key: string, value: string): void => fields.assign(key, value);

/** Reads the next whitespace-separated word from `at`; sets `wordEnd`. */
let wordEnd = 0;
function readWord(line: string, at: number): string {
  let i = at;
  while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  const start = i;
  while (i < line.length && line.charCodeAt(i) !== 32 && line.charCodeAt(i) !== 9) i++;
  wordEnd = i;
  return line.slice(start, i);
}

function isHbone(address: string): boolean {
  return address.endsWith(`:${HBONE_PORT}`);
}

/** Sets decision and reason from ztunnel's `error` field (and an L7 status when present). */
function applyOutcome(event: NormalizedEvent, error: string): void {
  if (error === '') {
    event.decision = event.status >= 500 ? 'error' : 'allow';
    return;
  }
  const rejection = error.indexOf(POLICY_REJECTION);
  if (rejection >= 0) {
    event.decision = 'deny';
    const explicit = error.indexOf(EXPLICIT_DENY, rejection);
    let reason: string;
    if (explicit >= 0) reason = error.slice(explicit + EXPLICIT_DENY.length);
    else {
      const colon = error.indexOf(': ', rejection);
      reason = colon >= 0 ? error.slice(colon + 2) : 'policy_rejection';
    }
    event.decision_reason = truncateText(reason.trim(), MAX_REASON_CHARS);
    return;
  }
  event.decision = 'error';
  event.decision_reason = event.tls_failure !== '' ? event.tls_failure : truncateText(error, MAX_REASON_CHARS);
}

function mtlsOf(f: ZtunnelFields, inbound: boolean, tlsFailure: string): NormalizedEvent['mtls'] {
  if (tlsFailure !== '') return 'unknown';
  // HBONE (port 15008) is always mutual TLS between ztunnels/waypoints.
  if (f.dstHboneAddr !== '' || isHbone(f.dstAddr)) return 'yes';
  if (inbound && f.srcIdentity !== '') return 'yes';
  if (f.dstAddr !== '' && (inbound || f.dstIdentity === '')) return 'no';
  return 'unknown';
}

function buildEvent(f: ZtunnelFields, time: number, raw: string, observedTimeMs: number): ParseResult {
  const event = createEmptyEvent('ztunnel', observedTimeMs);
  event.time = time;
  event.raw = raw;
  const inbound = f.direction === 'inbound';
  event.reporter = inbound ? 'inbound' : f.direction === 'outbound' ? 'outbound' : 'unknown';

  const src = splitHostPort(f.srcAddr);
  event.src_ip = src.host;
  event.src_port = src.port;
  const dst = splitHostPort(f.dstHboneAddr !== '' ? f.dstHboneAddr : f.dstAddr);
  event.dst_ip = dst.host;
  event.dst_port = dst.port;

  event.src_identity = canonicalizeIdentity(f.srcIdentity);
  event.dst_identity = canonicalizeIdentity(f.dstIdentity);
  const srcSpiffe = parseSpiffeId(event.src_identity);
  event.src_namespace = f.srcNamespace || (srcSpiffe?.namespace ?? '');
  event.src_workload = workloadOfPod(f.srcWorkload) || (srcSpiffe?.serviceAccount ?? '');
  event.dst_service = serviceOfHost(f.dstService) || workloadOfPod(f.dstWorkload);
  event.dst_namespace = f.dstNamespace || namespaceOfHost(f.dstService) || (parseSpiffeId(event.dst_identity)?.namespace ?? '');

  event.bytes_in = readCount(f.bytesRecv);
  event.bytes_out = readCount(f.bytesSent);
  event.duration_ms = parseDurationMs(f.duration);
  event.method = f.method;
  event.path = f.path;
  event.route = templateRoute(f.path);
  event.protocol = f.protocol;
  event.status = readStatus(f.status);
  event.authority = f.host;
  event.request_id = f.requestId;

  event.tls_failure = normalizeTlsFailure(f.error);
  event.mtls = mtlsOf(f, inbound, event.tls_failure);
  applyOutcome(event, f.error);
  return { ok: true, event };
}

function parseJsonLine(line: string, observedTimeMs: number): ParseResult {
  const record = parseJsonObject(line);
  if (record === undefined) return { ok: false, reason: 'ztunnel_bad_json' };
  const scope = readText(record.scope ?? record.target);
  if (scope !== 'access') return { ok: false, reason: 'ztunnel_not_access' };
  const message = readText(record.message ?? record.msg);
  if (message === 'connection opened') return { ok: false, reason: 'ztunnel_connection_opened' };
  const stamp = record.time ?? record.timestamp;
  const time = stamp === undefined ? observedTimeMs : parseTimestampMs(stamp);
  if (time === undefined) return { ok: false, reason: 'ztunnel_bad_timestamp' };
  const f = fields.reset();
  // Some JSON layouts nest the key=value pairs under `fields`.
  const nested = isJsonObject(record.fields) ? record.fields : undefined;
  for (const key in record) f.assign(key, record[key]);
  if (nested !== undefined) for (const key in nested) f.assign(key, nested[key]);
  return buildEvent(f, time, line, observedTimeMs);
}

/** Parses one ztunnel access-log line. */
export function parseZtunnel(line: string, observedTimeMs: number, _options?: ParseOptions): ParseResult {
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9 || line.charCodeAt(i) === 0xfeff)) i++;
  if (i >= line.length) return { ok: false, reason: 'ztunnel_empty' };
  const first = line.charCodeAt(i);
  if (first === 35 /* # */) return { ok: false, reason: 'ztunnel_comment' };
  if (first === 123 /* { */) return parseJsonLine(line, observedTimeMs);

  let word = readWord(line, i);
  let time: number | undefined = observedTimeMs;
  if (first >= 48 && first <= 57) {
    time = parseTimestampMs(word);
    if (time === undefined) return { ok: false, reason: 'ztunnel_bad_timestamp' };
    word = readWord(line, wordEnd);
  }
  if (!LEVELS.has(word)) return { ok: false, reason: 'ztunnel_unrecognized' };
  if (readWord(line, wordEnd) !== 'access') return { ok: false, reason: 'ztunnel_not_access' };
  const messageStart = wordEnd;
  const firstPair = line.indexOf('=', messageStart);
  const opened = line.indexOf('connection opened', messageStart);
  if (opened >= 0 && (firstPair < 0 || opened < firstPair)) return { ok: false, reason: 'ztunnel_connection_opened' };
  fields.reset();
  scanLogfmt(line, messageStart, assignField);
  return buildEvent(fields, time, line, observedTimeMs);
}
