// The detectors stage: the engine (windows, lifecycle, metrics), the registry of detectors, and
// the backtest that replays recorded files through ingest, store and detectors.
export { createDetectorEngine, type DetectorEngine, type DetectorEngineOptions, type AnomalyChange, MAX_FIRING_SERIES } from './engine.ts';
export { DETECTORS, DETECTOR_NAMES } from './registry.ts';
export type { Candidate, DetectorDefinition, DetectorRunner, DetectorWindow } from './detector.ts';
export { replayIntoStore, runBacktest, type ReplaySource, type ReplayResult, type ReplayProgress, type RecordParser, type RecordGroup } from './backtest.ts';
