// The keys Envoy and Istio access logs use, as slots of an EnvoyFields record: the built-in key
// table (Istio's default keys and Envoy command operators in snake_case) and a user `fieldMap`
// compiled on top of it.

/** Slots a record's keys are read into. Numbers, so the per-key dispatch is a switch. */
export const SLOT = {
  startTime: 1,
  method: 2,
  path: 3,
  protocol: 4,
  status: 5,
  flags: 6,
  details: 7,
  termDetails: 8,
  upstreamFailure: 9,
  downstreamFailure: 10,
  bytesIn: 11,
  bytesOut: 12,
  duration: 13,
  requestId: 14,
  authority: 15,
  upstreamHost: 16,
  cluster: 17,
  downstreamLocal: 18,
  downstreamRemote: 19,
  downstreamDirectRemote: 20,
  sni: 21,
  downstreamPeerSan: 22,
  upstreamPeerSan: 23,
  upstreamLocalSan: 24,
  downstreamLocalSan: 25,
  downstreamTls: 26,
  upstreamTls: 27,
  traceId: 28,
  traceparent: 29,
  embeddedLog: 30,
  forwardedFor: 31,
  /** A `fieldMap` key mapped to `time`: unlike Envoy's own START_TIME, it may hold epoch numbers. */
  mappedTime: 32,
  /** `fieldMap` target that is an event field written as is (see OVERRIDE_FIELDS). */
  override: 100,
} as const;

/**
 * Keys understood without configuration: Istio's default JSON keys, Envoy command operators in
 * snake_case (`%DOWNSTREAM_PEER_URI_SAN%` → `downstream_peer_uri_san`), and the header-style keys
 * of Envoy Gateway's default format. Text formats are read into the same slots.
 */
export const ENVOY_KEYS: ReadonlyMap<string, number> = new Map<string, number>([
  ['start_time', SLOT.startTime],
  ['timestamp', SLOT.startTime],
  ['method', SLOT.method],
  ['req_method', SLOT.method],
  [':method', SLOT.method],
  ['path', SLOT.path],
  ['req_path', SLOT.path],
  [':path', SLOT.path],
  ['x-envoy-origin-path', SLOT.path],
  ['x_envoy_original_path', SLOT.path],
  ['protocol', SLOT.protocol],
  ['response_code', SLOT.status],
  ['response_flags', SLOT.flags],
  ['response_flags_long', SLOT.flags],
  ['response_code_details', SLOT.details],
  ['connection_termination_details', SLOT.termDetails],
  ['upstream_transport_failure_reason', SLOT.upstreamFailure],
  ['downstream_transport_failure_reason', SLOT.downstreamFailure],
  ['bytes_received', SLOT.bytesIn],
  ['bytes_sent', SLOT.bytesOut],
  ['duration', SLOT.duration],
  ['request_id', SLOT.requestId],
  ['x_request_id', SLOT.requestId],
  ['x-request-id', SLOT.requestId],
  ['authority', SLOT.authority],
  [':authority', SLOT.authority],
  ['upstream_host', SLOT.upstreamHost],
  ['upstream_cluster', SLOT.cluster],
  ['upstream_cluster_raw', SLOT.cluster],
  ['downstream_local_address', SLOT.downstreamLocal],
  ['downstream_remote_address', SLOT.downstreamRemote],
  ['downstream_direct_remote_address', SLOT.downstreamDirectRemote],
  ['requested_server_name', SLOT.sni],
  ['downstream_peer_uri_san', SLOT.downstreamPeerSan],
  ['upstream_peer_uri_san', SLOT.upstreamPeerSan],
  ['upstream_local_uri_san', SLOT.upstreamLocalSan],
  ['downstream_local_uri_san', SLOT.downstreamLocalSan],
  ['downstream_tls_version', SLOT.downstreamTls],
  ['upstream_tls_version', SLOT.upstreamTls],
  ['trace_id', SLOT.traceId],
  ['x_b3_traceid', SLOT.traceId],
  ['x-b3-traceid', SLOT.traceId],
  ['traceparent', SLOT.traceparent],
  ['x_forwarded_for', SLOT.forwardedFor],
  ['x-forwarded-for', SLOT.forwardedFor],
  // Docker's json-file driver and CRI collectors wrap each text line as {"log": "…"}.
  ['log', SLOT.embeddedLog],
]);

/** Event fields a `fieldMap` entry may name, beyond those the slots above already fill. */
const OVERRIDE_FIELDS = new Set<string>([
  'src_identity',
  'src_workload',
  'src_namespace',
  'src_ip',
  'src_port',
  'dst_identity',
  'dst_service',
  'dst_namespace',
  'dst_ip',
  'dst_port',
  'route',
  'decision',
  'decision_reason',
  'mtls',
  'tls_version',
  'tls_failure',
  'decision_id',
  'reporter',
]);

/** Event field → slot, for `fieldMap` entries that name an event field the slots fill. */
const FIELD_SLOTS: ReadonlyMap<string, number> = new Map<string, number>([
  ['time', SLOT.mappedTime],
  ['method', SLOT.method],
  ['path', SLOT.path],
  ['protocol', SLOT.protocol],
  ['status', SLOT.status],
  ['response_flags', SLOT.flags],
  ['bytes_in', SLOT.bytesIn],
  ['bytes_out', SLOT.bytesOut],
  ['duration_ms', SLOT.duration],
  ['request_id', SLOT.requestId],
  ['authority', SLOT.authority],
  ['trace_id', SLOT.traceId],
]);

/** A compiled key table: the built-in keys plus a `fieldMap`, with override targets remembered. */
export interface KeyTable {
  readonly slots: ReadonlyMap<string, number>;
  /** Source key → event field, for keys written straight into the event. */
  readonly overrides: ReadonlyMap<string, string>;
}

const DEFAULT_TABLE: KeyTable = { slots: ENVOY_KEYS, overrides: new Map() };
const compiledTables = new WeakMap<object, KeyTable>();

/**
 * The key table for a `fieldMap` (`{ "my_key": "dst_service" }`): a target may be an event field
 * name or one of the built-in keys (`{ "ts": "start_time" }`). Unknown targets are ignored.
 * Compiled once per fieldMap object.
 */
export function compileKeyTable(fieldMap: Readonly<Record<string, string>> | undefined): KeyTable {
  if (fieldMap === undefined) return DEFAULT_TABLE;
  const cached = compiledTables.get(fieldMap);
  if (cached) return cached;
  const slots = new Map(ENVOY_KEYS);
  const overrides = new Map<string, string>();
  for (const [key, target] of Object.entries(fieldMap)) {
    if (typeof target !== 'string') continue;
    const slot = FIELD_SLOTS.get(target) ?? ENVOY_KEYS.get(target);
    if (slot !== undefined) {
      slots.set(key, slot);
    } else if (OVERRIDE_FIELDS.has(target)) {
      slots.set(key, SLOT.override);
      overrides.set(key, target);
    }
  }
  const table: KeyTable = { slots, overrides };
  compiledTables.set(fieldMap, table);
  return table;
}
