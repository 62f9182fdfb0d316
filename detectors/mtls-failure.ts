// mtls_failure: TLS handshake failures per workload, as a client (its own certificate rejected,
// e.g. SSLV3_ALERT_CERTIFICATE_EXPIRED) or as a server (callers cannot verify it), with the reason
// class. Only events carrying a TLS failure reason count, so connection errors of a redeploy
// (connect refused, UF without a TLS reason) never do; a minimum count keeps sporadic failures quiet,
// and failures must persist over several buckets, so the blip of a certificate rotation (a few
// failures within seconds) is not an expiry.
import { Type } from '@sinclair/typebox';
import type { Severity } from '../core/anomaly.ts';
import { addDecayed, createDelayedSeries, evictIdle, readDecayed, type DecayedSum, type DelayedSeries } from './baseline.ts';
import { BUCKET_RANGE_SQL, raiseSeverity, roundNumber, type Candidate, type DetectorDefinition, type DetectorRunner, type DetectorDeclaration } from './detector.ts';
import { countValues, identitiesSeenOn, isAddress, pickRequestIds, sampleEvents } from './evidence.ts';

/** What mtls_failure is, besides its scoring: alert, runbook, docs and eval facts (DetectorDeclaration). */
export const MTLS_FAILURE: DetectorDeclaration = {
  name: 'mtls_failure',
  description: 'TLS handshake failures per workload, client and server side, with the reason class (expired, unknown CA, verify failed, no client cert)',
  mustNotFlag: 'single sporadic failures, non-TLS connection errors (connect refused during a redeploy)',
  explains: [],
  rollups: ['detector_tls_10s'],
  attackClasses: ['cert_expiry'],
  alert: {
    name: 'ZtwatchMtlsFailure',
    subject: 'edge',
    for: '30s',
    labels: { team: 'security' },
    summary: 'mTLS handshake failures: {{ $labels.subject }}',
    description:
      'Detector {{ $labels.detector }} sees TLS handshake failures for {{ $labels.subject }} (score {{ printf "%.2f" $value }}, severity {{ $labels.severity }}). Expired or rotated certificates, an unknown CA or a client without a certificate: either workload identity is broken or something is trying to talk to the mesh without one.',
  },
  runbook: {
    meaning:
      '`mtls_failure` saw TLS handshake failures for the subject workload above its baseline, with a reason class: expired certificate (`SSLV3_ALERT_CERTIFICATE_EXPIRED`), unknown CA (`TLSV1_ALERT_UNKNOWN_CA`), verification failed (`CERTIFICATE_VERIFY_FAILED`) or no client certificate. Single sporadic failures and plain connection errors (connect refused during a redeploy) do not fire it.',
    confirm: [
      "*ztwatch / SOC overview*: the TLS posture panels show the failures by reason for the workload; the anomaly's evidence names the dominant reason and both sides.",
      '*ztwatch / Service graph*: which callers of the workload are affected (one caller, or all).',
    ],
    firstActions: [
      "*Expired*: certificate rotation stopped. Check the SPIRE agent / istiod / Linkerd identity controller for the namespace and the workload's certificate expiry; restart the sidecar once the issuer is healthy.",
      "*Unknown CA*: trust bundles disagree (a root rotation half-done, a workload from another trust domain). Compare the caller's and the callee's roots.",
      '*No client certificate* from one source: something outside the mesh (no sidecar, a debug pod, an attacker with network access) is connecting to a STRICT port. Identify the source IP and workload.',
    ],
  },
};

export const MtlsFailureOptions = Type.Object(
  {
    /** Window length, in seconds; long enough for a low-rate workload to show a handful of failures. @default 300 */
    windowSeconds: Type.Integer({ minimum: 10, multipleOf: 10, default: 300 }),
    /** Fewest failures of one workload in a window before it is flagged. @default 5 */
    minFailures: Type.Integer({ minimum: 1, default: 5 }),
    /** Fewest distinct 10 s buckets holding those failures (persistence, not a blip). @default 3 */
    minBuckets: Type.Integer({ minimum: 1, default: 3 }),
    /** Failures must be at least this many times the workload's usual count. @default 4 */
    minRatio: Type.Number({ minimum: 1, default: 4 }),
    /** Half-life of the learned failure rate, in seconds. @default 21600 */
    halfLifeSeconds: Type.Integer({ minimum: 60, default: 21_600 }),
  },
  { additionalProperties: false },
);
type Options = typeof MtlsFailureOptions.static;

/** One rollup row: TLS failures between two peers in one 10 s bucket. */
export interface MtlsFailureRow {
  ts: number;
  src_key: string;
  dst_key: string;
  src_namespace: string;
  dst_namespace: string;
  side: 'client' | 'server';
  tls_failure: string;
  failures: number;
}

/** Reason classes, most specific first (normalized OpenSSL reasons and Envoy's SDS message). */
const REASON_CLASSES: ReadonlyArray<readonly [cls: string, pattern: RegExp]> = [
  ['expired', /EXPIRED/i],
  ['unknown_ca', /UNKNOWN_CA|UNABLE_TO_GET_ISSUER|SELF_SIGNED/i],
  ['no_client_cert', /PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|NO_CERTIFICATE/i],
  ['verify_failed', /VERIFY_FAILED|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|REVOKED|UNSUPPORTED_CERTIFICATE/i],
  ['protocol', /PROTOCOL_VERSION|NO_SHARED_CIPHER|NO_COMMON_SIGNATURE|WRONG_VERSION|TLSEXT|UNSUPPORTED_PROTOCOL/i],
  ['no_secret', /SECRET|SDS/i],
];

/** Maps a normalized TLS failure reason to its class: expired, unknown_ca, no_client_cert, verify_failed, protocol, no_secret or other. */
export function classifyTlsFailure(reason: string): string {
  for (const [cls, pattern] of REASON_CLASSES) if (pattern.test(reason)) return cls;
  return 'other';
}

const IDENTITY_CLASSES = new Set(['expired', 'unknown_ca', 'no_client_cert', 'verify_failed']);

interface WorkloadTally {
  workload: string;
  role: 'client' | 'server';
  namespace: string;
  failures: number;
  peers: Map<string, number>;
  reasons: Map<string, number>;
  reportedBy: Set<string>;
  /** Failures whose report puts the fault on the client's certificate (see faultsClient). */
  clientFaults: number;
  firstTs: number;
  buckets: Set<number>;
}

/**
 * Whether one reported failure puts the fault on the client's certificate. A TLS alert is what the
 * reporting end received from its peer: at the client, the server rejected the client's
 * certificate; at the server, the client rejected the server's. Any other failure is the reporting
 * end's own verdict: at the client, it could not verify the server; at the server, it could not
 * verify (or got no) client certificate.
 */
function faultsClient(side: 'client' | 'server', reason: string): boolean {
  const alertReceived = /ALERT/.test(reason);
  return side === 'client' ? alertReceived : !alertReceived;
}

interface WorkloadState {
  failures: DecayedSum;
  history: DelayedSeries;
  lastMs: number;
}

function tallyInto(map: Map<string, WorkloadTally>, role: 'client' | 'server', row: MtlsFailureRow): void {
  const workload = role === 'client' ? row.src_key : row.dst_key;
  const peer = role === 'client' ? row.dst_key : row.src_key;
  let tally = map.get(workload);
  if (!tally) {
    tally = { workload, role, namespace: '', failures: 0, peers: new Map(), reasons: new Map(), reportedBy: new Set(), clientFaults: 0, firstTs: Infinity, buckets: new Set() };
    map.set(workload, tally);
  }
  tally.failures += row.failures;
  tally.peers.set(peer, (tally.peers.get(peer) ?? 0) + row.failures);
  tally.reasons.set(row.tls_failure, (tally.reasons.get(row.tls_failure) ?? 0) + row.failures);
  tally.reportedBy.add(row.side);
  if (faultsClient(row.side, row.tls_failure)) tally.clientFaults += row.failures;
  const ns = role === 'client' ? row.src_namespace : row.dst_namespace;
  if (ns && !tally.namespace) tally.namespace = ns;
  if (row.ts < tally.firstTs) tally.firstTs = row.ts;
  tally.buckets.add(row.ts);
}

function topReasonClass(reasons: Map<string, number>): string {
  const byClass = new Map<string, number>();
  for (const [reason, n] of reasons) byClass.set(classifyTlsFailure(reason), (byClass.get(classifyTlsFailure(reason)) ?? 0) + n);
  return [...byClass].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'other';
}

/** Pure scoring of TLS handshake failures; exported for tests. */
export function createMtlsFailureRunner(options: Options, sensitiveNamespaces: ReadonlySet<string>, stepSeconds: number): DetectorRunner<MtlsFailureRow> {
  const halfLifeMs = options.halfLifeSeconds * 1000;
  // One window tally is added per step; a steady tally a decays to a / (1 − 2^(−step/halfLife)).
  const steadyFactor = 1 - Math.pow(0.5, stepSeconds / options.halfLifeSeconds);
  const states = new Map<string, WorkloadState>();
  let windowsSeen = 0;

  const isFlagged = (tally: WorkloadTally, endMs: number): boolean => {
    if (tally.failures < options.minFailures || tally.buckets.size < options.minBuckets) return false;
    const state = states.get(`${tally.role}:${tally.workload}`);
    // Usual failures per window: decayed total spread over the half-life's worth of windows.
    const usual = state ? readDecayed(state.failures, endMs, halfLifeMs) * steadyFactor : 0;
    const p99 = state && state.history.length >= 10 ? state.history.stats().p99 : 0;
    return tally.failures >= options.minRatio * Math.max(usual, p99, 1);
  };

  return {
    evaluate(window, rows) {
      const clients = new Map<string, WorkloadTally>();
      const servers = new Map<string, WorkloadTally>();
      for (const row of rows) {
        tallyInto(clients, 'client', row);
        tallyInto(servers, 'server', row);
      }
      const flaggedClients = new Map([...clients].filter(([, t]) => isFlagged(t, window.endMs)));
      const flaggedServers = new Map([...servers].filter(([, t]) => isFlagged(t, window.endMs)));
      // One broken certificate shows on both ends: keep the side with more distinct peers (the
      // workload whose identity is at fault). On a tie the reasons decide, read from the side that
      // reported them (faultsClient): a server that alone logs failed verifications of one caller
      // names that caller's certificate, not its own.
      const clientAtFault = (tally: WorkloadTally): boolean => tally.clientFaults * 2 >= tally.failures;
      const explainedBy = (tally: WorkloadTally, others: Map<string, WorkloadTally>): boolean => {
        for (const [peer, n] of tally.peers) {
          const other = others.get(peer);
          if (!other || n < 0.8 * tally.failures) continue;
          if (other.peers.size > tally.peers.size) return true;
          if (other.peers.size === tally.peers.size) {
            const client = tally.role === 'client' ? tally : other;
            if (clientAtFault(client) !== (tally.role === 'client')) return true;
          }
        }
        return false;
      };
      const kept = [
        ...[...flaggedClients.values()].filter((t) => !explainedBy(t, flaggedServers)),
        ...[...flaggedServers.values()].filter((t) => !explainedBy(t, flaggedClients)),
      ];
      const candidates = kept.map((tally): Candidate => {
        const state = states.get(`${tally.role}:${tally.workload}`);
        const usual = state ? readDecayed(state.failures, window.endMs, halfLifeMs) * steadyFactor : 0;
        const reasonClass = topReasonClass(tally.reasons);
        let severity: Severity = IDENTITY_CLASSES.has(reasonClass) ? 'high' : 'medium';
        if (sensitiveNamespaces.has(tally.namespace)) severity = raiseSeverity(severity);
        const peers = [...tally.peers].sort((a, b) => b[1] - a[1]);
        const onlyPeer = peers.length === 1 ? (peers[0]?.[0] ?? null) : null;
        const score = tally.failures / Math.max(usual, 1);
        return {
          subject: tally.workload,
          src: tally.role === 'client' ? tally.workload : onlyPeer,
          dst: tally.role === 'server' ? tally.workload : onlyPeer,
          severity,
          score: roundNumber(score),
          summary: `TLS handshakes of ${tally.workload} as ${tally.role} failing: ${tally.failures} failures (${reasonClass}) with ${peers.length} peer${peers.length === 1 ? '' : 's'} in ${options.windowSeconds} s, usually ${roundNumber(usual)}.`,
          evidence: {
            role: tally.role,
            reported_by: [...tally.reportedBy].sort(),
            reason_class: reasonClass,
            reasons: Object.fromEntries([...tally.reasons].sort((a, b) => b[1] - a[1]).slice(0, 5)),
            window_seconds: options.windowSeconds,
            failures: tally.failures,
            baseline_failures_per_window: roundNumber(usual),
            peers: Object.fromEntries(peers.slice(0, 10)),
            peer_count: peers.length,
            namespace: tally.namespace || null,
          },
          firstEvidenceMs: tally.firstTs * 1000,
        };
      });
      const flaggedKeys = new Set([...flaggedClients.keys()].map((k) => `client:${k}`).concat([...flaggedServers.keys()].map((k) => `server:${k}`)));
      for (const tally of [...clients.values(), ...servers.values()]) {
        const key = `${tally.role}:${tally.workload}`;
        if (flaggedKeys.has(key)) {
          states.get(key)?.history.discardPending();
          continue;
        }
        let state = states.get(key);
        if (!state) {
          state = { failures: { value: 0, atMs: 0 }, history: createDelayedSeries(720, 15), lastMs: 0 };
          states.set(key, state);
        }
        addDecayed(state.failures, tally.failures, window.endMs, halfLifeMs);
        state.history.push(tally.failures);
        state.lastMs = window.endMs;
      }
      if (++windowsSeen % 360 === 0) evictIdle(states, window.endMs, 8 * halfLifeMs);
      return candidates;
    },
  };
}

/** The mtls_failure detector. */
export const mtlsFailure: DetectorDefinition<MtlsFailureRow, typeof MtlsFailureOptions> = {
  ...MTLS_FAILURE,
  optionsSchema: MtlsFailureOptions,
  query: (database) => `
    SELECT toUInt32(ts) AS ts, src_key, dst_key, max(src_namespace) AS src_namespace, max(dst_namespace) AS dst_namespace,
           side, tls_failure, toFloat64(sum(failures)) AS failures
    FROM ${database}.detector_tls_10s
    WHERE ${BUCKET_RANGE_SQL}
    GROUP BY ts, src_key, dst_key, side, tls_failure`,
  windowSeconds: (options) => options.windowSeconds,
  createRunner: (options, context) => createMtlsFailureRunner(options, context.sensitiveNamespaces, context.stepSeconds),
  async sampleEvidence(store, candidate, window) {
    const role = (candidate.evidence.role as string | undefined) ?? 'client';
    const events = await sampleEvents(store, window, {
      src: role === 'client' ? candidate.subject : null,
      dst: role === 'server' ? candidate.subject : null,
      where: "tls_failure != ''",
    });
    // Servers see a client without a valid certificate only by its address: name the workload
    // seen on it (the incidents stage ties the two sides of one certificate together by it).
    const peers = candidate.evidence.peers;
    const addresses = [candidate.subject, ...(peers && typeof peers === 'object' && !Array.isArray(peers) ? Object.keys(peers) : [])].filter(isAddress);
    const ipIdentities = await identitiesSeenOn(store, addresses, window);
    return { sample_request_ids: pickRequestIds(events), statuses: countValues(events.map((e) => String(e.status))), ...(Object.keys(ipIdentities).length > 0 ? { address_identities: ipIdentities } : {}) };
  },
};
