// Migrations owned by the posture stage (ids 500–599; see store/schema.ts for the ranges).
//
// Policy replay aggregates recorded requests into flows; over 20 M events that aggregation took
// ~33 s against a 2.5 s bare scan (bench/posture.ts). `flow_day` keeps the flow keys posture needs
// per UTC day, fed at insert time by a materialized view, so a 30-day window reads ~30 × the day's
// distinct flows instead of every event. Queries read whole days from it and the partial days at the
// window's edges from `events` (store/posture-queries.ts), so results match the raw aggregation.
//
// A store migrated before this migration gets the rollup backfilled from `events` by one
// INSERT … SELECT (bounded by the events' retention), run only while the rollup is empty so a
// migration retried after a failure does not count twice. It runs before the view exists: events
// inserted while the backfill runs would be missed, so migrate before ingest starts (as every role
// does).
import { createTableStatements, DEDUP, localTable, onCluster, type Migration, type SchemaContext } from '../ddl.ts';

/** Name of the per-day flow rollup read by store/posture-queries.ts. */
export const FLOW_DAY_TABLE = 'flow_day';

/** Sources whose records are requests between workloads (proxies, meshes, network observers). */
export const FLOW_SOURCES = ['envoy', 'istio', 'linkerd', 'hubble'] as const;

/** The rollup's SELECT over `events` (`from`): one row per day and flow key, per reporter. */
function flowDaySelect(from: string, condition = ''): string {
  // The IP is a key only where there is no identity (as a number, cheap to hash); workload,
  // namespace and IP are kept with max(), which prefers a filled value to an empty one.
  return `SELECT toDate(time) AS day, src_identity, if(src_identity = '', cityHash64(ip), 0) AS src_key,
         dst_service, dst_namespace, dst_port, method, route, decision, mtls, source, reporter,
         max(src_workload) AS src_workload, max(src_namespace) AS src_namespace, max(ip) AS src_ip,
         toUInt64(sum(count)) AS requests, max(time) AS last_seen
       FROM (SELECT time, source, reporter, src_identity, src_workload, src_namespace, src_ip AS ip, dst_service, dst_namespace,
                    dst_port, method, route, decision, mtls, count
             FROM ${from}
             WHERE dst_service != '' AND source IN (${FLOW_SOURCES.map((s) => `'${s}'`).join(', ')})${condition})
       GROUP BY day, src_identity, src_key, dst_service, dst_namespace, dst_port, method, route, decision, mtls, source, reporter`;
}

function flowDayStatements(ctx: SchemaContext): string[] {
  return [
    ...createTableStatements(
      ctx,
      FLOW_DAY_TABLE,
      [
        'day Date',
        'src_identity LowCardinality(String)',
        'src_key UInt64',
        'dst_service LowCardinality(String)',
        'dst_namespace LowCardinality(String)',
        'dst_port UInt16',
        'method LowCardinality(String)',
        'route LowCardinality(String)',
        'decision LowCardinality(String)',
        'mtls LowCardinality(String)',
        'source LowCardinality(String)',
        'reporter LowCardinality(String)',
        'src_workload SimpleAggregateFunction(max, LowCardinality(String))',
        'src_namespace SimpleAggregateFunction(max, LowCardinality(String))',
        'src_ip SimpleAggregateFunction(max, String)',
        'requests SimpleAggregateFunction(sum, UInt64)',
        "last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))",
      ].join(', '),
      'AggregatingMergeTree',
      `PARTITION BY toYYYYMM(day) ORDER BY (day, dst_service, src_identity, src_key, dst_namespace, dst_port, method, route, decision, mtls, source, reporter) TTL day + INTERVAL ${ctx.retentionDays} DAY ${DEDUP}`,
      '',
      'cityHash64(dst_service)',
    ),
    // Backfill of the events already stored, once: skipped when the rollup holds rows.
    `INSERT INTO ${ctx.database}.${FLOW_DAY_TABLE} ${flowDaySelect(`${ctx.database}.events`, ` AND (SELECT count() FROM ${ctx.database}.${FLOW_DAY_TABLE}) = 0`)}
       SETTINGS max_bytes_before_external_group_by = 1000000000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.${FLOW_DAY_TABLE}_mv${onCluster(ctx)} TO ${localTable(ctx, FLOW_DAY_TABLE)} AS
       ${flowDaySelect(localTable(ctx, 'events'))}`,
  ];
}

/** The posture migrations. Append only. */
export const POSTURE_MIGRATIONS: readonly Migration[] = [
  {
    id: 500,
    name: 'flow_day rollup (posture flows per day, backfilled from events)',
    statements: flowDayStatements,
  },
];
