// Reads for rollout guidance (posture): recorded events aggregated into flows in ClickHouse, mTLS
// share per destination port with the plaintext senders left, the open anomalies and incidents
// whose traffic least-privilege generation leaves out, and recorded OPA decision inputs.
//
// Flows and mTLS counts read the whole UTC days of a window from the `flow_day` rollup
// (store/migrations/posture.ts) and the partial days at its edges from `events`, so they equal the
// aggregation of the raw events over the exact window.
import type { Store } from './client.ts';
import { FLOW_DAY_TABLE, FLOW_SOURCES } from './migrations/posture.ts';

const DAY_MS = 86_400_000;
/** First day ClickHouse's Date cannot hold (2149-06-06), as a bound for whole days. */
const DATE_END_MS = Date.UTC(2149, 5, 1);

/** One aggregated flow as ClickHouse returns it. */
export interface FlowRow {
  src_identity: string;
  src_workload: string;
  src_namespace: string;
  src_ip: string;
  dst_service: string;
  dst_namespace: string;
  dst_port: number;
  method: string;
  route: string;
  decision: string;
  observer: 'network' | 'proxy';
  /** 1 when an inbound (receiving-side) record is among the flow's records. */
  inbound: number;
  mtls: string;
  requests: number;
  last_seen_ms: number;
}

/** Traffic to leave out: from `src` (identity or IP) to `dst` ('' = anywhere) between two times. */
export interface FlowExclusion {
  readonly src: string;
  readonly dst: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface FlowQuery {
  readonly fromMs: number;
  readonly toMs: number;
  /** Only flows with this recorded decision. */
  readonly decision?: string;
  /** Only flows from this source identity (or IP). */
  readonly source?: string;
  readonly exclude?: readonly FlowExclusion[];
  /** At most this many flows, busiest first. @default 1_000_000 */
  readonly limit?: number;
  /** `events` aggregates the raw events only (the reference the rollup is checked and timed against). @default 'rollup' */
  readonly from?: 'rollup' | 'events';
}

/** Whole UTC days inside [fromMs, toMs), as ms bounds and as `Date` parameters (empty when from ≥ to). */
export function splitWindowDays(fromMs: number, toMs: number): { dayFromMs: number; dayToMs: number; dayFrom: string; dayTo: string } {
  const dayFromMs = Math.min(Math.max(0, Math.ceil(fromMs / DAY_MS) * DAY_MS), DATE_END_MS);
  const dayToMs = Math.max(dayFromMs, Math.min(Math.floor(toMs / DAY_MS) * DAY_MS, DATE_END_MS));
  const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return { dayFromMs, dayToMs, dayFrom: date(dayFromMs), dayTo: date(dayToMs) };
}

/**
 * The per-reporter flow rows of a window, as a subquery over the rollup's whole days and the raw
 * events of the partial days (same columns on both sides: the flow keys, `src_workload`,
 * `src_namespace`, `src_ip`, `requests`, `last_seen`). `filter` uses key columns only.
 * `routedToRaw` is a condition on key columns and `day` that sends rollup rows to the raw side
 * (where `day` is the event's date), whose events are also within `routedTimes` (a condition on
 * `time` that prunes partitions); `rawOnly` further filters the raw side.
 */
function flowRowsSql(store: Store, filter: string[], routedToRaw = '', routedTimes = '', rawOnly = ''): string {
  const keys = 'src_identity, src_key, dst_service, dst_namespace, dst_port, method, route, decision, mtls, source, reporter';
  const rollupWhere = ['day >= {dayFrom:Date}', 'day < {dayTo:Date}', ...filter, ...(routedToRaw ? [`NOT (${routedToRaw})`] : [])];
  const edges = 'time < fromUnixTimestamp64Milli({dayFromMs:Int64}) OR time >= fromUnixTimestamp64Milli({dayToMs:Int64})';
  const rawWhere = [
    'time >= fromUnixTimestamp64Milli({fromMs:Int64})',
    'time < fromUnixTimestamp64Milli({toMs:Int64})',
    routedToRaw ? `(${edges} OR (${routedTimes || '1'} AND ${routedToRaw}))` : `(${edges})`,
    "dst_service != ''",
    'source IN {sources:Array(String)}',
    ...filter,
    ...(rawOnly ? [rawOnly] : []),
  ];
  return `
      SELECT ${keys}, src_workload, src_namespace, src_ip, requests, last_seen
      FROM ${store.database}.${FLOW_DAY_TABLE}
      WHERE ${rollupWhere.join(' AND ')}
      UNION ALL
      SELECT ${keys}, src_workload, src_namespace, src_ip, requests, last_seen
      FROM (SELECT *, if(src_identity = '', cityHash64(src_ip), 0) AS src_key, toDate(time) AS day, toUInt64(count) AS requests, time AS last_seen
            FROM ${store.database}.events)
      WHERE ${rawWhere.join(' AND ')}`;
}

/** Parameters of `flowRowsSql` for a window; `events` reads no whole day from the rollup. */
function windowParams(fromMs: number, toMs: number, from: 'rollup' | 'events' = 'rollup'): Record<string, unknown> {
  const { dayFromMs, dayToMs, dayFrom, dayTo } = splitWindowDays(fromMs, from === 'events' ? fromMs : toMs);
  return { fromMs, toMs, dayFromMs, dayToMs, dayFrom, dayTo, sources: [...FLOW_SOURCES] };
}

/**
 * Recorded events of the window grouped into flows: source (identity, else IP), destination
 * service, namespace and port, method, route, recorded decision, observer kind and plaintext or
 * not. The same request recorded by several reporters (outbound and inbound sidecar) is counted
 * once: counts are summed per reporter, then the largest reporter count is kept. Whole days come
 * from the rollup; a day that an exclusion touches is read from the events for the flows it may
 * leave out, so exclusions apply to the millisecond.
 */
export async function queryFlows(store: Store, q: FlowQuery): Promise<FlowRow[]> {
  const exclude = q.exclude ?? [];
  const filter: string[] = [];
  if (q.decision !== undefined) filter.push('decision = {decision:String}');
  if (q.source !== undefined) filter.push("(src_identity = {source:String} OR (src_identity = '' AND src_ip = {source:String}))");
  let routed = '';
  let routedTimes = '';
  let rawOnly = '';
  if (exclude.length > 0) {
    const arrays = '{ex_src:Array(String)}, {ex_dst:Array(String)}, {ex_from:Array(Int64)}, {ex_to:Array(Int64)}';
    // Rollup rows are keyed by identity, else by the IP's hash; an excluded IP may hide inside any
    // identity's flow, so those days go to the raw side whole.
    const keyMayMatch = "(s = src_identity OR (src_identity = '' AND src_key = cityHash64(s)) OR (src_identity != '' AND (isIPv4String(s) OR isIPv6String(s))))";
    const dayMs = "toInt64(toUnixTimestamp(toDateTime(day, 'UTC'))) * 1000";
    routed = `arrayExists((s, d, f, t) -> ${keyMayMatch} AND (d = '' OR d = dst_service) AND f < ${dayMs} + ${DAY_MS} AND t >= ${dayMs}, ${arrays})`;
    // Only the days the exclusions touch can be routed: bounds that prune the other partitions.
    routedTimes = 'time >= fromUnixTimestamp64Milli({ex_days_from:Int64}) AND time < fromUnixTimestamp64Milli({ex_days_to:Int64})';
    rawOnly = `NOT arrayExists((s, d, f, t) -> (s = src_identity OR s = src_ip) AND (d = '' OR d = dst_service) AND toUnixTimestamp64Milli(time) BETWEEN f AND t, ${arrays})`;
  }
  const sql = `
    SELECT src_identity, max(w) AS src_workload, max(ns) AS src_namespace, max(ip) AS src_ip,
           dst_service, dst_namespace, dst_port, method, route, decision,
           if(source = 'hubble', 'network', 'proxy') AS observer, max(reporter = 'inbound') AS inbound,
           if(mtls = 'no', 'no', if(countIf(mtls = 'yes') > 0, 'yes', 'unknown')) AS tls,
           toUInt64(max(n)) AS requests, toInt64(toUnixTimestamp64Milli(max(last))) AS last_seen_ms
    FROM (
      SELECT src_identity, src_key, max(src_workload) AS w, max(src_namespace) AS ns, max(src_ip) AS ip,
             dst_service, dst_namespace, dst_port, method, route, decision, mtls, source, reporter,
             sum(requests) AS n, max(last_seen) AS last
      FROM (${flowRowsSql(store, filter, routed, routedTimes, rawOnly)})
      GROUP BY src_identity, src_key, dst_service, dst_namespace, dst_port, method, route, decision, mtls, source, reporter
    )
    GROUP BY src_identity, src_key, dst_service, dst_namespace, dst_port, method, route, decision, observer, mtls = 'no'
    ORDER BY requests DESC, src_identity, src_ip, dst_service, dst_namespace, dst_port, method, route, decision, observer, tls
    LIMIT {limit:UInt32}`;
  const rows = await store.query<Omit<FlowRow, 'mtls' | 'inbound'> & { tls: string; inbound: string | number; requests: string | number; last_seen_ms: string | number; dst_port: string | number }>(sql, {
    ...windowParams(q.fromMs, q.toMs, q.from),
    decision: q.decision ?? '',
    source: q.source ?? '',
    ex_src: exclude.map((e) => e.src),
    ex_dst: exclude.map((e) => e.dst),
    ex_from: exclude.map((e) => e.fromMs),
    ex_to: exclude.map((e) => e.toMs),
    ex_days_from: exclude.length === 0 ? 0 : Math.floor(exclude.reduce((m, e) => Math.min(m, e.fromMs), Infinity) / DAY_MS) * DAY_MS,
    ex_days_to: exclude.length === 0 ? 0 : (Math.floor(exclude.reduce((m, e) => Math.max(m, e.toMs), -Infinity) / DAY_MS) + 1) * DAY_MS,
    limit: q.limit ?? 1_000_000,
  });
  return rows.map(({ tls, ...r }) => ({ ...r, mtls: tls, dst_port: Number(r.dst_port), inbound: Number(r.inbound), requests: Number(r.requests), last_seen_ms: Number(r.last_seen_ms) }));
}

/** mTLS counts of one destination port. */
export interface MtlsPortRow {
  dst_namespace: string;
  dst_service: string;
  dst_port: number;
  mtls_requests: number;
  plaintext_requests: number;
  unknown_requests: number;
}

/** One sender still reaching a destination port without mTLS. */
export interface PlaintextSenderRow {
  dst_namespace: string;
  dst_service: string;
  dst_port: number;
  /** Identity, else the source IP. */
  sender: string;
  requests: number;
  last_seen_ms: number;
}

/**
 * Requests per destination port by mTLS state, from the sources that record it at the receiving
 * side (inbound sidecars, Hubble); and the plaintext senders per port.
 */
export async function queryMtlsPosture(store: Store, q: { fromMs: number; toMs: number; namespace?: string; from?: 'rollup' | 'events' }): Promise<{ ports: MtlsPortRow[]; senders: PlaintextSenderRow[] }> {
  const filter = ["reporter != 'outbound'", ...(q.namespace ? ['dst_namespace = {namespace:String}'] : [])];
  const params = { ...windowParams(q.fromMs, q.toMs, q.from), namespace: q.namespace ?? '' };
  const ports = await store.query<Record<keyof MtlsPortRow, string | number>>(
    `SELECT dst_namespace, dst_service, dst_port,
            toUInt64(sumIf(requests, mtls = 'yes')) AS mtls_requests,
            toUInt64(sumIf(requests, mtls = 'no')) AS plaintext_requests,
            toUInt64(sumIf(requests, mtls NOT IN ('yes', 'no'))) AS unknown_requests
     FROM (${flowRowsSql(store, filter)})
     GROUP BY dst_namespace, dst_service, dst_port
     ORDER BY dst_namespace, dst_service, dst_port`,
    params,
  );
  // Without an identity the IP is part of the rollup's key, so the sender is exact on both sides.
  const senders = await store.query<Record<keyof PlaintextSenderRow, string | number>>(
    `SELECT dst_namespace, dst_service, dst_port, if(src_identity != '', src_identity, src_ip) AS sender,
            toUInt64(sum(requests)) AS requests, toInt64(toUnixTimestamp64Milli(max(last_seen))) AS last_seen_ms
     FROM (${flowRowsSql(store, [...filter, "mtls = 'no'"])})
     GROUP BY dst_namespace, dst_service, dst_port, sender
     ORDER BY dst_namespace, dst_service, dst_port, requests DESC, sender`,
    params,
  );
  return {
    ports: ports.map((r) => ({
      dst_namespace: String(r.dst_namespace),
      dst_service: String(r.dst_service),
      dst_port: Number(r.dst_port),
      mtls_requests: Number(r.mtls_requests),
      plaintext_requests: Number(r.plaintext_requests),
      unknown_requests: Number(r.unknown_requests),
    })),
    senders: senders.map((r) => ({
      dst_namespace: String(r.dst_namespace),
      dst_service: String(r.dst_service),
      dst_port: Number(r.dst_port),
      sender: String(r.sender),
      requests: Number(r.requests),
      last_seen_ms: Number(r.last_seen_ms),
    })),
  };
}

/**
 * Traffic of open anomalies and open incidents (latest version firing), as exclusions: their
 * source (identity or IP) to their destination ('' when none) over their first..last sighting.
 */
export async function queryOpenFindings(store: Store): Promise<FlowExclusion[]> {
  const anomalies = await store.query<{ src: string; dst: string; from_ms: string | number; to_ms: string | number }>(
    `SELECT ifNull(src, '') AS src, ifNull(dst, '') AS dst, toInt64(toUnixTimestamp64Milli(first)) AS from_ms, toInt64(toUnixTimestamp64Milli(last)) AS to_ms
     FROM (SELECT id, argMax(src, version) AS src, argMax(dst, version) AS dst, argMax(status, version) AS status,
                  argMax(first_seen, version) AS first, argMax(last_seen, version) AS last
           FROM ${store.database}.anomalies GROUP BY id)
     WHERE status = 'firing' AND src != ''`,
  );
  const out: FlowExclusion[] = anomalies.map((a) => ({ src: a.src, dst: a.dst, fromMs: Number(a.from_ms), toMs: Number(a.to_ms) }));
  const [exists] = await store.query<{ n: string | number }>(`SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = 'incidents'`, { db: store.database });
  if (Number(exists?.n ?? 0) > 0) {
    const incidents = await store.query<{ actors: string[]; targets: string[]; from_ms: string | number; to_ms: string | number }>(
      `SELECT actors, targets, toInt64(toUnixTimestamp64Milli(first)) AS from_ms, toInt64(toUnixTimestamp64Milli(last)) AS to_ms
       FROM (SELECT id, argMax(actors, version) AS actors, argMax(targets, version) AS targets, argMax(status, version) AS status,
                    argMax(first_seen, version) AS first, argMax(last_seen, version) AS last
             FROM ${store.database}.incidents GROUP BY id)
       WHERE status = 'firing'`,
    );
    for (const i of incidents) {
      for (const actor of i.actors) {
        for (const target of i.targets.length > 0 ? i.targets : ['']) out.push({ src: actor, dst: target, fromMs: Number(i.from_ms), toMs: Number(i.to_ms) });
      }
    }
  }
  return out;
}

/** One recorded OPA decision: its policy path, input and result, as OPA logged them. */
export interface OpaDecisionRow {
  time_ms: number;
  decision_id: string;
  decision: string;
  raw: string;
}

/** Recorded OPA decision-log records of the window (newest first), whose `raw` holds input and result. */
export async function queryOpaDecisions(store: Store, q: { fromMs: number; toMs: number; limit: number }): Promise<OpaDecisionRow[]> {
  const rows = await store.query<{ time_ms: string | number; decision_id: string; decision: string; raw: string }>(
    `SELECT toInt64(toUnixTimestamp64Milli(time)) AS time_ms, decision_id, decision, raw FROM ${store.database}.events
     WHERE source = 'opa' AND time >= fromUnixTimestamp64Milli({fromMs:Int64}) AND time < fromUnixTimestamp64Milli({toMs:Int64}) AND raw != ''
     ORDER BY time DESC LIMIT {limit:UInt32}`,
    { fromMs: q.fromMs, toMs: q.toMs, limit: q.limit },
  );
  return rows.map((r) => ({ ...r, time_ms: Number(r.time_ms) }));
}
