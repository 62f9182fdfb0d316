// The service graph's edges for compliance and the console: who called which service, how often,
// denied, failed or in plaintext, read from the per-minute edge rollup with bound parameters.
import type { QueryParams, Store } from './client.ts';

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

/** An edge's key for grouping: one UInt64 instead of two strings. */
const EDGE_KEY = 'cityHash64(src_identity, dst_service)';

/**
 * Edges of the service graph over a time range, busiest first, from the `edge_minute` rollup
 * (read through its minute-ordered projection, store/migrations/console.ts).
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
  const params: QueryParams = { from_ms: query.fromMs, to_ms: query.toMs, limit: query.limit };
  let where = "minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AND minute < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')";
  if (query.namespace !== undefined) {
    where += ' AND (src_namespace = {namespace:String} OR dst_namespace = {namespace:String})';
    params.namespace = query.namespace;
  }
  const from = `${store.database}.edge_minute`;
  const busiest = `SELECT k FROM (SELECT ${EDGE_KEY} AS k, sum(requests) AS r FROM ${from} WHERE ${where} GROUP BY k ORDER BY r DESC LIMIT {limit:UInt32} WITH TIES)`;
  let rows = await store.query<Record<string, unknown>>(
    `SELECT any(src_identity) AS src, any(src_namespace) AS src_ns, any(dst_service) AS dst, any(dst_namespace) AS dst_ns, ${SUMS},
            min(src_identity) = max(src_identity) AND min(dst_service) = max(dst_service) AS one_edge
     FROM ${from} WHERE ${where} AND ${EDGE_KEY} IN (${busiest})
     GROUP BY ${EDGE_KEY} ORDER BY requests DESC, src, dst LIMIT {limit:UInt32}`,
    params,
  );
  if (rows.some((r) => Number(r.one_edge) !== 1)) rows = await queryServiceGraphByName(store, from, where, params);
  return rows.map((r) => ({
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
  }));
}

/** The plain aggregation: every edge grouped by its names. */
export async function queryServiceGraphByName(store: Store, from: string, where: string, params: QueryParams): Promise<Array<Record<string, unknown>>> {
  return store.query<Record<string, unknown>>(
    `SELECT src_identity AS src, any(src_namespace) AS src_ns, dst_service AS dst, any(dst_namespace) AS dst_ns, ${SUMS}
     FROM ${from} WHERE ${where}
     GROUP BY src_identity, dst_service ORDER BY requests DESC, src_identity, dst_service LIMIT {limit:UInt32}`,
    params,
  );
}
