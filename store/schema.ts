// ClickHouse schema as ordered, idempotent migrations (DESIGN §5). The `events` columns are the
// only copy of the event schema besides core/event.ts; test/store/schema.test.ts keeps them in step.
// Every statement is generated for one node (MergeTree) or for a cluster (ON CLUSTER,
// Replicated*MergeTree locals behind Distributed tables), chosen by `clickhouse.cluster`.

import { createTableStatements, DEDUP, localTable, onCluster, type Migration } from './ddl.ts';
import { DETECTOR_MIGRATIONS } from './migrations/detectors.ts';
import { COMPLIANCE_MIGRATIONS } from './migrations/compliance.ts';
import { SINK_MIGRATIONS } from './migrations/sink.ts';
import { INCIDENT_MIGRATIONS } from './migrations/incidents.ts';
import { POSTURE_MIGRATIONS } from './migrations/posture.ts';
import { CONSOLE_MIGRATIONS } from './migrations/console.ts';

export { createTableStatements, DEDUP, localTable, onCluster, type Migration, type SchemaContext } from './ddl.ts';

/** Column definitions of `events`, in core/event.ts field order. */
export const EVENT_COLUMNS: ReadonlyArray<readonly [name: string, type: string]> = [
  ['event_id', 'String'],
  ['time', "DateTime64(3, 'UTC')"],
  ['observed_time', "DateTime64(3, 'UTC')"],
  ['source', 'LowCardinality(String)'],
  ['reporter', 'LowCardinality(String)'],
  ['src_identity', 'LowCardinality(String)'],
  ['src_workload', 'LowCardinality(String)'],
  ['src_namespace', 'LowCardinality(String)'],
  ['src_ip', 'String'],
  ['src_port', 'UInt16'],
  ['dst_identity', 'LowCardinality(String)'],
  ['dst_service', 'LowCardinality(String)'],
  ['dst_namespace', 'LowCardinality(String)'],
  ['dst_ip', 'String'],
  ['dst_port', 'UInt16'],
  ['method', 'LowCardinality(String)'],
  ['path', 'String'],
  ['route', 'LowCardinality(String)'],
  ['authority', 'LowCardinality(String)'],
  ['protocol', 'LowCardinality(String)'],
  ['status', 'UInt16'],
  ['decision', 'LowCardinality(String)'],
  ['decision_reason', 'LowCardinality(String)'],
  ['response_flags', 'Array(LowCardinality(String))'],
  ['mtls', 'LowCardinality(String)'],
  ['tls_version', 'LowCardinality(String)'],
  ['tls_failure', 'LowCardinality(String)'],
  ['bytes_in', 'UInt64'],
  ['bytes_out', 'UInt64'],
  ['duration_ms', 'UInt32'],
  ['request_id', 'String'],
  ['decision_id', 'String'],
  ['trace_id', 'String'],
  ['count', 'UInt32'],
  ['raw', 'String CODEC(ZSTD(3))'],
];

/** The base migrations (ids 1–99). Append only. */
const BASE_MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'events',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'events',
        [
          EVENT_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', '),
          'INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 4',
          'INDEX idx_src_identity src_identity TYPE set(1000) GRANULARITY 4',
        ].join(', '),
        'MergeTree',
        // Detectors read by destination and time; the identity index serves compliance until its
        // projection lands (see the access-history migration).
        `PARTITION BY toYYYYMMDD(time) ORDER BY (dst_service, time) TTL toDateTime(time) + INTERVAL ${ctx.retentionDays} DAY ` +
          DEDUP,
        '',
        'cityHash64(dst_service)',
      ),
  },
  {
    id: 2,
    name: 'edge_minute rollup',
    statements: (ctx) => [
      ...createTableStatements(
        ctx,
        'edge_minute',
        [
          "minute DateTime('UTC')",
          'src_identity LowCardinality(String)',
          'src_namespace LowCardinality(String)',
          'dst_service LowCardinality(String)',
          'dst_namespace LowCardinality(String)',
          'source LowCardinality(String)',
          'requests UInt64',
          'denies UInt64',
          'errors UInt64',
          'tls_failures UInt64',
          'plaintext UInt64',
          'mtls_requests UInt64',
          'bytes_in UInt64',
          'bytes_out UInt64',
        ].join(', '),
        'SummingMergeTree',
        `PARTITION BY toYYYYMM(minute) ORDER BY (dst_service, src_identity, minute, dst_namespace, src_namespace, source) TTL minute + INTERVAL ${ctx.retentionDays} DAY ${DEDUP}`,
        '',
        'cityHash64(dst_service)',
      ),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.edge_minute_mv${onCluster(ctx)} TO ${localTable(ctx, 'edge_minute')} AS
       SELECT toStartOfMinute(time) AS minute, src_identity, src_namespace, dst_service, dst_namespace, source,
              sum(count) AS requests,
              sumIf(count, decision = 'deny') AS denies,
              sumIf(count, decision = 'error') AS errors,
              sumIf(count, tls_failure != '') AS tls_failures,
              sumIf(count, mtls = 'no') AS plaintext,
              sumIf(count, mtls = 'yes') AS mtls_requests,
              sum(bytes_in) AS bytes_in,
              sum(bytes_out) AS bytes_out
       FROM ${localTable(ctx, 'events')}
       GROUP BY minute, src_identity, src_namespace, dst_service, dst_namespace, source`,
    ],
  },
  {
    id: 3,
    name: 'first/last seen per edge',
    statements: (ctx) => [
      ...createTableStatements(
        ctx,
        'edge_seen',
        [
          'src_identity LowCardinality(String)',
          'dst_service LowCardinality(String)',
          "first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC'))",
          "last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))",
          'requests SimpleAggregateFunction(sum, UInt64)',
        ].join(', '),
        'AggregatingMergeTree',
        `ORDER BY (src_identity, dst_service) ${DEDUP}`,
      ),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.edge_seen_mv${onCluster(ctx)} TO ${localTable(ctx, 'edge_seen')} AS
       SELECT src_identity, dst_service, min(time) AS first_seen, max(time) AS last_seen, toUInt64(sum(count)) AS requests
       FROM ${localTable(ctx, 'events')} WHERE src_identity != '' AND dst_service != ''
       GROUP BY src_identity, dst_service`,
    ],
  },
  {
    id: 4,
    name: 'anomalies',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'anomalies',
        [
          'id String',
          'detector LowCardinality(String)',
          'severity LowCardinality(String)',
          'status LowCardinality(String)',
          "first_seen DateTime64(3, 'UTC')",
          "last_seen DateTime64(3, 'UTC')",
          'src Nullable(String)',
          'dst Nullable(String)',
          'subject String',
          'score Float64',
          'summary String',
          'evidence String',
          // Each lifecycle update is a new row; the highest version wins.
          'version UInt64',
        ].join(', '),
        'ReplacingMergeTree',
        `PARTITION BY toYYYYMM(first_seen) ORDER BY (id) TTL toDateTime(last_seen) + INTERVAL ${ctx.anomalyRetentionDays} DAY`,
        'version',
        'cityHash64(id)',
      ),
  },
  {
    id: 5,
    name: 'deadletters',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'deadletters',
        ["observed_time DateTime64(3, 'UTC')", 'source LowCardinality(String)', 'reason LowCardinality(String)', 'raw String CODEC(ZSTD(3))'].join(', '),
        'MergeTree',
        `PARTITION BY toYYYYMMDD(observed_time) ORDER BY (source, reason, observed_time) TTL toDateTime(observed_time) + INTERVAL ${ctx.deadLetterRetentionDays} DAY ${DEDUP}`,
      ),
  },
  {
    id: 6,
    name: 'audit_log',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'audit_log',
        [
          "time DateTime64(3, 'UTC')",
          'actor LowCardinality(String)',
          'role LowCardinality(String)',
          'action LowCardinality(String)',
          'filters String',
          'rows UInt64',
          'status UInt16',
          'remote_addr String',
        ].join(', '),
        'MergeTree',
        `PARTITION BY toYYYYMM(time) ORDER BY (time, actor) TTL toDateTime(time) + INTERVAL ${ctx.auditRetentionDays} DAY`,
      ),
  },
];

/**
 * Every migration, in id order: the base set here, the detectors' rollups (ids 100–199,
 * store/migrations/detectors.ts), the compliance tables (ids 200–299,
 * store/migrations/compliance.ts), the sink's (300–399, store/migrations/sink.ts), the
 * incidents' (400–499, store/migrations/incidents.ts), posture's flow rollup (500–599,
 * store/migrations/posture.ts) and the console's (600–699, store/migrations/console.ts).
 */
export const MIGRATIONS: readonly Migration[] = [...BASE_MIGRATIONS, ...DETECTOR_MIGRATIONS, ...COMPLIANCE_MIGRATIONS, ...SINK_MIGRATIONS, ...INCIDENT_MIGRATIONS, ...POSTURE_MIGRATIONS, ...CONSOLE_MIGRATIONS].sort((a, b) => a.id - b.id);
