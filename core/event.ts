// The normalized event: one record type for every source. Defined once here; the TypeScript type is
// derived from the schema, and store/schema.ts holds the only other copy (the ClickHouse DDL), kept in
// step by test/store/schema.test.ts.
import { Type, type Static } from '@sinclair/typebox';
import { literalUnion } from './literal-union.ts';

/** Sources ztwatch reads. Extend here; the store keeps `source` as LowCardinality(String). */
export const SOURCES = [
  'envoy',
  'istio',
  'ztunnel',
  'linkerd',
  'opa',
  'hubble',
  'oauth2_proxy',
  'pomerium',
  'k8s_audit',
  'mesh_metrics',
  'synthetic',
] as const;
export type Source = (typeof SOURCES)[number];

/** Which vantage point reported the event. */
export const REPORTERS = ['inbound', 'outbound', 'gateway', 'authz', 'network', 'iap', 'apiserver', 'unknown'] as const;
export type Reporter = (typeof REPORTERS)[number];

export const DECISIONS = ['allow', 'deny', 'error', 'unknown'] as const;
export type Decision = (typeof DECISIONS)[number];

export const MTLS_STATES = ['yes', 'no', 'unknown'] as const;
export type MtlsState = (typeof MTLS_STATES)[number];

/** Largest value of the store's UInt32 columns (duration_ms, count). */
export const UINT32_MAX = 4_294_967_295;

/**
 * Every field is always present; "none" is the empty string for text and 0 for numbers, so the
 * row maps 1:1 onto non-Nullable ClickHouse columns (cheaper to store and to filter).
 */
export const NormalizedEventSchema = Type.Object(
  {
    /** Unique per accepted event; assigned at ingest, carried through the bus. Dedup key downstream. */
    event_id: Type.String({ maxLength: 64 }),
    /** Event time, milliseconds since the Unix epoch, UTC. */
    time: Type.Integer({ minimum: 0 }),
    /** Time ztwatch received the event, milliseconds since the Unix epoch, UTC. */
    observed_time: Type.Integer({ minimum: 0 }),
    source: literalUnion(SOURCES),
    reporter: literalUnion(REPORTERS),
    /** Canonical identity: SPIFFE URI for workloads, e-mail/user for humans. */
    src_identity: Type.String(),
    src_workload: Type.String(),
    src_namespace: Type.String(),
    src_ip: Type.String(),
    src_port: Type.Integer({ minimum: 0, maximum: 65535 }),
    dst_identity: Type.String(),
    /** Short service name, e.g. `payments`. */
    dst_service: Type.String(),
    dst_namespace: Type.String(),
    dst_ip: Type.String(),
    dst_port: Type.Integer({ minimum: 0, maximum: 65535 }),
    method: Type.String(),
    path: Type.String(),
    /** Low-cardinality path template: numeric ids, UUIDs and hashes replaced by `{id}`. */
    route: Type.String(),
    authority: Type.String(),
    protocol: Type.String(),
    /** HTTP (or gRPC-mapped) status; 0 = none. */
    status: Type.Integer({ minimum: 0, maximum: 999 }),
    decision: literalUnion(DECISIONS),
    /** Policy name, RBAC policy id, response flag or drop reason behind the decision. */
    decision_reason: Type.String(),
    /** Envoy response flags as a set, e.g. `["UF","URX"]`. */
    response_flags: Type.Array(Type.String()),
    mtls: literalUnion(MTLS_STATES),
    tls_version: Type.String(),
    /** Normalized OpenSSL reason, e.g. `CERTIFICATE_VERIFY_FAILED`; empty when none. */
    tls_failure: Type.String(),
    bytes_in: Type.Integer({ minimum: 0 }),
    bytes_out: Type.Integer({ minimum: 0 }),
    /** Stored as UInt32: repairEvent caps it at UINT32_MAX. */
    duration_ms: Type.Integer({ minimum: 0 }),
    request_id: Type.String(),
    decision_id: Type.String(),
    trace_id: Type.String(),
    /**
     * How many occurrences this record stands for: 1 for a log line, N for a metric-derived
     * aggregate. Stored as UInt32: repairEvent caps it at UINT32_MAX.
     */
    count: Type.Integer({ minimum: 1 }),
    /** The original line, kept for forensics and compliance. */
    raw: Type.String(),
  },
  { additionalProperties: false },
);

export type NormalizedEvent = Static<typeof NormalizedEventSchema>;

/** Field names in schema order; the store's column list is checked against this. */
export const EVENT_FIELDS = Object.keys(NormalizedEventSchema.properties) as Array<keyof NormalizedEvent>;

/** An event with every field at its "none" value; parsers spread their findings over it. */
export function createEmptyEvent(source: Source, observedTimeMs: number): NormalizedEvent {
  return {
    event_id: '',
    time: observedTimeMs,
    observed_time: observedTimeMs,
    source,
    reporter: 'unknown',
    src_identity: '',
    src_workload: '',
    src_namespace: '',
    src_ip: '',
    src_port: 0,
    dst_identity: '',
    dst_service: '',
    dst_namespace: '',
    dst_ip: '',
    dst_port: 0,
    method: '',
    path: '',
    route: '',
    authority: '',
    protocol: '',
    status: 0,
    decision: 'unknown',
    decision_reason: '',
    response_flags: [],
    mtls: 'unknown',
    tls_version: '',
    tls_failure: '',
    bytes_in: 0,
    bytes_out: 0,
    duration_ms: 0,
    request_id: '',
    decision_id: '',
    trace_id: '',
    count: 1,
    raw: '',
  };
}

const STRING_FIELDS = Object.entries(NormalizedEventSchema.properties)
  .filter(([, schema]) => (schema as { type?: string }).type === 'string')
  .map(([name]) => name) as Array<keyof NormalizedEvent>;

/**
 * Makes a parsed event storable as it is, in place: lone UTF-16 surrogates (valid in JSON escapes,
 * refused by ClickHouse) in every text field are replaced (the flag list is replaced, not edited),
 * and a duration or count beyond the store's UInt32 is capped (ClickHouse would wrap it around).
 * So one hostile record can neither make a whole batch unstorable nor be stored as a small number.
 */
export function repairEvent(event: NormalizedEvent): NormalizedEvent {
  const record = event as unknown as Record<string, unknown>;
  for (const name of STRING_FIELDS) {
    const value = record[name] as string;
    if (!value.isWellFormed()) record[name] = value.toWellFormed();
  }
  // A new list, not an edit in place: parsers may share one frozen list among events.
  if (!event.response_flags.every((flag) => flag.isWellFormed())) {
    event.response_flags = event.response_flags.map((flag) => flag.toWellFormed());
  }
  if (event.duration_ms > UINT32_MAX) event.duration_ms = UINT32_MAX;
  if (event.count > UINT32_MAX) event.count = UINT32_MAX;
  return event;
}

/** What a parser returns: never throws on bad input (STYLE §4). `reason` is short and bounded. */
export type ParseResult = { ok: true; event: NormalizedEvent } | { ok: false; reason: string };

/** Options every parser accepts; loaded from config once and passed down. */
export interface ParseOptions {
  /** Extra JSON key → event field mappings for access logs (`ingest.fieldMap`). */
  readonly fieldMap?: Readonly<Record<string, string>>;
}

/** A pure parser of one record (one line, or one element of a JSON array re-serialized). */
export type Parser = (line: string, observedTimeMs: number, options?: ParseOptions) => ParseResult;

/** A record that could not be parsed, on its way to the dead-letter path. */
export const DeadLetterSchema = Type.Object({
  observed_time: Type.Integer({ minimum: 0 }),
  source: Type.String(),
  reason: Type.String(),
  raw: Type.String(),
});
export type DeadLetter = Static<typeof DeadLetterSchema>;
