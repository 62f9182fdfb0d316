// Evidence sampled from raw events when an anomaly opens: a few request ids and the policies or
// reasons behind them, so an analyst can pivot to the access history. Only anomalies that just
// opened are sampled, so this never runs per entity per window.
import type { Store } from '../store/client.ts';
import { DST_KEY_SQL, EVENT_TIME_RANGE_SQL, SRC_KEY_SQL, type DetectorWindow } from './detector.ts';

/** One raw event, reduced to what evidence shows. */
export interface SampledEvent {
  readonly request_id: string;
  readonly decision_id: string;
  readonly decision_reason: string;
  readonly tls_failure: string;
  readonly source: string;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly src_ip: string;
  readonly dst_port: number;
  readonly dst_key: string;
  readonly bytes: number;
}

export interface SampleFilter {
  /** Source key (identity, else IP) to match, if any. */
  readonly src?: string | null;
  /** Destination key (service, else IP) to match, if any. */
  readonly dst?: string | null;
  /** Extra condition on events without parameters of its own (fixed SQL from the detector). */
  readonly where?: string;
  /** Sort for "most telling first", e.g. `bytes DESC`. @default 'time' */
  readonly orderBy?: string;
  readonly limit?: number;
}

/** Reads up to `limit` raw events of `window` matching the filter. */
export async function sampleEvents(store: Store, window: DetectorWindow, filter: SampleFilter): Promise<SampledEvent[]> {
  const conditions = [EVENT_TIME_RANGE_SQL];
  const params: Record<string, unknown> = { fromMs: window.startMs, toMs: window.endMs };
  if (filter.src) {
    conditions.push(`${SRC_KEY_SQL} = {src:String}`);
    params.src = filter.src;
  }
  if (filter.dst) {
    conditions.push(`${DST_KEY_SQL} = {dst:String}`);
    params.dst = filter.dst;
  }
  if (filter.where) conditions.push(`(${filter.where})`);
  const rows = await store.query<SampledEvent>(
    `SELECT request_id, decision_id, decision_reason, tls_failure, source, toUInt32(status) AS status, method, path, src_ip,
            toUInt32(dst_port) AS dst_port, ${DST_KEY_SQL} AS dst_key, toFloat64(bytes_in + bytes_out) AS bytes
     FROM ${store.database}.events WHERE ${conditions.join(' AND ')}
     ORDER BY ${filter.orderBy ?? 'time'} LIMIT {limit:UInt32}`,
    { ...params, limit: filter.limit ?? 200 },
  );
  return rows;
}

/** Up to `max` distinct non-empty request (or decision) ids. */
export function pickRequestIds(events: readonly SampledEvent[], max = 5): string[] {
  const ids = new Set<string>();
  for (const e of events) {
    const id = e.request_id || e.decision_id;
    if (id) ids.add(id);
    if (ids.size >= max) break;
  }
  return [...ids];
}

/** Counts of a field's values, most frequent first, at most `max` entries. */
export function countValues(values: Iterable<string>, max = 5): Record<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, max));
}

/** True for an IPv4 or IPv6 literal: a source key without a workload identity. */
export function isAddress(key: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(key) || (key.includes(':') && /^[0-9a-fA-F:.]+$/.test(key));
}

/** How far back an address's own identity is looked for, in ms. */
const IP_IDENTITY_LOOKBACK_MS = 3_600_000;

/**
 * Identities seen on source addresses in the hour up to the window's end (the workload that had
 * the address, e.g. before its handshakes started failing without a peer certificate): per
 * address, at most three, most events first. One query for all the addresses.
 */
export async function identitiesSeenOn(store: Store, addresses: readonly string[], window: DetectorWindow): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const wanted = [...new Set(addresses.filter(isAddress))].slice(0, 50);
  if (wanted.length === 0) return out;
  const rows = await store.query<{ ip: string; identity: string }>(
    `SELECT src_ip AS ip, src_identity AS identity FROM ${store.database}.events
     WHERE src_ip IN {ips:Array(String)} AND src_identity != '' AND time >= fromUnixTimestamp64Milli({fromMs:Int64}) AND time < fromUnixTimestamp64Milli({toMs:Int64})
     GROUP BY src_ip, src_identity ORDER BY src_ip, count() DESC, src_identity`,
    { ips: wanted, fromMs: window.endMs - IP_IDENTITY_LOOKBACK_MS, toMs: window.endMs },
  );
  for (const row of rows) {
    const list = (out[row.ip] ??= []);
    if (list.length < 3) list.push(row.identity);
  }
  return out;
}
