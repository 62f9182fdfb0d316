// Envoy / Istio JSON access logs (`accessLogEncoding: JSON`, or an Envoy `json_format`). Reads, for example:
// {"start_time":"2023-11-23T02:30:43.053Z","method":"GET","path":"/sapi/…","response_code":200,"response_flags":"-","upstream_cluster":"outbound|34021|release-brand|sapi-tenant-part.sopei-biz.svc.cluster.local","downstream_peer_uri_san":null,…}
// Typed (numbers, null) and untyped ("123", "-") values read the same; key order does not matter.
// Keys: Istio's defaults, Envoy command operators in snake_case, plus `ingest.fieldMap`.
import type { ParseOptions, ParseResult, Source } from '../../core/event.ts';
import { isJsonObject, readCount, readStatus, readText, type JsonObject } from './common.ts';
import { buildEnvoyEvent, compileKeyTable, EnvoyFields, SLOT } from './envoy-fields.ts';
import { parseEnvoyText } from './envoy-text.ts';

// Reused between lines: parsing is synchronous, so one line at a time owns it.
const fields = new EnvoyFields();

// `typeof v === 'string' && v !== '-' ? v : readText(v)` is written out in each case: the switch
// is too large for V8 to inline a helper at every site, and this is the per-key hot path.

/**
 * The hot path: the built-in keys (ENVOY_KEYS) read with a string switch, which V8 runs as
 * pointer comparisons of internalized keys — faster than a map lookup per key, and unlike direct
 * property reads it stays fast when producers vary the key order. A test keeps this switch and
 * ENVOY_KEYS in step.
 */
function readBuiltInKeys(record: JsonObject, f: EnvoyFields): void {
  for (const key in record) {
    const v = record[key];
    switch (key) {
      case 'start_time': f.startTime = v; break;
      case 'method': f.method = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'path': f.path = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'protocol': f.protocol = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'response_code': f.status = readStatus(v); break;
      case 'response_flags': f.flags = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'response_code_details': f.details = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'connection_termination_details': f.termDetails = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_transport_failure_reason': f.upstreamFailure = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'bytes_received': f.bytesIn = readCount(v); break;
      case 'bytes_sent': f.bytesOut = readCount(v); break;
      case 'duration': f.durationMs = readCount(v); break;
      case 'request_id': f.requestId = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'authority': f.authority = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_host': f.upstreamHost = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_cluster': f.cluster = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_local_address': f.downstreamLocal = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_remote_address': f.downstreamRemote = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'requested_server_name': f.assign(SLOT.sni, v); break;
      case 'x_forwarded_for': f.forwardedFor = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_peer_uri_san': f.downstreamPeerSan = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_peer_uri_san': f.upstreamPeerSan = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_local_uri_san': f.upstreamLocalSan = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_local_uri_san': f.downstreamLocalSan = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_tls_version': f.assign(SLOT.downstreamTls, v); break;
      case 'upstream_tls_version': f.upstreamTls = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_transport_failure_reason': f.downstreamFailure = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'downstream_direct_remote_address': f.downstreamDirectRemote = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'trace_id': case 'x_b3_traceid': case 'x-b3-traceid': f.traceId = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'traceparent': f.assign(SLOT.traceparent, v); break;
      case 'timestamp': f.startTime = v; break;
      case 'req_method': case ':method': f.method = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'req_path': case ':path': case 'x-envoy-origin-path': case 'x_envoy_original_path': f.path = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'response_flags_long': f.flags = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'x_request_id': case 'x-request-id': f.requestId = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case ':authority': f.authority = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'upstream_cluster_raw': f.cluster = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'x-forwarded-for': f.forwardedFor = typeof v === 'string' && v !== '-' ? v : readText(v); break;
      case 'log': f.assign(SLOT.embeddedLog, v); break;
      default: break;
    }
  }
}

/** Parses one JSON access-log record (one line, or one pretty-printed object). */
export function parseEnvoyJson(line: string, observedTimeMs: number, options?: ParseOptions, source: Source = 'envoy'): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'envoy_bad_json' };
  }
  if (!isJsonObject(value)) return { ok: false, reason: 'envoy_not_object' };
  const f = fields.reset();
  if (options?.fieldMap === undefined) {
    readBuiltInKeys(value, f);
  } else {
    const table = compileKeyTable(options.fieldMap);
    for (const key in value) {
      const slot = table.slots.get(key);
      if (slot === undefined) continue;
      if (slot === SLOT.override) f.assignOverride(table.overrides.get(key) as string, value[key]);
      else f.assign(slot, value[key]);
    }
  }
  if (f.embeddedLog !== '' && f.startTime === undefined) {
    return parseEnvoyText(f.embeddedLog, observedTimeMs, options, source, line);
  }
  return buildEnvoyEvent(f, line, observedTimeMs, source);
}
