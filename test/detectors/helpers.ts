// Test helper for detectors: hand-made traffic as normalized events, run through the real store
// (rollups by materialized views) and the real engine, in replay mode.
import type { Anomaly } from '../../core/anomaly.ts';
import { createEmptyEvent, type NormalizedEvent, type Source } from '../../core/event.ts';
import { createMetrics, type Metrics } from '../../core/metrics.ts';
import type { FrozenConfig } from '../../core/config.ts';
import { createDetectorEngine, type AnomalyChange } from '../../detectors/engine.ts';
import type { Store } from '../../store/client.ts';
import { createRandom } from '../../ingest/simulate/prng.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

/** Start of every hand-made trace: a Monday morning, minute-aligned. */
export const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
export const MINUTE = 60_000;

/** `spiffe://cluster.local/ns/<ns>/sa/<sa>`. */
export function spiffe(namespace: string, serviceAccount: string): string {
  return `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;
}

export interface TrafficSpec {
  src: string;
  dst: string;
  dstNamespace?: string;
  /** The callee's identity (SPIFFE), as an inbound sidecar logs it. @default '' */
  dstIdentity?: string;
  fromMs: number;
  toMs: number;
  perMinute: number;
  /** Share of requests denied (deterministic spread, not random). @default 0 */
  denyRatio?: number;
  bytesOut?: number;
  /** Log-normal spread of bytesOut per request (sigma). @default 0.3 */
  bytesSigma?: number;
  mtls?: 'yes' | 'no' | 'unknown';
  srcIp?: string;
  reporter?: NormalizedEvent['reporter'];
  source?: Source;
  tlsFailure?: string;
  status?: number;
  decision?: NormalizedEvent['decision'];
  decisionReason?: string;
  dstPort?: number;
  method?: string;
  path?: string;
  responseFlags?: string[];
  seed?: number;
}

let counter = 0;

/** Evenly spaced requests with a little jitter, deterministic per seed. */
export function makeTraffic(spec: TrafficSpec): NormalizedEvent[] {
  const random = createRandom(spec.seed ?? 42);
  const events: NormalizedEvent[] = [];
  const gapMs = MINUTE / spec.perMinute;
  const denyEvery = spec.denyRatio ? 1 / spec.denyRatio : Infinity;
  let i = 0;
  for (let t = spec.fromMs; t < spec.toMs; t += gapMs, i++) {
    const denied = denyEvery !== Infinity && Math.floor((i + 1) / denyEvery) > Math.floor(i / denyEvery);
    const decision = spec.decision ?? (denied ? 'deny' : 'allow');
    events.push({
      ...createEmptyEvent(spec.source ?? 'envoy', T0),
      event_id: `e${++counter}`,
      time: Math.floor(t + random.next() * gapMs * 0.5),
      reporter: spec.reporter ?? 'inbound',
      src_identity: spec.src.startsWith('spiffe://') || spec.src.includes('@') ? spec.src : '',
      src_ip: spec.srcIp ?? (spec.src.startsWith('spiffe://') || spec.src.includes('@') ? '10.1.0.1' : spec.src),
      src_namespace: spec.src.startsWith('spiffe://') ? (spec.src.split('/')[4] ?? '') : '',
      dst_service: spec.dst,
      dst_identity: spec.dstIdentity ?? '',
      dst_namespace: spec.dstNamespace ?? 'shop',
      dst_port: spec.dstPort ?? 8080,
      method: spec.method ?? 'GET',
      path: spec.path ?? `/api/${spec.dst}/items`,
      route: spec.path ?? `/api/${spec.dst}/items`,
      status: spec.status ?? (decision === 'deny' ? 403 : 200),
      decision,
      decision_reason: spec.decisionReason ?? (decision === 'deny' ? 'ns[shop]-policy[test]-rule[0]' : ''),
      response_flags: spec.responseFlags ?? [],
      mtls: spec.mtls ?? 'yes',
      tls_failure: spec.tlsFailure ?? '',
      bytes_in: 200,
      bytes_out: Math.round((spec.bytesOut ?? 2000) * Math.exp((spec.bytesSigma ?? 0.3) * (random.next() * 2 - 1))),
      request_id: `req-${counter}`,
    });
  }
  return events;
}

export interface DetectorRun {
  /** Every anomaly in its final state. */
  anomalies: Anomaly[];
  changes: Array<{ anomaly: Anomaly; change: AnomalyChange }>;
  metrics: Metrics;
  store: Store;
  config: FrozenConfig;
}

/** Stores `events` in a fresh test database and replays the detectors over them to the last event. */
export async function runDetectors(events: NormalizedEvent[], detectors: Record<string, unknown> = {}, keepStore = false): Promise<DetectorRun> {
  const config = createTestConfig({ clickhouse: { retentionDays: 20_000, anomalyRetentionDays: 20_000 }, detectors });
  const store = await createTestStore(config);
  const sorted = [...events].sort((a, b) => a.time - b.time);
  for (let i = 0; i < sorted.length; i += 20_000) await store.insertEvents(sorted.slice(i, i + 20_000));
  const metrics = createMetrics();
  const changes: DetectorRun['changes'] = [];
  const latest = new Map<string, Anomaly>();
  const engine = createDetectorEngine({
    store,
    metrics,
    config,
    onAnomaly: (anomaly, change) => {
      changes.push({ anomaly, change });
      latest.set(anomaly.id, anomaly);
    },
  });
  const last = sorted[sorted.length - 1]?.time ?? T0;
  await engine.finish(last);
  if (!keepStore) await dropTestStore(store);
  return { anomalies: [...latest.values()], changes, metrics, store, config };
}

/** Anomalies of one detector with severity above info. */
export function alerting(anomalies: readonly Anomaly[], detector: string): Anomaly[] {
  return anomalies.filter((a) => a.detector === detector && a.severity !== 'info');
}
