// Migrations owned by the console (ids 600–699; see store/schema.ts for the ranges).
//
// The console's service graph asks for one window of edges (last hour, day, week). `edge_minute`
// is ordered by (dst_service, src_identity, minute) for the per-edge series and the detectors, so
// a window bound on `minute` pruned nothing inside a month's partition: on 10 M events (≈ 10 M
// rollup rows, one per edge and minute) the last hour took 332 ms and the last day 867 ms
// (bench/console.ts). A projection of whole rows ordered by minute lets ClickHouse read only the
// window's granules; rows stay exactly those of the table (a projection is part of each part), so
// results equal the table's. SummingMergeTree merges would drop such a projection unless told to
// rebuild it.
//
// A long window still read every rollup row of its minutes: the last day of a large mesh holds
// ~330 000 of them. `edge_hour` (migration 601) keeps the same counters per edge and hour, so the
// whole hours of a window are read from it and only the partial hours at its ends from
// `edge_minute` (store/graph-edge-queries.ts). Its view reads what is inserted into `edge_minute`
// (the events' view and direct writes alike), so its rows are always the hourly sums of
// `edge_minute`'s and the results equal the minute rollup's. A store migrated before it gets the
// hours backfilled from `edge_minute` by one INSERT … SELECT, run only while `edge_hour` is empty
// (a migration retried after a failure does not count twice), before the view exists: rows
// inserted while it runs would be missed, so migrate before ingest starts (as every role does).
// The backfill inserts the minute rows with their hour and lets the engine sum them (the table
// sums the rows of each insert and merges the rest; readers always sum()): grouping 10 M rows first
// took twice as long.
import { createTableStatements, DEDUP, localTable, onCluster, type Migration, type SchemaContext } from '../ddl.ts';

/** Name of the minute-ordered projection on `edge_minute`. */
export const EDGE_MINUTE_BY_TIME_PROJECTION = 'p_minute';

/** Name of the per-hour edge rollup read by store/graph-edge-queries.ts. */
export const EDGE_HOUR_TABLE = 'edge_hour';

/** The counters of an edge in `edge_minute` and `edge_hour`, in column order. */
export const EDGE_COUNTERS = ['requests', 'denies', 'errors', 'tls_failures', 'plaintext', 'mtls_requests', 'bytes_in', 'bytes_out'] as const;
const KEYS = 'src_identity, src_namespace, dst_service, dst_namespace, source';

function edgeHourStatements(ctx: SchemaContext): string[] {
  return [
    ...createTableStatements(
      ctx,
      EDGE_HOUR_TABLE,
      [
        "hour DateTime('UTC')",
        'src_identity LowCardinality(String)',
        'src_namespace LowCardinality(String)',
        'dst_service LowCardinality(String)',
        'dst_namespace LowCardinality(String)',
        'source LowCardinality(String)',
        ...EDGE_COUNTERS.map((c) => `${c} UInt64`),
      ].join(', '),
      'SummingMergeTree',
      // Ordered by hour first: a window's hours are one range of each part.
      `PARTITION BY toYYYYMM(hour) ORDER BY (hour, dst_service, src_identity, dst_namespace, src_namespace, source) TTL hour + INTERVAL ${ctx.retentionDays} DAY ${DEDUP}`,
      '',
      'cityHash64(dst_service)',
    ),
    // Backfill of the minute rows already stored, once: skipped when the rollup holds rows.
    `INSERT INTO ${ctx.database}.${EDGE_HOUR_TABLE} (hour, ${KEYS}, ${EDGE_COUNTERS.join(', ')})
       SELECT toStartOfHour(minute), ${KEYS}, ${EDGE_COUNTERS.join(', ')}
       FROM ${ctx.database}.edge_minute WHERE (SELECT count() FROM ${ctx.database}.${EDGE_HOUR_TABLE}) = 0`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.${EDGE_HOUR_TABLE}_mv${onCluster(ctx)} TO ${localTable(ctx, EDGE_HOUR_TABLE)} AS
       SELECT toStartOfHour(minute) AS hour, ${KEYS}, ${EDGE_COUNTERS.map((c) => `sum(${c}) AS ${c}`).join(', ')}
       FROM ${localTable(ctx, 'edge_minute')}
       GROUP BY hour, ${KEYS}`,
  ];
}

/** The console migrations. Append only. */
export const CONSOLE_MIGRATIONS: readonly Migration[] = [
  {
    id: 600,
    name: 'edge_minute projection by minute',
    statements: (ctx) => [
      `ALTER TABLE ${localTable(ctx, 'edge_minute')}${onCluster(ctx)} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'`,
      `ALTER TABLE ${localTable(ctx, 'edge_minute')}${onCluster(ctx)} ADD PROJECTION IF NOT EXISTS ${EDGE_MINUTE_BY_TIME_PROJECTION} (SELECT * ORDER BY minute)`,
      // Rows stored before this migration: built in the background.
      `ALTER TABLE ${localTable(ctx, 'edge_minute')}${onCluster(ctx)} MATERIALIZE PROJECTION ${EDGE_MINUTE_BY_TIME_PROJECTION}`,
    ],
  },
  {
    id: 601,
    name: 'edge_hour rollup (edge counters per hour, fed from edge_minute, backfilled from it)',
    statements: edgeHourStatements,
  },
];
