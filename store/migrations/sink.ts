// Migrations owned by the sink (ids 300–399; see store/schema.ts for the ranges).
import { createTableStatements, type Migration } from '../ddl.ts';

/** The sink's bookkeeping tables. Append only. */
export const SINK_MIGRATIONS: readonly Migration[] = [
  {
    id: 300,
    name: 'sink_state: offset range and phase of the batch being stored, per topic partition',
    statements: (ctx) =>
      createTableStatements(
        ctx,
        'sink_state',
        [
          'topic String',
          'partition UInt32',
          'min_offset UInt64',
          'max_offset UInt64',
          // BEFORE: range being inserted; AFTER: range stored; CHECK: rows of the range may be stored, check each.
          'phase LowCardinality(String)',
          "updated_at DateTime64(3, 'UTC')",
          // Higher wins; the sink always writes above the version it read.
          'version UInt64',
        ].join(', '),
        'ReplacingMergeTree',
        'ORDER BY (topic, partition)',
        'version',
        // One key, one shard: FINAL then sees every version of it.
        'cityHash64(topic, partition)',
      ),
  },
];
