// Cilium Hubble flows: `hubble observe -o json` and the Hubble exporter write one
// `{"flow":{…},"node_name":"…","time":"…"}` per line; older printers write the bare flow. Reads, for example:
// {"flow":{"time":"2023-08-21T12:12:18.510175415Z","verdict":"DROPPED","IP":{"source":"10.244.1.60","destination":"10.244.1.5"},"l4":{"TCP":{"source_port":44916,"destination_port":80}},"source":{"namespace":"default","pod_name":"xwing"},"destination":{"namespace":"default","pod_name":"deathstar-7848d6c4d5-th9v2"},"drop_reason_desc":"POLICY_DENIED"},"node_name":"kind-kind/kind-worker","time":"…"}
// Reply flows (`is_reply`, or the deprecated `reply`) are turned around so that `src` is always
// the side that opened the connection. Identity: SPIFFE form from the Cilium service-account
// label and namespace when both exist; otherwise only workload and namespace are set.
import { createEmptyEvent, type NormalizedEvent, type ParseOptions, type ParseResult } from '../../core/event.ts';
import { buildSpiffeId, serviceOfHost, namespaceOfHost, workloadOfPod } from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { isJsonObject, parseJsonObject, readCount, readPort, readStatus, traceIdFromTraceparent, truncateText, type JsonObject } from './read-values.ts';
import { parseTimestampMs } from './timestamps.ts';
import type { FormatDeclaration } from './format.ts';

/** The `hubble` format, as the registry, the pipeline and the docs know it. */
export const HUBBLE_FORMAT: FormatDeclaration = {
  name: 'hubble',
  source: 'hubble',
  parse: parseHubble,
  description: 'Cilium Hubble flows: `hubble observe -o json`, exporter files',
  skipReasons: [],
  envelope: 'records',
  howToSend: '`hubble observe -o json --follow | curl --data-binary @- …/v1/ingest/hubble`, or `--follow` the exporter file',
  docs: 'docs/ingest-formats.md',
};

const MAX_REASON_CHARS = 256;

/** Drop reasons that are a policy saying no (deny); every other drop is an error. */
const POLICY_DROPS = new Set(['POLICY_DENIED', 'POLICY_DENY', 'AUTH_REQUIRED']);

/** `drop_reason` / drop `sub_type` numbers of the policy drops, for flows without `drop_reason_desc`. */
const DROP_REASON_NAMES: ReadonlyMap<number, string> = new Map([
  [133, 'POLICY_DENIED'],
  [181, 'POLICY_DENY'],
  [189, 'AUTH_REQUIRED'],
]);

/** `policy_match_type` values (cilium pkg/monitor/api) as short labels. */
const MATCH_TYPES = ['', 'L3_ONLY', 'L3_L4', 'L4_ONLY', 'ALL', 'L3_PROTO', 'PROTO_ONLY'];

const SA_LABEL = 'k8s:io.cilium.k8s.policy.serviceaccount=';
const NS_LABEL = 'k8s:io.kubernetes.pod.namespace=';
const APP_LABELS = ['k8s:app.kubernetes.io/name=', 'k8s:app=', 'k8s:k8s-app='];

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function obj(value: unknown): JsonObject | undefined {
  return isJsonObject(value) ? value : undefined;
}

/** What one flow endpoint tells about its workload. */
interface EndpointInfo {
  namespace: string;
  serviceAccount: string;
  workload: string;
  app: string;
}

function readEndpoint(endpoint: JsonObject | undefined): EndpointInfo {
  const info: EndpointInfo = { namespace: '', serviceAccount: '', workload: '', app: '' };
  if (endpoint === undefined) return info;
  info.namespace = str(endpoint.namespace);
  const labels = endpoint.labels;
  if (Array.isArray(labels)) {
    for (const label of labels) {
      if (typeof label !== 'string') continue;
      if (label.startsWith(SA_LABEL)) info.serviceAccount = label.slice(SA_LABEL.length);
      else if (info.namespace === '' && label.startsWith(NS_LABEL)) info.namespace = label.slice(NS_LABEL.length);
      else if (info.app === '') {
        for (const prefix of APP_LABELS) {
          if (label.startsWith(prefix)) {
            info.app = label.slice(prefix.length);
            break;
          }
        }
      }
    }
  }
  const workloads = endpoint.workloads;
  const first = Array.isArray(workloads) ? obj(workloads[0]) : undefined;
  info.workload = str(first?.name) || workloadOfPod(str(endpoint.pod_name));
  return info;
}

/** `ns/name` of each policy in `*_allowed_by` / `*_denied_by` lists, comma-separated. */
function policyNames(...lists: unknown[]): string {
  let names = '';
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      const policy = obj(item);
      const name = str(policy?.name);
      if (name === '') continue;
      const ns = str(policy?.namespace);
      names += (names === '' ? '' : ',') + (ns === '' ? name : `${ns}/${name}`);
    }
  }
  return truncateText(names, MAX_REASON_CHARS);
}

function dropReason(flow: JsonObject): string {
  const desc = str(flow.drop_reason_desc);
  if (desc !== '' && desc !== 'DROP_REASON_UNKNOWN') return desc;
  let code = readCount(flow.drop_reason);
  const eventType = obj(flow.event_type);
  if (code === 0 && eventType?.type === 1) code = readCount(eventType.sub_type);
  if (code === 0) return 'DROPPED';
  return DROP_REASON_NAMES.get(code) ?? `DROP_REASON_${code > 255 ? 'UNKNOWN' : code}`;
}

function applyVerdict(event: NormalizedEvent, flow: JsonObject): void {
  const verdict = str(flow.verdict);
  switch (verdict) {
    case 'FORWARDED':
    case 'REDIRECTED':
    case 'TRANSLATED':
    case 'TRACED': {
      event.decision = event.status >= 500 ? 'error' : 'allow';
      const names = policyNames(flow.ingress_allowed_by, flow.egress_allowed_by);
      const match = typeof flow.policy_match_type === 'number' ? MATCH_TYPES[flow.policy_match_type] : undefined;
      event.decision_reason = names !== '' ? names : match ? `match:${match}` : '';
      return;
    }
    case 'AUDIT':
      // Audit mode: the policy would have dropped the flow, but let it through.
      event.decision = 'allow';
      event.decision_reason = 'AUDIT';
      return;
    case 'DROPPED': {
      const reason = dropReason(flow);
      event.decision = POLICY_DROPS.has(reason) ? 'deny' : 'error';
      const names = policyNames(flow.ingress_denied_by, flow.egress_denied_by);
      event.decision_reason = names !== '' ? names : reason;
      return;
    }
    case 'ERROR':
      event.decision = 'error';
      event.decision_reason = 'ERROR';
      return;
    default:
      event.decision = 'unknown';
  }
}

function readHeaders(event: NormalizedEvent, headers: unknown): void {
  if (!Array.isArray(headers)) return;
  for (const item of headers) {
    const h = obj(item);
    const key = str(h?.key).toLowerCase();
    if (key === 'x-request-id') event.request_id = str(h?.value);
    else if (key === 'traceparent' && event.trace_id === '') event.trace_id = traceIdFromTraceparent(str(h?.value));
  }
}

/** Sets method, path, authority, status, protocol and latency from an L7 HTTP record. */
function readHttp(event: NormalizedEvent, l7: JsonObject, http: JsonObject): void {
  event.method = str(http.method);
  event.protocol = str(http.protocol);
  event.status = readStatus(http.code);
  const url = str(http.url);
  const scheme = url.indexOf('://');
  if (scheme > 0 && scheme < 16) {
    const slash = url.indexOf('/', scheme + 3);
    event.authority = slash < 0 ? url.slice(scheme + 3) : url.slice(scheme + 3, slash);
    event.path = slash < 0 ? '/' : url.slice(slash);
  } else {
    event.path = url;
  }
  event.route = templateRoute(event.path);
  event.duration_ms = Math.floor(readCount(l7.latency_ns) / 1e6);
  readHeaders(event, http.headers);
}

/** Parses one Hubble flow record. */
export function parseHubble(line: string, observedTimeMs: number, _options?: ParseOptions): ParseResult {
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  if (line.charCodeAt(i) === 35 /* # */) return { ok: false, reason: 'hubble_comment' };
  const record = parseJsonObject(line);
  if (record === undefined) return { ok: false, reason: 'hubble_bad_json' };
  const wrapped = obj(record.flow);
  const flow = wrapped ?? ('verdict' in record || 'IP' in record ? record : undefined);
  if (flow === undefined) return { ok: false, reason: 'hubble_no_flow' };
  const time = parseTimestampMs(flow.time ?? record.time);
  if (time === undefined) return { ok: false, reason: 'hubble_bad_timestamp' };

  const event = createEmptyEvent('hubble', observedTimeMs);
  event.time = time;
  event.raw = line;
  event.reporter = 'network';

  // Replies travel server → client; the event describes the connection, client first.
  const reply = typeof flow.is_reply === 'boolean' ? flow.is_reply : flow.reply === true;
  const ip = obj(flow.IP);
  const l4 = obj(flow.l4);
  let srcPort = 0;
  let dstPort = 0;
  if (l4 !== undefined) {
    for (const protocol in l4) {
      const ports = obj(l4[protocol]);
      event.protocol = protocol;
      srcPort = readPort(ports?.source_port);
      dstPort = readPort(ports?.destination_port);
      break;
    }
  }
  const srcIp = str(ip?.source);
  const dstIp = str(ip?.destination);
  const sourceEndpoint = readEndpoint(obj(flow.source));
  const destinationEndpoint = readEndpoint(obj(flow.destination));
  const client = reply ? destinationEndpoint : sourceEndpoint;
  const server = reply ? sourceEndpoint : destinationEndpoint;
  event.src_ip = reply ? dstIp : srcIp;
  event.src_port = reply ? dstPort : srcPort;
  event.dst_ip = reply ? srcIp : dstIp;
  event.dst_port = reply ? srcPort : dstPort;

  event.src_namespace = client.namespace;
  event.src_workload = client.workload;
  event.src_identity = buildSpiffeId(client.namespace, client.serviceAccount);
  event.dst_namespace = server.namespace;
  event.dst_identity = buildSpiffeId(server.namespace, server.serviceAccount);

  const l7 = obj(flow.l7);
  const http = obj(l7?.http);
  if (l7 !== undefined && http !== undefined) readHttp(event, l7, http);
  if (event.trace_id === '') event.trace_id = str(obj(obj(flow.trace_context)?.parent)?.trace_id);

  // The service name: Cilium's service record, else the DNS name or HTTP host, else the app label.
  const service = obj(reply ? flow.source_service : flow.destination_service);
  const names = reply ? flow.source_names : flow.destination_names;
  const dnsName = Array.isArray(names) && typeof names[0] === 'string' ? names[0] : '';
  event.dst_service = str(service?.name) || serviceOfHost(dnsName) || serviceOfHost(event.authority) || server.app || server.workload;
  if (event.dst_namespace === '') event.dst_namespace = str(service?.namespace) || namespaceOfHost(dnsName);

  if (flow.auth_type === 'SPIRE') event.mtls = 'yes';
  applyVerdict(event, flow);
  return { ok: true, event };
}
