// The shape every detector shares (DESIGN §6): a name, the SQL it reads next to it, options with
// defaults validated from `detectors.options.<name>`, and a runner whose scoring is pure: it gets
// the rollup rows of one event-time window and returns candidates. The engine (engine.ts) owns
// windows, suppression and the anomaly lifecycle; a runner owns only its baselines.
import type { TObject, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SEVERITIES, type Severity } from '../core/anomaly.ts';
import { createError } from '../core/errors.ts';
import type { Store } from '../store/client.ts';

/**
 * Width of one rollup bucket, in seconds: the same number as in store/migrations/detectors.ts
 * (the detectors stage does not import store migrations; test/detectors/engine.test.ts keeps the
 * two in step).
 */
export const DETECTOR_BUCKET_SECONDS = 10;

/** One event-time window, [startMs, endMs). */
export interface DetectorWindow {
  readonly startMs: number;
  readonly endMs: number;
}

/** Facts every runner may use, fixed for the engine's life. */
export interface DetectorContext {
  /** Namespaces whose involvement raises severity. */
  readonly sensitiveNamespaces: ReadonlySet<string>;
  /** Event-time step between two evaluations, in seconds. */
  readonly stepSeconds: number;
}

/** What a runner found in one window; the engine turns it into an anomaly (open or update). */
export interface Candidate {
  /** Lifecycle key together with the detector name, e.g. `src -> dst`, a workload, a principal. */
  readonly subject: string;
  readonly src: string | null;
  readonly dst: string | null;
  readonly severity: Severity;
  readonly score: number;
  /** One sentence. */
  readonly summary: string;
  readonly evidence: Record<string, unknown>;
  /**
   * Event time of the first anomalous evidence, in ms: the first bucket where the finding's own
   * signal shows (the first denial of the spike, the first oversized response, the first new
   * target), never the start of the lookback window nor the first bucket of the entity's normal
   * traffic. Becomes the anomaly's `first_seen`; detection latency is measured from it.
   */
  readonly firstEvidenceMs: number;
}

/** Pure scoring state of one detector: fed windows in event-time order. */
export interface DetectorRunner<Row> {
  /** Scores `rows` (the rollup rows of `window`) and learns from them; returns candidates. */
  evaluate(window: DetectorWindow, rows: readonly Row[]): Candidate[];
  /** Optional: state from before the first evaluated window (live restart), e.g. known edges. */
  seed?(store: Store, beforeMs: number): Promise<void>;
}

/** Bound parameters every detector query receives: the bucket range [fromS, toS), Unix seconds. */
export interface RangeParams {
  readonly fromS: number;
  readonly toS: number;
}

/** A detector module: one per file, listed in registry.ts. */
export interface DetectorDefinition<Row extends { ts: number }, Schema extends TObject> {
  readonly name: string;
  /** One line for docs and --help. */
  readonly description: string;
  /** Options schema with defaults; values come from `detectors.options.<name>`. */
  readonly optionsSchema: Schema;
  /** Detectors whose candidates about the same source this one explains (they are suppressed). */
  readonly explains: readonly string[];
  /** SQL over the detector's rollup for buckets in [fromS, toS); every row carries `ts` (Unix seconds). */
  query(database: string): string;
  /** Window length from the options, in seconds (a multiple of the bucket width). */
  windowSeconds(options: Static<Schema>): number;
  createRunner(options: Static<Schema>, context: DetectorContext): DetectorRunner<Row>;
  /** Extra evidence for a freshly opened anomaly (sample request ids, policies), read from raw events. */
  sampleEvidence?(store: Store, candidate: Candidate, window: DetectorWindow): Promise<Record<string, unknown>>;
}

/** Any detector, type-erased for the registry (methods are bivariant, so each detector's own row and options types fit). */
export type AnyDetector = DetectorDefinition<{ ts: number }, TObject>;

/** Validates a detector's options (defaults applied); unknown keys and bad values raise ZTW_CONFIG_INVALID. */
export function resolveDetectorOptions<Schema extends TObject>(name: string, schema: Schema, input: unknown): Static<Schema> {
  const withDefaults = Value.Default(schema, structuredClone(input ?? {}));
  const converted = Value.Convert(schema, withDefaults);
  const errors = [...Value.Errors(schema, converted)];
  if (errors.length > 0) {
    const list = errors.slice(0, 5).map((e) => `detectors.options.${name}${e.path.replaceAll('/', '.')}: ${e.message}`);
    throw createError('CONFIG_INVALID', list.join('; '));
  }
  return converted as Static<Schema>;
}

/** Raises severity by `steps` levels, capped at critical. */
export function raiseSeverity(severity: Severity, steps = 1): Severity {
  const index = Math.min(SEVERITIES.length - 1, Math.max(0, SEVERITIES.indexOf(severity) + steps));
  return SEVERITIES[index] as Severity;
}

/** `src -> dst`, the subject format of edge detectors (alerts split it into src and dst labels). */
export function formatEdgeSubject(src: string, dst: string): string {
  return `${src} -> ${dst}`;
}

/** Rounds for display and evidence: two decimals, or integers for large values. */
export function roundNumber(value: number): number {
  if (!Number.isFinite(value)) return value;
  return Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100;
}

/** Smallest bucket start (ms) among rows, or the window start when there are none. */
export function firstBucketMs(rows: ReadonlyArray<{ ts: number }>, fallbackMs: number): number {
  let first = Infinity;
  for (const row of rows) if (row.ts < first) first = row.ts;
  return first === Infinity ? fallbackMs : first * 1000;
}

/** SQL fragment: the source key the rollups use (identity, else IP). */
export const SRC_KEY_SQL = "if(src_identity != '', src_identity, src_ip)";
/** SQL fragment: the destination key the rollups use (service, else IP). */
export const DST_KEY_SQL = "if(dst_service != '', dst_service, dst_ip)";

/** Time range condition on raw events for a window, with `{fromMs:Int64}`/`{toMs:Int64}` parameters. */
export const EVENT_TIME_RANGE_SQL = 'time >= fromUnixTimestamp64Milli({fromMs:Int64}) AND time < fromUnixTimestamp64Milli({toMs:Int64})';

/** Condition on rollup buckets for `RangeParams`. */
export const BUCKET_RANGE_SQL = "ts >= toDateTime({fromS:UInt32}, 'UTC') AND ts < toDateTime({toS:UInt32}, 'UTC')";
