// Shapes of the API bodies the console reads (the OpenAPI document at /openapi.json is the source).

export interface GraphNode {
  id: string;
  kind: 'identity' | 'service';
  name: string;
  namespace: string;
  requests_out: number;
  requests_in: number;
}

export interface GraphEdge {
  source: string;
  target: string;
  requests: number;
  denies: number;
  errors: number;
  tls_failures: number;
  plaintext: number;
  mtls_requests: number;
  bytes_in: number;
  bytes_out: number;
}

export interface Graph {
  from: string;
  to: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export interface Anomaly {
  id: string;
  detector: string;
  severity: Severity;
  status: 'firing' | 'resolved';
  first_seen: string;
  last_seen: string;
  src: string | null;
  dst: string | null;
  score: number;
  summary: string;
  evidence: Record<string, unknown>;
}

export interface IncidentTimelineEntry {
  at: string;
  anomaly: string;
  detector: string;
  change: string;
  severity: Severity;
  summary: string;
}

export interface Incident {
  id: string;
  title: string;
  severity: Severity;
  status: 'firing' | 'resolved';
  first_seen: string;
  detected_at: string;
  last_seen: string;
  actors: string[];
  targets: string[];
  members: string[];
  timeline: IncidentTimelineEntry[];
  evidence: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type AccessItem = Record<string, string | number | string[]> & {
  time: string;
  event_id: string;
  request_id: string;
  src_identity: string;
  dst_service: string;
  decision: string;
};

export interface AccessPage extends Page<AccessItem> {
  count?: number;
}

export const SERIES_COUNTERS = ['requests', 'denies', 'errors', 'tls_failures', 'plaintext', 'mtls_requests', 'bytes_out'] as const;
export type SeriesCounter = (typeof SERIES_COUNTERS)[number];

/** Which counter charts a detector's evidence (every detector; test/console/types.test.ts checks the names). */
export const COUNTER_OF: Readonly<Record<string, SeriesCounter>> = {
  deny_spike: 'denies',
  authz_deny_burst: 'denies',
  mtls_failure: 'tls_failures',
  plaintext: 'plaintext',
  volume: 'bytes_out',
  fanout: 'requests',
  new_edge: 'requests',
};

export interface Series {
  from: string;
  to: string;
  step_seconds: number;
  times: number[];
  values: Record<SeriesCounter, number[]>;
  baseline: Record<SeriesCounter, number> | null;
}
