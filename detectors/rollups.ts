// The 10-second rollups detectors read (materialized views of store/migrations/detectors.ts), each
// described once. A detector names the ones it reads (`rollups` in its declaration); the engine
// scans those for data and for the live watermark, and the docs table of rollups is generated from
// here and from the declarations (alerts/generate.ts).

/** One rollup table. */
export interface RollupDeclaration {
  /** What one row holds, for the docs table ("one row per 10 s bucket and …"). */
  readonly row: string;
  /**
   * SQL (over the table, as an aggregate) giving the newest event time it saw, in ms as Float64.
   * @default the end of its newest bucket
   */
  readonly newestEventMsSql?: string;
}

const DECLARED = {
  detector_edge_10s: {
    row:
      'source key (identity, else IP), destination key (service, else IP), destination port, reporting source (envoy, opa, hubble, …): requests, denies, errors, TLS failures, plaintext and mTLS requests, plaintext health checks (kubelet probe paths), bytes in/out, newest event time',
    // The edge rollup keeps the exact newest event time; the others only their bucket.
    newestEventMsSql: 'toFloat64(toUnixTimestamp64Milli(max(max_time)))',
  },
  detector_tls_10s: {
    row: 'source, destination, side (client = reported by the caller\'s proxy, server = by the callee\'s), TLS failure reason: failures',
  },
  detector_authz_10s: {
    row: 'principal, destination, and for denials the method, action path (route template) and policy: policy-engine decisions and denials (OPA decision logs, `reporter = authz`)',
  },
} as const satisfies Record<string, RollupDeclaration>;

/** Name of a detector rollup table. */
export type RollupName = keyof typeof DECLARED;

/** Every detector rollup, by table name. */
export const DETECTOR_ROLLUPS: Readonly<Record<RollupName, RollupDeclaration>> = DECLARED;
