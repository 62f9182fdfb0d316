// The shape every detector shares (DESIGN §6): a name, the SQL it reads next to it, options with
// defaults validated from `detectors.options.<name>`, and a runner whose scoring is pure: it gets
// the rollup rows of one event-time window and returns candidates. The engine (engine.ts) owns
// windows, suppression and the anomaly lifecycle; a runner owns only its baselines.
import type { TObject, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SEVERITIES, type Severity } from '../core/anomaly.ts';
import { createError } from '../core/errors.ts';
import type { Store } from '../store/client.ts';
import type { RollupName } from './rollups.ts';

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

/**
 * The Prometheus alert a detector's firing anomalies raise (one per detector). The rule in
 * alerts/ztwatch-detectors.rules.yml and its unit tests are generated from it (alerts/generate.ts).
 * `summary` and `description` are Prometheus templates: `{{ $labels.subject }}`, `{{ $labels.src }}`,
 * `{{ $labels.detector }}`, `{{ $labels.severity }}`, `{{ printf "%.2f" $value }}`.
 */
export interface DetectorAlert {
  /** Alert name, `Ztwatch<What>`; its runbook is the section of that name in docs/runbooks.md. */
  readonly name: string;
  /**
   * What the anomaly's subject names: `edge` = `src -> dst` (split into `src` and `dst` labels);
   * `source` = the source itself (the `src` label; `src -> …` still yields the source).
   */
  readonly subject: 'edge' | 'source';
  /** Prometheus `for:`, e.g. `30s`: rides out one missed scrape. */
  readonly for: string;
  /** Labels added to the alert (routing); never `severity`, which comes from the anomaly. */
  readonly labels: Readonly<Record<string, string>>;
  readonly summary: string;
  /** One paragraph; naming the detector, the subject, the score and the severity. */
  readonly description: string;
}

/**
 * A detector's section in docs/runbooks.md, generated from the declaration. Each string is one
 * Markdown paragraph or list item, unwrapped (the generator wraps lines).
 */
export interface DetectorRunbook {
  /** What the alert means: what the detector saw, and what does not fire it. */
  readonly meaning: string;
  /** How to confirm it in the dashboards: one list item each. */
  readonly confirm: readonly string[];
  /** What to do first, in order: one numbered item each. */
  readonly firstActions: readonly string[];
}

/**
 * Everything about a detector besides its scoring, declared once in its module: the registry, the
 * engine's rollup scan, the alert rule and its tests, the runbook, the docs tables and the eval's
 * class map are generated from it or checked against it.
 */
export interface DetectorDeclaration {
  readonly name: string;
  /** One line for docs and --help: what it flags. */
  readonly description: string;
  /** One line for docs: what it must not flag (`—` when nothing in particular). */
  readonly mustNotFlag: string;
  /** Detectors whose candidates about the same source this one explains (they are suppressed). */
  readonly explains: readonly string[];
  /** Rollup tables its `query` reads (detectors/rollups.ts). */
  readonly rollups: readonly RollupName[];
  /** Attack classes of the scenario generator (ingest/simulate) it is expected to find. */
  readonly attackClasses: readonly string[];
  readonly alert: DetectorAlert;
  readonly runbook: DetectorRunbook;
}

/** A detector module: one per file, listed in registry.ts. */
export interface DetectorDefinition<Row extends { ts: number }, Schema extends TObject> extends DetectorDeclaration {
  /** Options schema with defaults; values come from `detectors.options.<name>`. */
  readonly optionsSchema: Schema;
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
