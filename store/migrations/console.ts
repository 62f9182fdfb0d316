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
import { localTable, onCluster, type Migration } from '../ddl.ts';

/** Name of the minute-ordered projection on `edge_minute`. */
export const EDGE_MINUTE_BY_TIME_PROJECTION = 'p_minute';

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
];
