// The anomaly record (DESIGN §6): the row in `anomalies`, the API body and the backtest NDJSON line.
import { Type, type Static } from '@sinclair/typebox';
import { literalUnion } from './literal-union.ts';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ANOMALY_STATUSES = ['firing', 'resolved'] as const;
export type AnomalyStatus = (typeof ANOMALY_STATUSES)[number];

export const AnomalySchema = Type.Object(
  {
    /** Stable per (detector, subject, opening); the same id across updates and resolution. */
    id: Type.String(),
    detector: Type.String(),
    severity: literalUnion(SEVERITIES),
    status: literalUnion(ANOMALY_STATUSES),
    /** ISO-8601 UTC, event time of the first anomalous evidence (never the start of a lookback window). */
    first_seen: Type.String(),
    /** ISO-8601 UTC, the event-time watermark when the detector raised it; latency = detected_at − onset. */
    detected_at: Type.String(),
    /** ISO-8601 UTC, event time of the newest evidence. */
    last_seen: Type.String(),
    /** Source identity, or null where not applicable. */
    src: Type.Union([Type.String(), Type.Null()]),
    /** Destination identity / service, or null where not applicable. */
    dst: Type.Union([Type.String(), Type.Null()]),
    score: Type.Number(),
    /** One sentence. */
    summary: Type.String(),
    evidence: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
export type Anomaly = Static<typeof AnomalySchema>;

/** Severity rank, for comparisons and max(). */
export function rankSeverity(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}
