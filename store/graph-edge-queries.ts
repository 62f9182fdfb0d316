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

/** Edges of the service graph over a time range, busiest first, from the `edge_minute` rollup. */
export async function queryServiceGraph(store: Store, query: GraphQuery): Promise<GraphEdgeRow[]> {
  const params: QueryParams = { from_ms: query.fromMs, to_ms: query.toMs, limit: query.limit };
  let where = "minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AND minute < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')";
  if (query.namespace !== undefined) {
    where += ' AND (src_namespace = {namespace:String} OR dst_namespace = {namespace:String})';
    params.namespace = query.namespace;
  }
  const rows = await store.query<Record<string, unknown>>(
    `SELECT src_identity, any(src_namespace) AS src_ns, dst_service, any(dst_namespace) AS dst_ns,
            toFloat64(sum(requests)) AS requests, toFloat64(sum(denies)) AS denies, toFloat64(sum(errors)) AS errors,
            toFloat64(sum(tls_failures)) AS tls_failures, toFloat64(sum(plaintext)) AS plaintext,
            toFloat64(sum(mtls_requests)) AS mtls_requests, toFloat64(sum(bytes_in)) AS bytes_in, toFloat64(sum(bytes_out)) AS bytes_out
     FROM ${store.database}.edge_minute WHERE ${where}
     GROUP BY src_identity, dst_service ORDER BY requests DESC, src_identity, dst_service LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map((r) => ({
    src_identity: String(r.src_identity),
    src_namespace: String(r.src_ns),
    dst_service: String(r.dst_service),
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
