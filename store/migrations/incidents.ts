// Migrations owned by the incidents stage (ids 400–499; see store/schema.ts for the ranges): the
// anomaly's `detected_at` column and the `incidents` table (DESIGN §6b).
import { createTableStatements, localTable, onCluster, type Migration } from '../ddl.ts';

/** The incidents migrations. Append only. */
export const INCIDENT_MIGRATIONS: readonly Migration[] = [
  {
    id: 400,
    name: 'anomalies.detected_at (event-time watermark when raised)',
    // Rows written before this column existed were raised no later than their last evidence.
    statements: (ctx) => [
      `ALTER TABLE ${localTable(ctx, 'anomalies')}${onCluster(ctx)} ADD COLUMN IF NOT EXISTS detected_at DateTime64(3, 'UTC') DEFAULT last_seen AFTER first_seen`,
      ...(ctx.cluster ? [`ALTER TABLE ${ctx.database}.anomalies${onCluster(ctx)} ADD COLUMN IF NOT EXISTS detected_at DateTime64(3, 'UTC') DEFAULT last_seen AFTER first_seen`] : []),
    ],
  },
  {
    id: 401,
    name: 'incidents (lifecycle rows, highest version wins)',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'incidents',
        [
          'id String',
          'title String',
          'severity LowCardinality(String)',
          'status LowCardinality(String)',
          "first_seen DateTime64(3, 'UTC')",
          "detected_at DateTime64(3, 'UTC')",
          "last_seen DateTime64(3, 'UTC')",
          'actors Array(String)',
          'targets Array(String)',
          'members Array(String)',
          // JSON: the timeline entries and the evidence object.
          'timeline String CODEC(ZSTD(3))',
          'evidence String CODEC(ZSTD(3))',
          'notify Bool',
          // Each lifecycle change is a new row; the highest version wins.
          'version UInt64',
        ].join(', '),
        'ReplacingMergeTree',
        // Ordered by id alone: an incident's first_seen may move earlier when members join.
        `PARTITION BY toYYYYMM(detected_at) ORDER BY (id) TTL toDateTime(last_seen) + INTERVAL ${ctx.anomalyRetentionDays} DAY`,
        'version',
        'cityHash64(id)',
      ),
  },
];
