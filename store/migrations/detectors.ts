// Migrations owned by the detectors stage (ids 100–199; see store/schema.ts for the ranges).
// Detectors read these 10-second rollups, never raw rows, except to sample evidence for an anomaly
// that just opened. Ten seconds is the finest step a detector window can take; windows of any
// multiple of it are summed from the buckets. Counters are SimpleAggregateFunction(sum) so a
// background merge folds rows, and readers always sum() GROUP BY.
import { createTableStatements, DEDUP, localTable, onCluster, type Migration, type SchemaContext } from '../ddl.ts';

/** Width of one rollup bucket, in seconds; detector windows and steps are multiples of it. */
export const DETECTOR_BUCKET_SECONDS = 10;

const bucket = `toStartOfInterval(time, INTERVAL ${DETECTOR_BUCKET_SECONDS} SECOND)`;
// A caller without a workload identity (plaintext, a scan from outside the mesh) is known by its IP;
// a destination without a service name (an L3 drop) by its IP too.
const srcKey = "if(src_identity != '', src_identity, src_ip)";
const dstKey = "if(dst_service != '', dst_service, dst_ip)";

const sum = (name: string) => `${name} SimpleAggregateFunction(sum, UInt64)`;

function rollup(ctx: SchemaContext, name: string, columns: string[], orderBy: string, select: string): string[] {
  return [
    ...createTableStatements(
      ctx,
      name,
      columns.join(', '),
      'AggregatingMergeTree',
      `PARTITION BY toYYYYMMDD(ts) ORDER BY (${orderBy}) TTL ts + INTERVAL ${ctx.retentionDays} DAY ${DEDUP}`,
    ),
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.${name}_mv${onCluster(ctx)} TO ${localTable(ctx, name)} AS ${select}`,
  ];
}

/**
 * Adds a column to a rollup (its local table, and on a cluster its distributed table too) and
 * replaces the rollup's view with one that fills it.
 */
function addRollupColumn(ctx: SchemaContext, name: string, column: string, select: string): string[] {
  return [
    ...[localTable(ctx, name), ...(ctx.cluster ? [`${ctx.database}.${name}`] : [])].map((table) => `ALTER TABLE ${table}${onCluster(ctx)} ADD COLUMN IF NOT EXISTS ${column}`),
    `DROP VIEW IF EXISTS ${ctx.database}.${name}_mv${onCluster(ctx)}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.${name}_mv${onCluster(ctx)} TO ${localTable(ctx, name)} AS ${select}`,
  ];
}

/**
 * Health-check paths: kubelet probes that reach the application through its sidecar (no probe
 * rewrite) arrive in plaintext from the node, and Istio's rewritten probes use `/app-health/…`.
 * Their plaintext says nothing about a client without mTLS (migration 105 counts them apart).
 */
export const HEALTH_CHECK_PATH_REGEX = '^/(app-health/[^/]+/[a-z]+|healthz?|livez?|readyz?|ready|ping|healthcheck)(/[A-Za-z0-9_.-]*)?$';

/** Columns the edge view adds after migration 100: the callee identity (103), health checks in plaintext (105). */
type EdgeViewVersion = 'base' | 'identity' | 'health';

/** The edge rollup's view query, as of the migration that last replaced it. */
function selectEdges(ctx: SchemaContext, version: EdgeViewVersion): string {
  const withIdentity = version !== 'base';
  return `SELECT ${bucket} AS ts, ${srcKey} AS src_key, ${dstKey} AS dst_key, dst_port, source, dst_namespace, src_namespace,
                toUInt64(sum(count)) AS requests,
                toUInt64(sumIf(count, decision = 'deny')) AS denies,
                toUInt64(sumIf(count, decision = 'error')) AS errors,
                toUInt64(sumIf(count, tls_failure != '')) AS tls_failures,
                toUInt64(sumIf(count, mtls = 'no')) AS plaintext,
                toUInt64(sumIf(count, mtls = 'yes')) AS mtls_requests,
                toUInt64(sum(bytes_in)) AS bytes_in,
                toUInt64(sum(bytes_out)) AS bytes_out,
                max(time) AS max_time${withIdentity ? ',\n                max(dst_identity) AS dst_identity' : ''}${
                  version === 'health' ? `,\n                toUInt64(sumIf(count, mtls = 'no' AND match(path, '${HEALTH_CHECK_PATH_REGEX}'))) AS plaintext_health_checks` : ''
                }
         FROM ${localTable(ctx, 'events')}
         WHERE ${srcKey} != '' AND ${dstKey} != ''
         GROUP BY ts, src_key, dst_key, dst_port, source, dst_namespace, src_namespace`;
}

/** The authz rollup's view query; `withPaths` adds the concrete denied paths (migration 104). */
function selectAuthz(ctx: SchemaContext, withPaths: boolean): string {
  return `SELECT ${bucket} AS ts, ${srcKey} AS principal, ${dstKey} AS dst_key, dst_namespace,
                if(decision = 'deny', method, '') AS method,
                if(decision = 'deny', if(route != '', route, path), '') AS action_path,
                if(decision = 'deny', decision_reason, '') AS policy,
                toUInt64(sumIf(count, decision = 'deny')) AS denies,
                toUInt64(sum(count)) AS decisions${withPaths ? ",\n                groupUniqArrayIf(64)(path, decision = 'deny' AND path != '') AS concrete_paths" : ''}
         FROM ${localTable(ctx, 'events')}
         WHERE (reporter = 'authz' OR source = 'opa') AND ${srcKey} != ''
         GROUP BY ts, principal, dst_key, dst_namespace, method, action_path, policy`;
}

/** The detectors' rollups. Append only. */
export const DETECTOR_MIGRATIONS: readonly Migration[] = [
  {
    id: 100,
    name: 'detector_edge_10s rollup (edges, ports, decisions, transport, bytes)',
    statements: (ctx) =>
      rollup(
        ctx,
        'detector_edge_10s',
        [
          "ts DateTime('UTC')",
          'src_key String',
          'dst_key LowCardinality(String)',
          'dst_port UInt16',
          // The vantage point: one request may be logged by a sidecar, OPA and Hubble; readers take
          // the busiest source per edge rather than summing them.
          'source LowCardinality(String)',
          'dst_namespace LowCardinality(String)',
          'src_namespace LowCardinality(String)',
          sum('requests'),
          sum('denies'),
          sum('errors'),
          sum('tls_failures'),
          sum('plaintext'),
          sum('mtls_requests'),
          sum('bytes_in'),
          sum('bytes_out'),
          "max_time SimpleAggregateFunction(max, DateTime64(3, 'UTC'))",
        ],
        'ts, dst_key, src_key, dst_port, source, dst_namespace, src_namespace',
        selectEdges(ctx, 'base'),
      ),
  },
  {
    id: 101,
    name: 'detector_tls_10s rollup (TLS handshake failures by peer, side and reason)',
    statements: (ctx) =>
      rollup(
        ctx,
        'detector_tls_10s',
        [
          "ts DateTime('UTC')",
          'src_key String',
          'dst_key LowCardinality(String)',
          'dst_namespace LowCardinality(String)',
          'src_namespace LowCardinality(String)',
          // client: reported by the caller's proxy (outbound); server: by the callee's (inbound/listener).
          'side LowCardinality(String)',
          'tls_failure LowCardinality(String)',
          sum('failures'),
        ],
        'ts, src_key, dst_key, side, tls_failure, dst_namespace, src_namespace',
        `SELECT ${bucket} AS ts, ${srcKey} AS src_key, ${dstKey} AS dst_key, dst_namespace, src_namespace,
                if(reporter IN ('inbound', 'gateway'), 'server', 'client') AS side, tls_failure,
                toUInt64(sum(count)) AS failures
         FROM ${localTable(ctx, 'events')}
         WHERE tls_failure != ''
         GROUP BY ts, src_key, dst_key, dst_namespace, src_namespace, side, tls_failure`,
      ),
  },
  {
    id: 102,
    name: 'detector_authz_10s rollup (policy-engine decisions by principal; denials by action)',
    statements: (ctx) =>
      rollup(
        ctx,
        'detector_authz_10s',
        [
          "ts DateTime('UTC')",
          'principal String',
          'dst_key LowCardinality(String)',
          'dst_namespace LowCardinality(String)',
          // Action and policy only for denials; allowed decisions fold into one row per principal.
          'method LowCardinality(String)',
          'action_path String',
          'policy LowCardinality(String)',
          sum('denies'),
          sum('decisions'),
        ],
        'ts, principal, method, action_path, dst_key, dst_namespace, policy',
        selectAuthz(ctx, false),
      ),
  },
  {
    id: 103,
    name: 'detector_edge_10s: callee identity',
    // A workload only ever seen serving is not brand-new when it first calls out (new_edge).
    statements: (ctx) => addRollupColumn(ctx, 'detector_edge_10s', 'dst_identity SimpleAggregateFunction(max, String)', selectEdges(ctx, 'identity')),
  },
  {
    id: 104,
    name: 'detector_authz_10s: concrete denied paths',
    // Route templates fold /users/1001 and /users/1002 into one action; probing by enumeration
    // needs the concrete paths too (authz_deny_burst counts distinct ones).
    statements: (ctx) => addRollupColumn(ctx, 'detector_authz_10s', 'concrete_paths SimpleAggregateFunction(groupUniqArrayArray, Array(String))', selectAuthz(ctx, true)),
  },
  {
    id: 105,
    name: 'detector_edge_10s: plaintext health checks',
    // Kubelet probes through the sidecar are plaintext from the node on every service of a namespace
    // without probe rewrite; counted apart, they no longer hide a client without mTLS (plaintext).
    statements: (ctx) => addRollupColumn(ctx, 'detector_edge_10s', 'plaintext_health_checks SimpleAggregateFunction(sum, UInt64)', selectEdges(ctx, 'health')),
  },
];
