// The service graph's edges for compliance and the console: who called which service, how often,
// denied, failed or in plaintext, read from the per-hour and per-minute edge rollups with bound
// parameters.
import type { QueryParams, Store } from './client.ts';
import { EDGE_COUNTERS, EDGE_HOUR_TABLE } from './migrations/console.ts';

/** One edge of the service graph: a source identity calling a destination service. */
export interface GraphEdgeRow {
  src_identity: string;
  src_namespace: string;
  dst_service: string;
  dst_namespace: string;
  requests: number;
  denies: number;
  errors: number;
  tls_failures: number;
  plaintext: number;
  mtls_requests: number;
  bytes_in: number;
  bytes_out: number;
}

/** Time range, namespace and size of a service-graph query. */
export interface GraphQuery {
  readonly fromMs: number;
  readonly toMs: number;
  /** Only edges whose source or destination is in this namespace. */
  readonly namespace?: string | undefined;
  /** Busiest edges kept. */
  readonly limit: number;
}

const SUMS = `toFloat64(sum(requests)) AS requests, toFloat64(sum(denies)) AS denies, toFloat64(sum(errors)) AS errors,
            toFloat64(sum(tls_failures)) AS tls_failures, toFloat64(sum(plaintext)) AS plaintext,
            toFloat64(sum(mtls_requests)) AS mtls_requests, toFloat64(sum(bytes_in)) AS bytes_in, toFloat64(sum(bytes_out)) AS bytes_out`;

/** The rollup columns a window's rows carry, on both sides of the split. */
const COLUMNS = ['src_identity', 'src_namespace', 'dst_service', 'dst_namespace', ...EDGE_COUNTERS].join(', ');

/** An edge's key for grouping: one UInt64 instead of two strings. */
const EDGE_KEY = 'cityHash64(src_identity, dst_service)';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** First hour that ClickHouse's DateTime cannot hold (it ends in 2106), as a bound for whole hours. */
const DATETIME_END_MS = Date.UTC(2106, 0, 1);

/**
 * How a window is read: the minutes it covers are [minuteFromMs, minuteToMs); the whole hours
 * among them, [hourFromMs, hourToMs), come from `edge_hour` and the rest from `edge_minute`.
 * No whole hour: hourFromMs = hourToMs.
 */
export function splitWindowHours(fromMs: number, toMs: number): { minuteFromMs: number; minuteToMs: number; hourFromMs: number; hourToMs: number } {
  // A window takes every minute that starts before its end, from the minute holding its start.
  const minuteFromMs = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS;
  const minuteToMs = Math.ceil(toMs / MINUTE_MS) * MINUTE_MS;
  const hourFromMs = Math.max(0, Math.ceil(minuteFromMs / HOUR_MS) * HOUR_MS);
  const hourToMs = Math.min(Math.floor(minuteToMs / HOUR_MS) * HOUR_MS, DATETIME_END_MS);
  return hourToMs > hourFromMs ? { minuteFromMs, minuteToMs, hourFromMs, hourToMs } : { minuteFromMs, minuteToMs, hourFromMs: minuteFromMs, hourToMs: minuteFromMs };
}

/** The window's rollup rows (`COLUMNS`): whole hours from `edge_hour`, the other minutes from `edge_minute`. */
function windowRowsSql(store: Store, query: GraphQuery, params: QueryParams): string {
  const { hourFromMs, hourToMs } = splitWindowHours(query.fromMs, query.toMs);
  params.from_ms = query.fromMs;
  params.to_ms = query.toMs;
  const namespace = query.namespace === undefined ? '' : ' AND (src_namespace = {namespace:String} OR dst_namespace = {namespace:String})';
  if (query.namespace !== undefined) params.namespace = query.namespace;
  const minutes = `SELECT ${COLUMNS} FROM ${store.database}.edge_minute
       WHERE minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AND minute < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')${namespace}`;
  if (hourToMs === hourFromMs) return minutes;
  params.hour_from_ms = hourFromMs;
  params.hour_to_ms = hourToMs;
  const hourFrom = "fromUnixTimestamp64Milli({hour_from_ms:Int64}, 'UTC')";
  const hourTo = "fromUnixTimestamp64Milli({hour_to_ms:Int64}, 'UTC')";
  return `${minutes} AND (minute < ${hourFrom} OR minute >= ${hourTo})
     UNION ALL
     SELECT ${COLUMNS} FROM ${store.database}.${EDGE_HOUR_TABLE} WHERE hour >= ${hourFrom} AND hour < ${hourTo}${namespace}`;
}

/**
 * Edges of the service graph over a time range, busiest first. The whole hours of the range are
 * read from the `edge_hour` rollup and the minutes of its partial hours from `edge_minute` (through
 * its minute-ordered projection); both are kept from the same rows (store/migrations/console.ts),
 * so the sums equal those of the minutes alone.
 *
 * A day of a large mesh holds tens of thousands of edges, and grouping every rollup row by two
 * strings with a dozen aggregates was most of the time. So the busiest edges are found first by a
 * hash of the edge and its request count alone (`LIMIT … WITH TIES` keeps every edge tied with the
 * last one), and the full counters are summed only for those. Two edges sharing a hash would be
 * summed together: the second step checks that each group holds one edge (min = max of both names)
 * and, if one does not, the edges are summed by name instead. Either way the result equals the
 * plain aggregation's.
 */
export async function queryServiceGraph(store: Store, query: GraphQuery): Promise<GraphEdgeRow[]> {
  const params: QueryParams = { limit: query.limit };
  const rows = `(${windowRowsSql(store, query, params)})`;
  const busiest = `SELECT k FROM (SELECT ${EDGE_KEY} AS k, sum(requests) AS r FROM ${rows} GROUP BY k ORDER BY r DESC LIMIT {limit:UInt32} WITH TIES)`;
  let found = await store.query<Record<string, unknown>>(
    `SELECT any(src_identity) AS src, any(src_namespace) AS src_ns, any(dst_service) AS dst, any(dst_namespace) AS dst_ns, ${SUMS},
            min(src_identity) = max(src_identity) AND min(dst_service) = max(dst_service) AS one_edge
     FROM ${rows} WHERE ${EDGE_KEY} IN (${busiest})
     GROUP BY ${EDGE_KEY} ORDER BY requests DESC, src, dst LIMIT {limit:UInt32}`,
    params,
  );
  if (found.some((r) => Number(r.one_edge) !== 1)) found = await queryServiceGraphByName(store, query);
  return found.map(toEdgeRow);
}

/** The plain aggregation: every edge of the window grouped by its names, busiest first. */
export async function queryServiceGraphByName(store: Store, query: GraphQuery): Promise<Array<Record<string, unknown>>> {
  const params: QueryParams = { limit: query.limit };
  return store.query<Record<string, unknown>>(
    `SELECT src_identity AS src, any(src_namespace) AS src_ns, dst_service AS dst, any(dst_namespace) AS dst_ns, ${SUMS}
     FROM (${windowRowsSql(store, query, params)})
     GROUP BY src_identity, dst_service ORDER BY requests DESC, src_identity, dst_service LIMIT {limit:UInt32}`,
    params,
  );
}

function toEdgeRow(r: Record<string, unknown>): GraphEdgeRow {
  return {
    src_identity: String(r.src),
    src_namespace: String(r.src_ns),
    dst_service: String(r.dst),
    dst_namespace: String(r.dst_ns),
    requests: Number(r.requests),
    denies: Number(r.denies),
    errors: Number(r.errors),
    tls_failures: Number(r.tls_failures),
    plaintext: Number(r.plaintext),
    mtls_requests: Number(r.mtls_requests),
    bytes_in: Number(r.bytes_in),
    bytes_out: Number(r.bytes_out),
  };
}
