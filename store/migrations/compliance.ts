// Migrations owned by the compliance stage (ids 200–299; see store/schema.ts for the ranges).
//
// Access history is read by identity ("everything alice did in 30 days") and by service ("every
// denial on payments this week"). `events` is ordered by (dst_service, time), which serves the
// second; the first gets a projection of whole rows ordered by (src_identity, time, event_id).
// Chosen by measurement (bench/compliance.ts, 20 M rows over 30 days, 2 cores, embedded): one
// identity's first page p50 143 ms vs 981 ms without a projection and 1022 ms with an index-only
// (_part_offset) projection, for ×2.1 bytes on disk; see docs/api.md, "Storage for compliance
// queries". Re-measured against a layout without projection, `events` ordered by
// (src_identity, time, event_id) with a set index on dst_service (bench/compliance.ts, 2 M rows,
// machine at load ~22): identity first page p50/p99 501/1073 ms vs 477/1761 with the projection
// (895/1890 without either), the service query 1337/2650 vs 784/2018, ×1.01 vs ×2.13 bytes on disk;
// the projection slowed the insert path by 0–40 % across runs (bench/ingest.ts, "no proj.").
// The projection stays until the identity order can be adopted by a table-rewriting migration
// together with a faster path for service queries.
//
// `batches` holds the tamper-evidence hash chain written by store/chain.ts; `audit_log` gets a row id.
// `authz_by_request` keeps the OPA decision per request id, so an Envoy/Istio row of the same
// request can show it (one keyed lookup per page instead of a scan of `events`).
import { createTableStatements, DEDUP, localTable, onCluster, type Migration } from '../ddl.ts';

/** Name of the identity-ordered projection on `events`. */
export const IDENTITY_PROJECTION = 'p_identity_time';

/** Table of OPA decisions keyed by request id, fed from `events` by a materialized view. */
export const AUTHZ_BY_REQUEST_TABLE = 'authz_by_request';

/** Days a TTL may reach without overflowing DateTime (which ends in 2106). */
const MAX_TTL_DAYS = 25_000;

/** The compliance migrations. Append only. */
export const COMPLIANCE_MIGRATIONS: readonly Migration[] = [
  {
    id: 200,
    name: 'events projection by identity and time',
    statements: (ctx) => [
      `ALTER TABLE ${localTable(ctx, 'events')}${onCluster(ctx)} ADD PROJECTION IF NOT EXISTS ${IDENTITY_PROJECTION} (SELECT * ORDER BY src_identity, time, event_id)`,
      // Lightweight deletes (GDPR erasure) would otherwise be refused on a table with projections.
      `ALTER TABLE ${localTable(ctx, 'events')}${onCluster(ctx)} MODIFY SETTING lightweight_mutation_projection_mode = 'rebuild'`,
      // Rows stored before this migration: built in the background.
      `ALTER TABLE ${localTable(ctx, 'events')}${onCluster(ctx)} MATERIALIZE PROJECTION ${IDENTITY_PROJECTION}`,
    ],
  },
  {
    id: 201,
    name: 'batches (tamper-evidence hash chain)',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'batches',
        [
          // One chain per writer (sink instance); seq counts from 1 within it.
          'chain LowCardinality(String)',
          'seq UInt64',
          'dedup_token String',
          "recorded_at DateTime64(3, 'UTC')",
          // When the predecessor was recorded: tells "expired by TTL" from "deleted" at the chain's start.
          "prev_recorded_at DateTime64(3, 'UTC')",
          "first_time DateTime64(3, 'UTC')",
          "last_time DateTime64(3, 'UTC')",
          'row_count UInt32',
          'rows_digest String',
          'prev_hash String',
          'hash String',
          // Which rows the batch covers (sorted), and a short hash of each, to name a modified row.
          `event_ids Array(String) CODEC(ZSTD(3)) TTL toDateTime(last_time) + INTERVAL ${Math.min(ctx.retentionDays + 1, MAX_TTL_DAYS)} DAY`,
          `row_hashes Array(String) CODEC(ZSTD(3)) TTL toDateTime(last_time) + INTERVAL ${Math.min(ctx.retentionDays + 1, MAX_TTL_DAYS)} DAY`,
        ].join(', '),
        'MergeTree',
        // Plain MergeTree (not Replacing): two rows with one seq are a fork that verify must see.
        `ORDER BY (chain, seq) TTL toDateTime(recorded_at) + INTERVAL ${Math.min(ctx.auditRetentionDays, MAX_TTL_DAYS)} DAY ${DEDUP}`,
        '',
        'cityHash64(chain)',
      ),
  },
  {
    id: 202,
    name: 'audit_log row id',
    // Two identical queries in one millisecond are two audit rows; the id keeps them apart when paging.
    statements: (ctx) => [
      `ALTER TABLE ${localTable(ctx, 'audit_log')}${onCluster(ctx)} ADD COLUMN IF NOT EXISTS id UUID DEFAULT generateUUIDv4()`,
      ...(ctx.cluster ? [`ALTER TABLE ${ctx.database}.audit_log${onCluster(ctx)} ADD COLUMN IF NOT EXISTS id UUID DEFAULT generateUUIDv4()`] : []),
    ],
  },
  {
    id: 203,
    name: 'authz_by_request: OPA decision per request id',
    statements: (ctx) => [
      ...createTableStatements(
        ctx,
        AUTHZ_BY_REQUEST_TABLE,
        [
          'request_id String',
          "time DateTime64(3, 'UTC')",
          'decision_id String',
          'decision LowCardinality(String)',
          'decision_reason LowCardinality(String)',
        ].join(', '),
        // Replacing: a retried batch or a re-evaluated request leaves one row (the latest) after merges;
        // readers still take argMax by time, since merges are not guaranteed.
        'ReplacingMergeTree',
        `ORDER BY request_id TTL toDateTime(time) + INTERVAL ${Math.min(ctx.retentionDays, MAX_TTL_DAYS)} DAY ${DEDUP}`,
        'time',
        'cityHash64(request_id)',
      ),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.${AUTHZ_BY_REQUEST_TABLE}_mv${onCluster(ctx)} TO ${localTable(ctx, AUTHZ_BY_REQUEST_TABLE)} AS
       SELECT request_id, time, decision_id, decision, decision_reason
       FROM ${localTable(ctx, 'events')} WHERE source = 'opa' AND request_id != ''`,
      // OPA rows stored before this migration; through the Distributed tables on a cluster. A row
      // also copied by the view in between is a duplicate the readers' argMax ignores.
      `INSERT INTO ${ctx.database}.${AUTHZ_BY_REQUEST_TABLE} (request_id, time, decision_id, decision, decision_reason)
       SELECT request_id, time, decision_id, decision, decision_reason
       FROM ${ctx.database}.events WHERE source = 'opa' AND request_id != ''`,
    ],
  },
];
