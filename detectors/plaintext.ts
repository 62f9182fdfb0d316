// plaintext: requests reaching a service without mTLS where that service normally sees mTLS (its
// learned share of mTLS among requests whose transport is known) or is declared STRICT by config.
// Subject is the caller (identity, else IP) and the service, so each plaintext client is one anomaly.
// Plaintext health checks (kubelet probes through the sidecar, HEALTH_CHECK_PATH_REGEX) count as
// neither: on a quiet service they can outnumber its mTLS requests and would hide any other client.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, evictIdle, readDecayed, type DecayedSum } from './baseline.ts';
import { BUCKET_RANGE_SQL, formatEdgeSubject, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorRunner, type DetectorDeclaration } from './detector.ts';
import { HEALTH_CHECK_PATH_REGEX } from '../store/migrations/detectors.ts';
import { countValues, pickRequestIds, sampleEvents } from './evidence.ts';

/** What plaintext is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const PLAINTEXT: DetectorDeclaration = {
  name: 'plaintext',
  description: 'requests reaching a service without mTLS where it normally sees mTLS',
  mustNotFlag: '—',
  explains: [],
  rollups: ['detector_edge_10s'],
  attackClasses: ['plaintext_client'],
  alert: {
    name: 'ZtwatchPlaintextTraffic',
    subject: 'edge',
    for: '30s',
    labels: { team: 'security' },
    summary: 'Plaintext traffic: {{ $labels.subject }}',
    description:
      'Detector {{ $labels.detector }} sees requests without mTLS reaching {{ $labels.subject }}, which normally sees only mTLS or is declared STRICT (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}). A sidecar was bypassed, PeerAuthentication was relaxed, or a workload outside the mesh reached the service directly.',
  },
  runbook: {
    meaning:
      '`plaintext` saw requests without mTLS reaching a service that normally sees only mTLS or is declared STRICT. The subject names the edge (`source -> service`; the source can be an IP when there is no identity). Plaintext health checks (kubelet probes on `/healthz`, `/readyz`, `/livez`, `/app-health/…` and the like) are left out: they come from the node whenever probes are not rewritten.',
    confirm: [
      '*ztwatch / SOC overview*: the TLS posture panel shows the plaintext share for the service rise from zero.',
      '*ztwatch / Compliance access history*: filter by destination service; the plaintext rows carry no `src_identity`, only `src_ip` — list the distinct source addresses.',
    ],
    firstActions: [
      'Check the PeerAuthentication / Server policy of the namespace and the service: was STRICT relaxed to PERMISSIVE, or a port excluded from the sidecar?',
      'Map the source IPs to pods or nodes. A pod without a sidecar (injection disabled, host network) is a misconfiguration; an address outside the cluster reaching a pod directly is an incident.',
      'Restore STRICT and watch the plaintext share return to zero.',
    ],
  },
};

export const PlaintextOptions = Type.Object(
  {
    /** Window length, in seconds. @default 120 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 120 }),
    /** Fewest plaintext requests from one caller in a window before it is flagged. @default 2 */
    minRequests: Type.Integer({ minimum: 1, default: 2 }),
    /** A service "normally sees mTLS" when at least this share of its known-transport requests did. @default 0.99 */
    minBaselineMtlsShare: Type.Number({ minimum: 0, maximum: 1, default: 0.99 }),
    /** Known-transport requests a service needs in its baseline before it is judged. @default 100 */
    minBaselineRequests: Type.Integer({ minimum: 1, default: 100 }),
    /** Half-life of the learned mTLS share, in seconds. @default 86400 */
    halfLifeSeconds: Type.Integer({ minimum: 60, default: 86_400 }),
    /** Services declared STRICT (PeerAuthentication): any plaintext request to them is flagged. @default [] */
    strictServices: Type.Array(Type.String(), { default: [] }),
    /** Namespaces declared STRICT. @default [] */
    strictNamespaces: Type.Array(Type.String(), { default: [] }),
  },
  { additionalProperties: false },
);
type Options = typeof PlaintextOptions.static;

/** One rollup row: plaintext (health checks left out) and mTLS requests of one edge in one 10 s bucket. */
export interface PlaintextRow {
  ts: number;
  src_key: string;
  dst_key: string;
  dst_namespace: string;
  plaintext: number;
  mtls_requests: number;
}

interface ServiceState {
  mtls: DecayedSum;
  plaintext: DecayedSum;
  lastMs: number;
}

/** Pure scoring of plaintext traffic; exported for tests. */
export function createPlaintextRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>): DetectorRunner<PlaintextRow> {
  const halfLifeMs = options.halfLifeSeconds * 1000;
  const strictServices = new Set(options.strictServices);
  const strictNamespaces = new Set(options.strictNamespaces);
  const services = new Map<string, ServiceState>();
  let windowsSeen = 0;

  return {
    evaluate(window, rows) {
      const perService = new Map<string, { mtls: number; plaintext: number; namespace: string }>();
      const perEdge = new Map<string, { src: string; dst: string; plaintext: number; firstTs: number }>();
      for (const row of rows) {
        let svc = perService.get(row.dst_key);
        if (!svc) {
          svc = { mtls: 0, plaintext: 0, namespace: row.dst_namespace };
          perService.set(row.dst_key, svc);
        }
        svc.mtls += row.mtls_requests;
        svc.plaintext += row.plaintext;
        if (!svc.namespace && row.dst_namespace) svc.namespace = row.dst_namespace;
        if (row.plaintext > 0) {
          const key = `${row.src_key}\u0000${row.dst_key}`;
          const edge = perEdge.get(key) ?? { src: row.src_key, dst: row.dst_key, plaintext: 0, firstTs: row.ts };
          edge.plaintext += row.plaintext;
          edge.firstTs = Math.min(edge.firstTs, row.ts);
          perEdge.set(key, edge);
        }
      }
      const candidates: Candidate[] = [];
      const flaggedServices = new Set<string>();
      for (const edge of perEdge.values()) {
        if (edge.plaintext < options.minRequests) continue;
        const svc = perService.get(edge.dst);
        const namespace = svc?.namespace ?? '';
        const strict = strictServices.has(edge.dst) || strictNamespaces.has(namespace);
        const state = services.get(edge.dst);
        const mtls = state ? readDecayed(state.mtls, window.endMs, halfLifeMs) : 0;
        const plain = state ? readDecayed(state.plaintext, window.endMs, halfLifeMs) : 0;
        const share = mtls + plain > 0 ? mtls / (mtls + plain) : 0;
        const normallyMtls = mtls + plain >= options.minBaselineRequests && share >= options.minBaselineMtlsShare;
        if (!strict && !normallyMtls) continue;
        flaggedServices.add(edge.dst);
        let severity: Severity = 'high';
        if (sensitiveNamespaces.has(namespace)) severity = raiseSeverity(severity);
        const why = strict ? 'declared STRICT' : `${roundNumber(share * 100)}% mTLS in its baseline`;
        candidates.push({
          subject: formatEdgeSubject(edge.src, edge.dst),
          src: edge.src,
          dst: edge.dst,
          severity,
          score: edge.plaintext,
          summary: `${edge.plaintext} plaintext requests from ${edge.src} reached ${edge.dst} in ${options.windowSeconds} s, a service with ${why}.`,
          evidence: {
            window_seconds: options.windowSeconds,
            plaintext_requests: edge.plaintext,
            service_mtls_requests: svc?.mtls ?? 0,
            baseline_mtls_share: roundNumber(share),
            baseline_requests: roundNumber(mtls + plain),
            declared_strict: strict,
            namespace: namespace || null,
          },
          firstEvidenceMs: edge.firstTs * 1000,
        });
      }
      for (const [dst, svc] of perService) {
        if (flaggedServices.has(dst) || svc.mtls + svc.plaintext === 0) continue;
        let state = services.get(dst);
        if (!state) {
          state = { mtls: { value: 0, atMs: 0 }, plaintext: { value: 0, atMs: 0 }, lastMs: 0 };
          services.set(dst, state);
        }
        addDecayed(state.mtls, svc.mtls, window.endMs, halfLifeMs);
        addDecayed(state.plaintext, svc.plaintext, window.endMs, halfLifeMs);
        state.lastMs = window.endMs;
      }
      if (++windowsSeen % 360 === 0) evictIdle(services, window.endMs, 8 * halfLifeMs);
      return candidates;
    },
  };
}

/** The plaintext detector. */
export const plaintext: DetectorDefinition<PlaintextRow, typeof PlaintextOptions> = {
  ...PLAINTEXT,
  optionsSchema: PlaintextOptions,
  query: (database) => `
    SELECT toUInt32(ts) AS ts, src_key, dst_key, max(dst_namespace) AS dst_namespace,
           toFloat64(sum(plaintext) - sum(plaintext_health_checks)) AS plaintext, toFloat64(sum(mtls_requests)) AS mtls_requests
    FROM ${database}.detector_edge_10s
    WHERE ${BUCKET_RANGE_SQL}
    GROUP BY ts, src_key, dst_key
    HAVING plaintext > 0 OR mtls_requests > 0`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createPlaintextRunner(options, context.sensitiveNamespaces),
  async sampleEvidence(store, candidate, window) {
    const events = await sampleEvents(store, window, { src: candidate.src, dst: candidate.dst, where: `mtls = 'no' AND NOT match(path, '${HEALTH_CHECK_PATH_REGEX}')` });
    return {
      sample_request_ids: pickRequestIds(events),
      source_ips: countValues(events.map((e) => e.src_ip)),
      paths: countValues(events.map((e) => `${e.method} ${e.path}`.trim())),
    };
  },
};
