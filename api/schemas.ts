// Request and response schemas of every route, defined once with TypeBox: fastify validates and
// serializes with them, the OpenAPI document is generated from them, and the TypeScript types are
// derived from them.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AnomalySchema, ANOMALY_STATUSES, SEVERITIES } from '../core/anomaly.ts';
import { IncidentSchema, INCIDENT_STATUSES } from '../core/incident.ts';
import { DECISIONS } from '../core/event.ts';
import { literalUnion } from '../core/literal-union.ts';
import { ErrorBodySchema } from './errors.ts';

/** An ISO-8601 date-time with zone, e.g. `2025-01-31T00:00:00Z`, in the years the store holds (1970–2299). */
const DateTime = (description: string) => Type.String({ format: 'date-time', pattern: '^(19[7-9][0-9]|2[0-2][0-9][0-9])-', maxLength: 64, description });

/** An opaque page cursor, as returned in `next_cursor`. */
// Its content is checked by the cursor decoder, which answers ZTW_API_BAD_CURSOR.
const Cursor = Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the previous page (opaque)' });

/** Error responses every route may give, referenced from each route's `response`. */
export function withErrors(ok: Record<number, TSchema | Record<string, unknown>>): Record<string, TSchema | Record<string, unknown>> {
  return { ...ok, '4xx': ErrorBodySchema, '5xx': ErrorBodySchema };
}

// ---------------------------------------------------------------------------------------------
// Ingest

export const IngestParamsSchema = Type.Object(
  { source: Type.String({ minLength: 1, maxLength: 64, description: 'A registered format name (see GET /v1/ingest) or `auto`' }) },
  { additionalProperties: false },
);

export const IngestResultSchema = Type.Object(
  {
    accepted: Type.Integer({ minimum: 0, description: 'Records parsed and handed to the bus' }),
    rejected: Type.Integer({ minimum: 0, description: 'Records dead-lettered with their reason' }),
    errors: Type.Array(
      Type.Object({
        index: Type.Integer({ minimum: -1, description: 'Position among the parsed records; -1 for a record refused before parsing' }),
        reason: Type.String(),
      }),
      { description: 'The first rejections (at most 10)' },
    ),
  },
  { $id: 'IngestResult' },
);
export type IngestResultBody = Static<typeof IngestResultSchema>;

export const IngestBodySchema = Type.String({
  minLength: 1,
  description:
    'NDJSON, a JSON array (each element one record), pretty-printed JSON objects, or text lines. ' +
    '`Content-Encoding: gzip` or `deflate` accepted.',
});

export const FormatsSchema = Type.Object({
  formats: Type.Array(Type.Object({ name: Type.String(), source: Type.String(), description: Type.String() })),
});

// ---------------------------------------------------------------------------------------------
// Access history

const Identity = Type.String({ minLength: 1, maxLength: 1024 });
const ShortText = Type.String({ minLength: 1, maxLength: 256 });

const accessFilterProperties = {
  identity: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Exact source identity (SPIFFE ID, user, e-mail)' })),
  identity_prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Source identity starting with this text' })),
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Exact destination service' })),
  namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Exact destination namespace' })),
  decision: Type.Optional(literalUnion(DECISIONS)),
  method: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'Exact request method' })),
  path_prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'Request path starting with this text' })),
  status: Type.Optional(Type.Integer({ minimum: 0, maximum: 999, description: 'Exact status code (0 = none)' })),
  request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Exact request id (x-request-id): the rows of one request' })),
  from: Type.Optional(DateTime('Inclusive start of event time')),
  to: Type.Optional(DateTime('Exclusive end of event time')),
  include_raw: Type.Optional(Type.Boolean({ default: false, description: 'Include the original line (auditor and admin only)' })),
};

export const AccessQuerySchema = Type.Object(
  {
    ...accessFilterProperties,
    order: Type.Optional(literalUnion(['desc', 'asc'] as const, { default: 'desc', description: 'By (time, event_id)' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Cursor),
    include_count: Type.Optional(Type.Boolean({ default: false, description: 'Also count every matching row' })),
  },
  { additionalProperties: false },
);
export type AccessQuery = Static<typeof AccessQuerySchema>;

export const ExportQuerySchema = Type.Object(
  {
    ...accessFilterProperties,
    format: Type.Optional(literalUnion(['ndjson', 'csv'] as const, { default: 'ndjson' })),
    order: Type.Optional(literalUnion(['asc', 'desc'] as const, { default: 'asc', description: 'By (time, event_id)' })),
    max_rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Stop after this many rows' })),
  },
  { additionalProperties: false },
);
export type ExportQuery = Static<typeof ExportQuerySchema>;

export const AccessItemSchema = Type.Object({
  time: Type.String({ description: 'Event time, ISO-8601 UTC' }),
  event_id: Type.String(),
  source: Type.String(),
  reporter: Type.String(),
  src_identity: Type.String(),
  src_workload: Type.String(),
  src_namespace: Type.String(),
  src_ip: Type.String(),
  src_port: Type.Integer(),
  dst_identity: Type.String(),
  dst_service: Type.String(),
  dst_namespace: Type.String(),
  dst_ip: Type.String(),
  dst_port: Type.Integer(),
  method: Type.String(),
  path: Type.String(),
  route: Type.String(),
  authority: Type.String(),
  protocol: Type.String(),
  status: Type.Integer(),
  decision: Type.String(),
  decision_reason: Type.String({ description: 'Policy, RBAC rule, response flag or drop reason behind the decision' }),
  response_flags: Type.Array(Type.String()),
  mtls: Type.String(),
  tls_version: Type.String(),
  tls_failure: Type.String(),
  bytes_in: Type.Number(),
  bytes_out: Type.Number(),
  duration_ms: Type.Integer(),
  request_id: Type.String(),
  decision_id: Type.String(),
  trace_id: Type.String(),
  count: Type.Integer(),
  observed_time: Type.String({ description: 'When ztwatch received it, ISO-8601 UTC' }),
  authz_decision_id: Type.String({ description: 'decision_id of the OPA decision on the same request_id (non-OPA rows); empty when none' }),
  authz_decision: Type.String({ description: 'That OPA decision (allow, deny, …); empty when none' }),
  authz_reason: Type.String({ description: 'Reason of that OPA decision (its policy path); empty when none' }),
  raw: Type.Optional(Type.String({ description: 'The original line (include_raw=true; auditor and admin)' })),
});
export type AccessItem = Static<typeof AccessItemSchema>;

export const AccessPageSchema = Type.Object({
  items: Type.Array(AccessItemSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last page' }),
  count: Type.Optional(Type.Integer({ description: 'Every matching row (include_count=true)' })),
});

// ---------------------------------------------------------------------------------------------
// Tamper evidence

export const VerifyReportSchema = Type.Object({
  ok: Type.Boolean(),
  chains: Type.Array(
    Type.Object({ chain: Type.String(), first_seq: Type.Integer(), head_seq: Type.Integer(), head_hash: Type.String(), batches: Type.Integer() }),
  ),
  batches_checked: Type.Integer(),
  batches_expired: Type.Integer(),
  rows_checked: Type.Integer(),
  problem_count: Type.Integer(),
  problems: Type.Array(Type.Object({ chain: Type.String(), seq: Type.Integer(), kind: Type.String(), detail: Type.String() })),
});

// ---------------------------------------------------------------------------------------------
// Anomalies, graph, audit

export const AnomalyQuerySchema = Type.Object(
  {
    detector: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    status: Type.Optional(literalUnion(ANOMALY_STATUSES)),
    severity: Type.Optional(literalUnion(SEVERITIES)),
    since: Type.Optional(DateTime('Anomalies still active at or after this time (last_seen >= since)')),
    until: Type.Optional(DateTime('Anomalies that opened before this time (first_seen < until)')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type AnomalyQuery = Static<typeof AnomalyQuerySchema>;

export const AnomalyListSchema = Type.Object({
  items: Type.Array(AnomalySchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const AnomalyParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

export const IncidentQuerySchema = Type.Object(
  {
    status: Type.Optional(literalUnion(INCIDENT_STATUSES)),
    severity: Type.Optional(literalUnion(SEVERITIES)),
    notify: Type.Optional(Type.Boolean({ description: 'Only incidents that page (true) or that do not (false)' })),
    since: Type.Optional(DateTime('Incidents still active at or after this time (last_seen >= since)')),
    until: Type.Optional(DateTime('Incidents raised before this time (detected_at < until)')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type IncidentQuery = Static<typeof IncidentQuerySchema>;

export const IncidentListSchema = Type.Object({
  items: Type.Array(IncidentSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

/** One incident with its member anomalies (latest state of each). */
export const IncidentDetailSchema = Type.Object({
  incident: IncidentSchema,
  anomalies: Type.Array(AnomalySchema),
});

export const IncidentParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

export const GraphQuerySchema = Type.Object(
  {
    from: Type.Optional(DateTime('Start of the range; default one hour before `to`')),
    to: Type.Optional(DateTime('End of the range; default now')),
    namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Edges touching this namespace' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 500, description: 'Busiest edges kept' })),
  },
  { additionalProperties: false },
);
export type GraphQuery = Static<typeof GraphQuerySchema>;

const counters = {
  requests: Type.Number(),
  denies: Type.Number(),
  errors: Type.Number(),
  tls_failures: Type.Number(),
  plaintext: Type.Number(),
  mtls_requests: Type.Number(),
};

export const GraphSchema = Type.Object({
  from: Type.String(),
  to: Type.String(),
  nodes: Type.Array(
    Type.Object({
      id: Type.String({ description: '`identity:<name>` or `service:<name>`' }),
      kind: literalUnion(['identity', 'service'] as const),
      name: Type.String(),
      namespace: Type.String(),
      requests_out: Type.Number(),
      requests_in: Type.Number(),
    }),
  ),
  edges: Type.Array(Type.Object({ source: Type.String(), target: Type.String(), ...counters, bytes_in: Type.Number(), bytes_out: Type.Number() })),
});

export const AuditQuerySchema = Type.Object(
  {
    from: Type.Optional(DateTime('Inclusive start')),
    to: Type.Optional(DateTime('Exclusive end')),
    actor: Type.Optional(Identity),
    action: Type.Optional(ShortText),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuerySchema>;

export const AuditPageSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      time: Type.String(),
      actor: Type.String(),
      role: Type.String(),
      action: Type.String(),
      filters: Type.String({ description: 'The query parameters as given, JSON' }),
      rows: Type.Number(),
      status: Type.Integer(),
      remote_addr: Type.String(),
    }),
  ),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

// ---------------------------------------------------------------------------------------------
// Health

export const HealthSchema = Type.Object({ status: Type.String() });
export const ReadySchema = Type.Object({ status: literalUnion(['ready', 'not_ready'] as const), checks: Type.Record(Type.String(), Type.Boolean()) });
