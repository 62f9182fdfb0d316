// The incident record (DESIGN §6b): what a human is paged for. Anomalies are evidence; an incident
// groups the anomalies one actor or one cause explains. The row in `incidents`, the API body and
// the backtest `--incidents-out` NDJSON line.
import { Type, type Static } from '@sinclair/typebox';
import { ANOMALY_STATUSES, SEVERITIES, rankSeverity, type Severity } from './anomaly.ts';
import { literalUnion } from './literal-union.ts';

export const INCIDENT_STATUSES = ANOMALY_STATUSES;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/**
 * Lifecycle changes of a member anomaly, as recorded in an incident's timeline; 'reopened': the
 * member reopened a resolved incident (same actor and target soon after).
 */
export const INCIDENT_MEMBER_CHANGES = ['opened', 'updated', 'resolved', 'reopened'] as const;

export const IncidentTimelineEntrySchema = Type.Object(
  {
    /** ISO-8601 UTC, event time of the change. */
    at: Type.String(),
    /** Member anomaly id. */
    anomaly: Type.String(),
    detector: Type.String(),
    change: literalUnion(INCIDENT_MEMBER_CHANGES),
    severity: literalUnion(SEVERITIES),
    /** The anomaly's one-sentence summary as of the change. */
    summary: Type.String(),
  },
  { additionalProperties: false },
);
export type IncidentTimelineEntry = Static<typeof IncidentTimelineEntrySchema>;

export const IncidentSchema = Type.Object(
  {
    /** Stable for the incident's life (derived from its first member anomaly). */
    id: Type.String(),
    /** One sentence naming the actor and the target (or saying that no actor can be named). */
    title: Type.String(),
    /** Highest severity of its members, ever (an incident never de-escalates). */
    severity: literalUnion(SEVERITIES),
    /** firing while any member anomaly fires. */
    status: literalUnion(INCIDENT_STATUSES),
    /** ISO-8601 UTC, event time of the first anomalous evidence of any member. */
    first_seen: Type.String(),
    /** ISO-8601 UTC, event-time watermark when it was raised: when it paged, or when it opened if it never paged. */
    detected_at: Type.String(),
    /** ISO-8601 UTC, event time of the newest evidence of any member. */
    last_seen: Type.String(),
    /** Who acts: source identities, IPs, principals. Empty when none can be named. */
    actors: Type.Array(Type.String()),
    /** What is acted on: services, workloads, destinations. */
    targets: Type.Array(Type.String()),
    /** Member anomaly ids, in the order they joined. */
    members: Type.Array(Type.String()),
    /** Member lifecycle changes, oldest first (bounded; see evidence.timeline_dropped). */
    timeline: Type.Array(IncidentTimelineEntrySchema),
    /** Why these anomalies belong together and what the members saw. */
    evidence: Type.Record(Type.String(), Type.Unknown()),
    /** True once it pages (severity ≥ low, after the hold for incidents without an actor); never goes back. */
    notify: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type Incident = Static<typeof IncidentSchema>;

/** Lowest severity that pages. */
export const PAGING_SEVERITY: Severity = 'low';

/** True when an incident of this severity pages. */
export function isPagingSeverity(severity: Severity): boolean {
  return rankSeverity(severity) >= rankSeverity(PAGING_SEVERITY);
}
