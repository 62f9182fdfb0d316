// Migrations owned by the sink (ids 300–399; see store/schema.ts for the ranges).
import { createTableStatements, localTable, onCluster, type Migration } from '../ddl.ts';

/**
 * Largest uncompressed size of an `events` part written in the compact format (all columns in one
 * file) rather than the wide one (two files per column, ~100 for `events` and as many again for
 * its projection). A sink batch of 20 000 Envoy events is ~20 MB, above ClickHouse's default of
 * 10 MB, so each insert created some 200 files; creating them was a large share of the insert's
 * CPU (file-system inode allocation in the kernel). Parts merged past this size are wide, as
 * queries over long ranges want them. 128 MiB: batches up to ~100 000 events.
 */
export const EVENTS_COMPACT_PART_BYTES = 128 * 1024 * 1024;

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
  {
    id: 301,
    name: 'events: sink batches written as compact parts',
    statements: (ctx) => [`ALTER TABLE ${localTable(ctx, 'events')}${onCluster(ctx)} MODIFY SETTING min_bytes_for_wide_part = ${EVENTS_COMPACT_PART_BYTES}`],
  },
];
