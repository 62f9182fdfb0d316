// Envoy / Istio JSON access logs (`accessLogEncoding: JSON`, or an Envoy `json_format`). Reads, for example:
// {"start_time":"2023-11-23T02:30:43.053Z","method":"GET","path":"/sapi/…","response_code":200,"response_flags":"-","upstream_cluster":"outbound|34021|release-brand|sapi-tenant-part.sopei-biz.svc.cluster.local","downstream_peer_uri_san":null,…}
// Typed (numbers, null) and untyped ("123", "-") values read the same; key order does not matter.
// Keys: Istio's defaults, Envoy command operators in snake_case, plus `ingest.fieldMap`.
import type { ParseOptions, ParseResult, Source } from '../../core/event.ts';
import { isJsonObject, readCount, readStatus, readText, type JsonObject } from './read-values.ts';
import { buildEnvoyEvent } from './envoy-event.ts';
import { compileKeyTable, ENVOY_KEYS, SLOT } from './envoy-keys.ts';
import { EnvoyFields } from './envoy-record.ts';
import { parseEnvoyText } from './envoy-text.ts';

// `typeof v === 'string' && v !== '-' ? v : readText(v)` is written out in each case: the switch
// is too large for V8 to inline a function at every site, and this is the per-key hot path.
/** Keys handled by name in readBuiltInKeys' switch. */
const COMMON_KEYS = new Set([
  'start_time', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
  'connection_termination_details', 'upstream_transport_failure_reason', 'bytes_received', 'bytes_sent', 'duration',
  'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'downstream_local_address', 'downstream_remote_address',
  'requested_server_name', 'x_forwarded_for', 'downstream_peer_uri_san', 'upstream_peer_uri_san', 'upstream_local_uri_san',
  'downstream_local_uri_san', 'downstream_tls_version', 'upstream_tls_version', 'downstream_transport_failure_reason',
]);


/** Aliases seen less often than Istio's own keys: looked up only for keys the switch does not know. */
const RARE_KEYS: ReadonlyMap<string, number> = new Map(
  [...ENVOY_KEYS].filter(([key]) => !COMMON_KEYS.has(key)),
);

/**
 * The hot path: Istio's keys and the common operator keys read with a string switch (V8 compares
 * the interned keys by pointer), every other key through one map lookup. It reads any key order and
 * every alias; readIstioKeys is tried first. A test keeps this and ENVOY_KEYS in step.
 */
export function readBuiltInKeys(record: JsonObject, f: EnvoyFields): void {
  for (const key in record) {
    const v = record[key];
    switch (key) {
      case 'start_time': f.startTime = typeof v === 'string' ? v : undefined; break;
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
      // Keys of Istio's format that carry nothing ztwatch keeps: settled here, before the map.
      case 'user_agent': case 'upstream_service_time': case 'upstream_local_address': case 'route_name': break;
      default: {
        const slot = RARE_KEYS.get(key);
        if (slot !== undefined) f.assign(slot, v);
      }
    }
  }
}

/**
 * The fastest path, for Istio's own format: the keys above read by name. A record's keys form a
 * hidden class that repeats line after line, so each read is one inline-cached load (a switch
 * compares every key). Returns how many of the record's keys it recognized; when that is fewer
 * than the record has, the record uses another key (an alias, or a `log` wrapper) and is read
 * again with readBuiltInKeys. Exported for tests.
 */
export function readIstioKeys(record: JsonObject, f: EnvoyFields): number {
  let known = 0;
  let v: unknown;
  v = record['start_time'];
  if (v !== undefined) {
    known++;
    f.startTime = typeof v === 'string' ? v : undefined;
  }
  v = record['method'];
  if (v !== undefined) {
    known++;
    f.method = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['path'];
  if (v !== undefined) {
    known++;
    f.path = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['protocol'];
  if (v !== undefined) {
    known++;
    f.protocol = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['response_code'];
  if (v !== undefined) {
    known++;
    f.status = readStatus(v);
  }
  v = record['response_flags'];
  if (v !== undefined) {
    known++;
    f.flags = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['response_code_details'];
  if (v !== undefined) {
    known++;
    f.details = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['connection_termination_details'];
  if (v !== undefined) {
    known++;
    f.termDetails = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['upstream_transport_failure_reason'];
  if (v !== undefined) {
    known++;
    f.upstreamFailure = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['bytes_received'];
  if (v !== undefined) {
    known++;
    f.bytesIn = readCount(v);
  }
  v = record['bytes_sent'];
  if (v !== undefined) {
    known++;
    f.bytesOut = readCount(v);
  }
  v = record['duration'];
  if (v !== undefined) {
    known++;
    f.durationMs = readCount(v);
  }
  v = record['request_id'];
  if (v !== undefined) {
    known++;
    f.requestId = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['authority'];
  if (v !== undefined) {
    known++;
    f.authority = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['upstream_host'];
  if (v !== undefined) {
    known++;
    f.upstreamHost = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['upstream_cluster'];
  if (v !== undefined) {
    known++;
    f.cluster = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_local_address'];
  if (v !== undefined) {
    known++;
    f.downstreamLocal = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_remote_address'];
  if (v !== undefined) {
    known++;
    f.downstreamRemote = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['requested_server_name'];
  if (v !== undefined) {
    known++;
    f.sni = typeof v === 'string' && v !== '-' ? v : readText(v);
    f.hasSni = true;
  }
  v = record['x_forwarded_for'];
  if (v !== undefined) {
    known++;
    f.forwardedFor = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_peer_uri_san'];
  if (v !== undefined) {
    known++;
    f.downstreamPeerSan = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['upstream_peer_uri_san'];
  if (v !== undefined) {
    known++;
    f.upstreamPeerSan = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['upstream_local_uri_san'];
  if (v !== undefined) {
    known++;
    f.upstreamLocalSan = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_local_uri_san'];
  if (v !== undefined) {
    known++;
    f.downstreamLocalSan = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_tls_version'];
  if (v !== undefined) {
    known++;
    f.downstreamTls = typeof v === 'string' && v !== '-' ? v : readText(v);
    f.hasDownstreamTls = true;
  }
  v = record['upstream_tls_version'];
  if (v !== undefined) {
    known++;
    f.upstreamTls = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  v = record['downstream_transport_failure_reason'];
  if (v !== undefined) {
    known++;
    f.downstreamFailure = typeof v === 'string' && v !== '-' ? v : readText(v);
  }
  // Istio keys ztwatch does not keep still count as known.
  if (record['user_agent'] !== undefined) known++;
  if (record['upstream_service_time'] !== undefined) known++;
  if (record['upstream_local_address'] !== undefined) known++;
  if (record['route_name'] !== undefined) known++;
  return known;
}

/** Own enumerable keys of a JSON object, counted without building an array. */
function countKeys(record: JsonObject): number {
  let n = 0;
  // JSON gives no key twice and no inherited keys, so every key counts once.
  for (const _key in record) n++;
  return n;
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
  // A fresh record per line, not one reused: a long-lived record sits in the old generation, and
  // every young string stored into it would pay the GC's old-to-new write barrier.
  const f = new EnvoyFields();
  if (options?.fieldMap === undefined) {
    if (readIstioKeys(value, f) !== countKeys(value)) readBuiltInKeys(value, f.reset());
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
