// Time series of the service graph's counters, from the per-minute edge rollup: what the console
// charts for an edge, a node or an incident, with the mean of an earlier range as its baseline.
import type { Store } from './client.ts';

/** The counters of `edge_minute`, in the order they are returned. */
export const SERIES_COUNTERS = ['requests', 'denies', 'errors', 'tls_failures', 'plaintext', 'mtls_requests', 'bytes_out'] as const;
export type SeriesCounter = (typeof SERIES_COUNTERS)[number];

/** Most points one series holds; longer ranges get a coarser step. */
export const MAX_SERIES_POINTS = 1440;

export interface SeriesQuery {
  readonly fromMs: number;
  readonly toMs: number;
  /** Source identities to keep (any of them); all when absent or empty. */
  readonly src?: readonly string[] | undefined;
  /** Destination services to keep (any of them); all when absent or empty. */
  readonly dst?: readonly string[] | undefined;
  /** Earlier range whose mean per step is the baseline; none when absent. */
  readonly baselineFromMs?: number | undefined;
  readonly baselineToMs?: number | undefined;
}

export interface Series {
  /** Step between points, in seconds (a multiple of 60). */
  readonly stepSeconds: number;
  /** Start of each step, in Unix seconds, dense from `fromMs` to `toMs` (steps without traffic are 0). */
  readonly times: number[];
  readonly values: Record<SeriesCounter, number[]>;
  /** Mean per step over the baseline range, or null when none was asked. */
  readonly baseline: Record<SeriesCounter, number> | null;
}

/** Step, in seconds, that keeps `[fromMs, toMs)` within MAX_SERIES_POINTS whole minutes. */
export function chooseStepSeconds(fromMs: number, toMs: number): number {
  const minutes = Math.max(1, Math.ceil((toMs - fromMs) / 60_000));
  return Math.max(1, Math.ceil(minutes / MAX_SERIES_POINTS)) * 60;
}

function buildWhere(query: { src?: readonly string[] | undefined; dst?: readonly string[] | undefined }, params: Record<string, unknown>): string {
  let where = "minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AND minute < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')";
  if (query.src && query.src.length > 0) {
    where += ' AND src_identity IN {src:Array(String)}';
    params.src = [...query.src];
  }
  if (query.dst && query.dst.length > 0) {
    where += ' AND dst_service IN {dst:Array(String)}';
    params.dst = [...query.dst];
  }
  return where;
}

const SUMS = SERIES_COUNTERS.map((c) => `toFloat64(sum(${c})) AS ${c}`).join(', ');

/** Counters per step over `[fromMs, toMs)` for the matching edges, and their baseline. */
export async function querySeries(store: Store, query: SeriesQuery): Promise<Series> {
  const stepSeconds = chooseStepSeconds(query.fromMs, query.toMs);
  const stepMs = stepSeconds * 1000;
  const startMs = Math.floor(query.fromMs / stepMs) * stepMs;
  const params: Record<string, unknown> = { from_ms: startMs, to_ms: query.toMs, step: stepSeconds };
  const rows = await store.query<Record<string, number>>(
    `SELECT toFloat64(toUnixTimestamp(toStartOfInterval(minute, INTERVAL {step:UInt32} SECOND))) AS t, ${SUMS}
     FROM ${store.database}.edge_minute WHERE ${buildWhere(query, params)} GROUP BY t ORDER BY t`,
    params,
  );
  const times: number[] = [];
  for (let t = startMs; t < query.toMs; t += stepMs) times.push(t / 1000);
  const index = new Map(times.map((t, i) => [t, i]));
  const values = Object.fromEntries(SERIES_COUNTERS.map((c) => [c, times.map(() => 0)])) as Record<SeriesCounter, number[]>;
  for (const row of rows) {
    const i = index.get(Number(row.t));
    if (i === undefined) continue;
    for (const c of SERIES_COUNTERS) values[c][i] = Number(row[c]);
  }

  let baseline: Record<SeriesCounter, number> | null = null;
  if (query.baselineFromMs !== undefined && query.baselineToMs !== undefined && query.baselineToMs > query.baselineFromMs) {
    const baseParams: Record<string, unknown> = { from_ms: query.baselineFromMs, to_ms: query.baselineToMs };
    const [sums] = await store.query<Record<string, number>>(
      `SELECT ${SUMS} FROM ${store.database}.edge_minute WHERE ${buildWhere(query, baseParams)}`,
      baseParams,
    );
    const steps = Math.max(1, (query.baselineToMs - query.baselineFromMs) / stepMs);
    baseline = Object.fromEntries(SERIES_COUNTERS.map((c) => [c, Number(sums?.[c] ?? 0) / steps])) as Record<SeriesCounter, number>;
  }
  return { stepSeconds, times, values, baseline };
}
