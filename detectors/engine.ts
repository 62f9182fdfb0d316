// The detector engine: evaluates every enabled detector over event-time windows that step by
// `detectors.stepSeconds` up to a watermark, then runs the anomaly lifecycle: an anomaly opens once
// per (detector, subject), updates while it persists, and resolves after `resolveAfterSeconds` of
// quiet event time. A higher-level finding explains lower-level ones about the same source (a
// fan-out explains that source's new edges), so those are not raised at all. Every lifecycle change
// is a new row (higher version) in `anomalies`, and the detector metrics follow.
//
// The same code runs live (a timer; watermark = newest stored event − allowed lateness) and in
// replay (backtest, eval: the caller advances the watermark as it inserts), with no wall-clock waits.
import { createHash } from 'node:crypto';
import type { Anomaly, Severity } from '../core/anomaly.ts';
import { rankSeverity } from '../core/anomaly.ts';
import type { FrozenConfig } from '../core/config.ts';
import { codeOf, createError } from '../core/errors.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Store } from '../store/client.ts';
import { DETECTOR_BUCKET_SECONDS, resolveDetectorOptions, type AnyDetector, type Candidate, type DetectorRunner, type DetectorWindow } from './detector.ts';
import { DETECTORS } from './registry.ts';
import { DETECTOR_ROLLUPS, type RollupName } from './rollups.ts';

/** A lifecycle change, as reported to `onAnomaly`. */
export type AnomalyChange = 'opened' | 'updated' | 'resolved';

export interface DetectorEngine {
  /** Evaluates every window ending at or before watermarkMs (event time); returns anomaly records changed (opened/updated/resolved). */
  advanceTo(watermarkMs: number): Promise<Anomaly[]>;
  /** Live mode: every config.detectors.intervalSeconds wall seconds, watermark = newest stored event time − allowedLatenessSeconds. */
  startLive(): { close(): Promise<void> };
  /** End of a replay: evaluates what is left and resolves anomalies quiet for resolveAfterSeconds by the final watermark. */
  finish(finalWatermarkMs: number): Promise<Anomaly[]>;
}

export interface DetectorEngineOptions {
  store: Store;
  metrics: Metrics;
  config: FrozenConfig;
  /** Called for every lifecycle change, in event-time order, after the row is written. */
  onAnomaly?: (a: Anomaly, change: AnomalyChange) => void;
  /** Called after each advance with the event time evaluated so far, in ms (after that advance's onAnomaly calls). */
  onWatermark?: (watermarkMs: number) => void;
}

interface ActiveDetector {
  readonly definition: AnyDetector;
  readonly runner: DetectorRunner<{ ts: number }>;
  readonly windowMs: number;
}

interface OpenAnomaly {
  record: Anomaly;
  subject: string;
  version: number;
  lastActiveMs: number;
  lastWrittenMs: number;
  lastWrittenScore: number;
  /** Label values of its ztwatch_anomaly_firing series, when it has one. */
  series: { detector: string; severity: string; subject: string } | undefined;
}

/** Most ztwatch_anomaly_firing series at once, so a storm cannot blow up Prometheus. */
export const MAX_FIRING_SERIES = 200;
/** Most windows evaluated per batch of rollup queries, bounding memory on long replays. */
const MAX_WINDOWS_PER_BATCH = 180;
/** An open anomaly still active gets a fresh row at least this often (last_seen progress), in ms. */
const HEARTBEAT_MS = 10 * 60_000;

/** ISO-8601 UTC from event time in ms. */
function formatIso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Builds the enabled detectors with validated options; throws ZTW_CONFIG_INVALID on unknown names or bad options. */
export function createActiveDetectors(config: FrozenConfig, stepSeconds: number): ActiveDetector[] {
  const enabled = config.detectors.enabled.length > 0 ? [...config.detectors.enabled] : Object.keys(DETECTORS);
  for (const name of [...enabled, ...Object.keys(config.detectors.options)]) {
    if (!Object.hasOwn(DETECTORS, name)) throw createError('CONFIG_INVALID', `unknown detector '${name}' (known: ${Object.keys(DETECTORS).join(', ')})`);
  }
  const context = { sensitiveNamespaces: new Set(config.detectors.sensitiveNamespaces), stepSeconds };
  return Object.values(DETECTORS)
    .filter((d) => enabled.includes(d.name))
    .map((definition) => {
      const options = resolveDetectorOptions(definition.name, definition.optionsSchema, config.detectors.options[definition.name]);
      return { definition, runner: definition.createRunner(options, context), windowMs: definition.windowSeconds(options) * 1000 };
    });
}

/** The rollups the registered detectors read (their declarations), scanned for data and for the live watermark. */
export const SCANNED_ROLLUPS: readonly RollupName[] = [...new Set(Object.values(DETECTORS).flatMap((d) => d.rollups))];

/** Creates the engine over a migrated store. Nothing runs until `advanceTo` or `startLive`. */
export function createDetectorEngine(options: DetectorEngineOptions): DetectorEngine {
  const { store, metrics, config, onAnomaly, onWatermark } = options;
  const db = store.database;
  const bucketMs = DETECTOR_BUCKET_SECONDS * 1000;
  const stepSeconds = Math.max(DETECTOR_BUCKET_SECONDS, Math.ceil(config.detectors.stepSeconds / DETECTOR_BUCKET_SECONDS) * DETECTOR_BUCKET_SECONDS);
  const stepMs = stepSeconds * 1000;
  const resolveAfterMs = config.detectors.resolveAfterSeconds * 1000;
  const detectors = createActiveDetectors(config, stepSeconds);
  const maxWindowMs = Math.max(stepMs, ...detectors.map((d) => d.windowMs));
  const explainers = new Map<string, string[]>();
  for (const d of detectors) for (const explained of d.definition.explains) explainers.set(explained, [...(explainers.get(explained) ?? []), d.definition.name]);
  const stage = metrics.stage('detector');

  const open = new Map<string, OpenAnomaly>();
  let live = false;
  let lastEndMs: number | undefined;
  let silentUntilMs = -Infinity;
  let queue: Promise<unknown> = Promise.resolve();

  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  async function initialize(watermarkMs: number): Promise<boolean> {
    const firstMs = await nextDataMs(0);
    if (firstMs === undefined) return false;
    const dataStartMs = Math.floor(firstMs / stepMs) * stepMs;
    if (live) {
      // Rebuild baselines from stored history without raising anything, then go live.
      const warmStartMs = Math.floor((watermarkMs - config.detectors.warmupSeconds * 1000) / stepMs) * stepMs;
      lastEndMs = Math.max(dataStartMs, warmStartMs);
      silentUntilMs = Math.floor(watermarkMs / stepMs) * stepMs;
      for (const d of detectors) await d.runner.seed?.(store, lastEndMs);
      await restoreFiring();
    } else {
      lastEndMs = dataStartMs;
    }
    return true;
  }

  async function restoreFiring(): Promise<void> {
    const rows = await store.query<{ id: string; detector: string; severity: Severity; first_seen: number; detected_at: number; last_seen: number; src: string | null; dst: string | null; subject: string; score: number; summary: string; evidence: string; version: number }>(
      `SELECT id, detector, severity, toFloat64(toUnixTimestamp64Milli(first_seen)) AS first_seen, toFloat64(toUnixTimestamp64Milli(detected_at)) AS detected_at,
              toFloat64(toUnixTimestamp64Milli(last_seen)) AS last_seen,
              src, dst, subject, score, summary, evidence, toFloat64(version) AS version
       FROM ${db}.anomalies FINAL WHERE status = 'firing'`,
    );
    for (const row of rows) {
      if (!detectors.some((d) => d.definition.name === row.detector)) continue;
      let evidence: Record<string, unknown> = {};
      try {
        evidence = JSON.parse(row.evidence) as Record<string, unknown>;
      } catch {
        // A row written by hand or truncated: keep the anomaly, lose its evidence.
      }
      const record: Anomaly = {
        id: row.id,
        detector: row.detector,
        severity: row.severity,
        status: 'firing',
        first_seen: formatIso(Number(row.first_seen)),
        detected_at: formatIso(Number(row.detected_at)),
        last_seen: formatIso(Number(row.last_seen)),
        src: row.src,
        dst: row.dst,
        score: Number(row.score),
        summary: row.summary,
        evidence,
      };
      const entry: OpenAnomaly = { record, subject: row.subject, version: Number(row.version), lastActiveMs: Number(row.last_seen), lastWrittenMs: Number(row.last_seen), lastWrittenScore: Number(row.score), series: undefined };
      open.set(`${row.detector}\u0000${row.subject}`, entry);
      setFiringSeries(entry, record);
    }
    refreshActiveGauge();
  }

  let firingSeries = 0;

  function setFiringSeries(entry: OpenAnomaly, record: Anomaly): void {
    const labels = { detector: record.detector, severity: record.severity, subject: entry.subject };
    if (entry.series && entry.series.severity !== labels.severity) clearFiringSeries(entry);
    if (!entry.series) {
      if (firingSeries >= MAX_FIRING_SERIES) return;
      entry.series = labels;
      firingSeries++;
    }
    metrics.anomalyFiring.set(entry.series, record.score);
  }

  function clearFiringSeries(entry: OpenAnomaly): void {
    if (!entry.series) return;
    metrics.anomalyFiring.remove(entry.series);
    entry.series = undefined;
    firingSeries--;
  }

  function refreshActiveGauge(): void {
    metrics.anomaliesActive.reset();
    const counts = new Map<string, { detector: string; severity: string; n: number }>();
    for (const o of open.values()) {
      const key = `${o.record.detector}\u0000${o.record.severity}`;
      const c = counts.get(key) ?? { detector: o.record.detector, severity: o.record.severity, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    for (const c of counts.values()) metrics.anomaliesActive.set({ detector: c.detector, severity: c.severity }, c.n);
  }

  /** Candidates of detectors explained, for the same source, by a finding of a higher-level detector. */
  function suppress(found: Map<string, Candidate[]>): void {
    const sourcesOf = (name: string): Set<string> => {
      const set = new Set<string>();
      for (const c of found.get(name) ?? []) if (c.src) set.add(c.src);
      for (const o of open.values()) if (o.record.detector === name && o.record.src) set.add(o.record.src);
      return set;
    };
    for (const [explained, by] of explainers) {
      const list = found.get(explained);
      if (!list || list.length === 0) continue;
      const sources = new Set(by.flatMap((name) => [...sourcesOf(name)]));
      if (sources.size > 0) found.set(explained, list.filter((c) => !c.src || !sources.has(c.src)));
    }
  }

  interface PendingChange {
    entry: OpenAnomaly;
    change: AnomalyChange;
    /** The record as of this change (later changes in the same batch must not rewrite it). */
    snapshot: Anomaly;
    version: number;
    window: DetectorWindow;
    candidate: Candidate | undefined;
    detector: AnyDetector;
  }

  function recordChange(entry: OpenAnomaly, change: AnomalyChange, window: DetectorWindow, candidate: Candidate | undefined, detector: AnyDetector): PendingChange {
    entry.version++;
    entry.lastWrittenMs = Date.parse(entry.record.last_seen);
    entry.lastWrittenScore = entry.record.score;
    return { entry, change, snapshot: structuredClone(entry.record), version: entry.version, window, candidate, detector };
  }

  function runLifecycle(found: Map<string, Candidate[]>, endMs: number, windowsByDetector: Map<string, DetectorWindow>): PendingChange[] {
    const changes: PendingChange[] = [];
    const active = new Set<string>();
    for (const d of detectors) {
      const name = d.definition.name;
      const window = windowsByDetector.get(name) as DetectorWindow;
      for (const c of found.get(name) ?? []) {
        const key = `${name}\u0000${c.subject}`;
        if (active.has(key)) continue;
        active.add(key);
        const existing = open.get(key);
        if (!existing) {
          const id = createHash('sha256').update(`${name}\u0000${c.subject}\u0000${c.firstEvidenceMs}`).digest('hex').slice(0, 24);
          const record: Anomaly = {
            id,
            detector: name,
            severity: c.severity,
            status: 'firing',
            first_seen: formatIso(Math.min(c.firstEvidenceMs, endMs)),
            detected_at: formatIso(endMs),
            last_seen: formatIso(endMs),
            src: c.src,
            dst: c.dst,
            score: c.score,
            summary: c.summary,
            evidence: { ...c.evidence },
          };
          const entry: OpenAnomaly = { record, subject: c.subject, version: 0, lastActiveMs: endMs, lastWrittenMs: endMs, lastWrittenScore: c.score, series: undefined };
          open.set(key, entry);
          changes.push(recordChange(entry, 'opened', window, c, d.definition));
          continue;
        }
        existing.lastActiveMs = endMs;
        const record = existing.record;
        const severityRose = rankSeverity(c.severity) > rankSeverity(record.severity);
        const scoreRose = c.score > 1.25 * existing.lastWrittenScore;
        record.last_seen = formatIso(endMs);
        if (severityRose) record.severity = c.severity;
        if (c.score > record.score) {
          record.score = c.score;
          record.summary = c.summary;
          record.evidence = { ...record.evidence, ...c.evidence };
        }
        if (severityRose || scoreRose || endMs - existing.lastWrittenMs >= HEARTBEAT_MS) changes.push(recordChange(existing, 'updated', window, undefined, d.definition));
      }
    }
    for (const [key, entry] of open) {
      if (active.has(key) || endMs - entry.lastActiveMs < resolveAfterMs) continue;
      changes.push(resolveEntry(key, entry, endMs));
    }
    return changes;
  }

  function resolveEntry(key: string, entry: OpenAnomaly, atMs: number): PendingChange {
    entry.record.status = 'resolved';
    entry.record.last_seen = formatIso(entry.lastActiveMs);
    open.delete(key);
    const detector = detectors.find((d) => d.definition.name === entry.record.detector)?.definition as AnyDetector;
    return recordChange(entry, 'resolved', { startMs: atMs - stepMs, endMs: atMs }, undefined, detector);
  }

  async function commit(changes: PendingChange[]): Promise<Anomaly[]> {
    if (changes.length === 0) return [];
    const extraById = new Map<string, Record<string, unknown>>();
    for (const ch of changes) {
      if (ch.change !== 'opened' || !ch.detector.sampleEvidence || !ch.candidate) continue;
      try {
        const extra = await ch.detector.sampleEvidence(store, ch.candidate, ch.window);
        extraById.set(ch.snapshot.id, extra);
        ch.entry.record.evidence = { ...ch.entry.record.evidence, ...extra };
      } catch (err) {
        // Evidence samples are a courtesy; the anomaly stands without them.
        stage.error(codeOf(err, 'ZTW_STORE_QUERY_FAILED'));
      }
    }
    for (const ch of changes) {
      const extra = extraById.get(ch.snapshot.id);
      if (extra) ch.snapshot.evidence = { ...ch.snapshot.evidence, ...extra };
    }
    await store.insertRows(
      'anomalies',
      changes.map(({ snapshot: r, entry, version }) => ({
        id: r.id,
        detector: r.detector,
        severity: r.severity,
        status: r.status,
        first_seen: Date.parse(r.first_seen),
        detected_at: Date.parse(r.detected_at),
        last_seen: Date.parse(r.last_seen),
        src: r.src,
        dst: r.dst,
        subject: entry.subject,
        score: r.score,
        summary: r.summary,
        evidence: JSON.stringify(r.evidence),
        version,
      })),
    );
    for (const ch of changes) {
      if (ch.change === 'opened') metrics.anomaliesOpened.inc({ detector: ch.snapshot.detector, severity: ch.snapshot.severity });
      if (ch.change === 'resolved') clearFiringSeries(ch.entry);
      else setFiringSeries(ch.entry, ch.snapshot);
      onAnomaly?.(ch.snapshot, ch.change);
    }
    refreshActiveGauge();
    return changes.map((ch) => ch.snapshot);
  }

  async function evaluateBatch(firstEndMs: number, lastEnd: number): Promise<Anomaly[]> {
    const rowsByDetector = new Map<string, Map<number, Array<{ ts: number }>>>();
    /** Seconds each detector spent on this batch (its query and its scoring), observed once. */
    const spentSeconds = new Map<string, number>();
    for (const d of detectors) {
      const started = performance.now();
      const rows = await store.query<{ ts: number }>(d.definition.query(db), { fromS: (firstEndMs - d.windowMs) / 1000, toS: lastEnd / 1000 });
      const byBucket = new Map<number, Array<{ ts: number }>>();
      for (const row of rows) {
        const ts = Number(row.ts);
        row.ts = ts;
        let list = byBucket.get(ts * 1000);
        if (!list) byBucket.set(ts * 1000, (list = []));
        list.push(row);
      }
      rowsByDetector.set(d.definition.name, byBucket);
      spentSeconds.set(d.definition.name, (performance.now() - started) / 1000);
    }
    const pending: PendingChange[] = [];
    for (let endMs = firstEndMs; endMs <= lastEnd; endMs += stepMs) {
      const found = new Map<string, Candidate[]>();
      const windows = new Map<string, DetectorWindow>();
      for (const d of detectors) {
        const started = performance.now();
        const window = { startMs: endMs - d.windowMs, endMs };
        const byBucket = rowsByDetector.get(d.definition.name) as Map<number, Array<{ ts: number }>>;
        const rows: Array<{ ts: number }> = [];
        for (let b = window.startMs; b < endMs; b += bucketMs) {
          const list = byBucket.get(b);
          if (list) for (const row of list) rows.push(row);
        }
        found.set(d.definition.name, d.runner.evaluate(window, rows));
        windows.set(d.definition.name, window);
        spentSeconds.set(d.definition.name, (spentSeconds.get(d.definition.name) ?? 0) + (performance.now() - started) / 1000);
      }
      if (endMs <= silentUntilMs) continue;
      suppress(found);
      pending.push(...runLifecycle(found, endMs, windows));
    }
    lastEndMs = lastEnd;
    for (const [detector, seconds] of spentSeconds) metrics.detectorRunSeconds.observe({ detector }, seconds);
    return commit(pending);
  }

  async function advance(watermarkMs: number, alignUp: boolean): Promise<Anomaly[]> {
    try {
      if (lastEndMs === undefined && !(await initialize(watermarkMs))) return [];
      const target = (alignUp ? Math.ceil(watermarkMs / stepMs) : Math.floor(watermarkMs / stepMs)) * stepMs;
      const changed: Anomaly[] = [];
      while ((lastEndMs as number) + stepMs <= target) {
        // Sparse recordings (a few lines years apart) must not cost a window per step: with nothing
        // open, windows that would see no data at all are skipped.
        if (open.size === 0) {
          const nextMs = await nextDataMs((lastEndMs as number) - maxWindowMs);
          const jumpTo = nextMs === undefined ? target : Math.min(target, Math.floor(nextMs / stepMs) * stepMs);
          if (jumpTo > (lastEndMs as number) + stepMs) {
            lastEndMs = jumpTo;
            continue;
          }
        }
        const firstEnd = (lastEndMs as number) + stepMs;
        const lastEnd = Math.min(target, firstEnd + (MAX_WINDOWS_PER_BATCH - 1) * stepMs);
        changed.push(...(await evaluateBatch(firstEnd, lastEnd)));
      }
      metrics.detectorWatermark.set(Math.max(watermarkMs, lastEndMs ?? 0) / 1000);
      if (lastEndMs !== undefined) onWatermark?.(lastEndMs);
      const now = Date.now() / 1000;
      for (const d of detectors) metrics.detectorLastRun.set({ detector: d.definition.name }, now);
      return changed;
    } catch (err) {
      stage.error(codeOf(err, 'ZTW_STORE_QUERY_FAILED'));
      throw err;
    }
  }

  /** Earliest rollup bucket at or after `fromMs`, or undefined when there is none. */
  async function nextDataMs(fromMs: number): Promise<number | undefined> {
    const [row] = await store.query<{ t: number; n: number }>(
      `SELECT toFloat64(toUnixTimestamp(min(first_ts))) AS t, toFloat64(count()) AS n FROM (${SCANNED_ROLLUPS
        .map((t) => `SELECT min(ts) AS first_ts FROM ${db}.${t} WHERE ts >= toDateTime({fromS:UInt32}, 'UTC') HAVING count() > 0`)
        .join(' UNION ALL ')})`,
      { fromS: Math.max(0, Math.floor(fromMs / 1000)) },
    );
    return row && Number(row.n) > 0 ? Number(row.t) * 1000 : undefined;
  }

  async function newestEventTimeMs(): Promise<number> {
    // A rollup that keeps the exact newest event time says so; the others only their bucket (its end counts).
    const newest = SCANNED_ROLLUPS.map((table) => {
      const sql = DETECTOR_ROLLUPS[table].newestEventMsSql ?? `toFloat64(toUnixTimestamp(max(ts)) + ${DETECTOR_BUCKET_SECONDS}) * 1000`;
      return `(SELECT ${sql} FROM ${db}.${table} WHERE ts >= toDateTime({sinceS:UInt32}, 'UTC'))`;
    });
    const [row] = await store.query<{ t: number }>(
      `SELECT ${newest.length === 1 ? newest[0] : `greatest(${newest.join(', ')})`} AS t`,
      { sinceS: lastEndMs === undefined ? 0 : Math.max(0, Math.floor(lastEndMs / 1000) - 86_400) },
    );
    const t = Number(row?.t ?? 0);
    // max() over no rows gives the epoch (plus a bucket): no data.
    return t > DETECTOR_BUCKET_SECONDS * 1000 ? t : 0;
  }

  return {
    advanceTo: (watermarkMs) => serialize(() => advance(watermarkMs, false)),
    finish: (finalWatermarkMs) =>
      serialize(async () => {
        const changed = await advance(finalWatermarkMs, true);
        const pending: PendingChange[] = [];
        for (const [key, entry] of open) {
          if (finalWatermarkMs - entry.lastActiveMs >= resolveAfterMs) pending.push(resolveEntry(key, entry, finalWatermarkMs));
        }
        return [...changed, ...(await commit(pending))];
      }),
    startLive() {
      live = true;
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      let running: Promise<void> = Promise.resolve();
      const tick = async (): Promise<void> => {
        try {
          // No further than the ingest pipeline lets event time run ahead of the clock: events
          // written to the bus by another producer cannot carry the watermark past real traffic.
          const newest = Math.min(await newestEventTimeMs(), Date.now() + config.ingest.maxFutureSeconds * 1000);
          if (newest > 0) await serialize(() => advance(newest - config.detectors.allowedLatenessSeconds * 1000, false));
        } catch {
          // Counted in advance(); the next tick retries (the store may be restarting).
        }
        if (!stopped) timer = setTimeout(() => (running = tick()), config.detectors.intervalSeconds * 1000);
      };
      running = tick();
      return {
        async close() {
          stopped = true;
          if (timer) clearTimeout(timer);
          await running;
        },
      };
    },
  };
}
