// STRICT readiness: per namespace, service and port, the share of requests that arrived over mTLS,
// the plaintext senders still there, a verdict, and the PeerAuthentication manifests that switch
// the ready ones to STRICT (namespace-wide when every port of the namespace is ready).
import { stringify } from 'yaml';
import type { MtlsPortRow, PlaintextSenderRow } from '../store/posture-queries.ts';

export interface MtlsSender {
  readonly sender: string;
  readonly requests: number;
  readonly lastSeen: string;
}

export interface MtlsPortReadiness {
  readonly namespace: string;
  readonly service: string;
  readonly port: number;
  readonly mtlsRequests: number;
  readonly plaintextRequests: number;
  readonly unknownRequests: number;
  /** mTLS requests / requests with a known TLS state; null when none is known. */
  readonly mtlsShare: number | null;
  readonly verdict: 'ready' | 'blocked' | 'no-data';
  /** One sentence: "ready for STRICT", "blocked by 2 plaintext senders", … */
  readonly summary: string;
  readonly senders: readonly MtlsSender[];
}

export interface MtlsReport {
  readonly ports: readonly MtlsPortReadiness[];
  /** PeerAuthentication documents for what is ready (multi-document YAML). */
  readonly manifest: string;
  readonly ready: number;
  readonly blocked: number;
}

/** Readiness per port and the manifests to apply, from the store's mTLS counts. */
export function buildMtlsReport(ports: readonly MtlsPortRow[], senders: readonly PlaintextSenderRow[]): MtlsReport {
  const sendersByPort = new Map<string, MtlsSender[]>();
  for (const s of senders) {
    const key = `${s.dst_namespace}/${s.dst_service}/${s.dst_port}`;
    const list = sendersByPort.get(key) ?? [];
    list.push({ sender: s.sender, requests: s.requests, lastSeen: new Date(s.last_seen_ms).toISOString() });
    sendersByPort.set(key, list);
  }
  const out: MtlsPortReadiness[] = ports.map((p) => {
    const known = p.mtls_requests + p.plaintext_requests;
    const list = sendersByPort.get(`${p.dst_namespace}/${p.dst_service}/${p.dst_port}`) ?? [];
    const verdict = p.plaintext_requests > 0 ? 'blocked' : p.mtls_requests > 0 ? 'ready' : 'no-data';
    const summary =
      verdict === 'ready'
        ? 'ready for STRICT'
        : verdict === 'blocked'
          ? `blocked by ${list.length} plaintext sender${list.length === 1 ? '' : 's'}`
          : 'no request with a known TLS state';
    return {
      namespace: p.dst_namespace,
      service: p.dst_service,
      port: p.dst_port,
      mtlsRequests: p.mtls_requests,
      plaintextRequests: p.plaintext_requests,
      unknownRequests: p.unknown_requests,
      mtlsShare: known === 0 ? null : p.mtls_requests / known,
      verdict,
      summary,
      senders: list,
    };
  });
  return { ports: out, manifest: buildStrictManifest(out), ready: out.filter((p) => p.verdict === 'ready').length, blocked: out.filter((p) => p.verdict === 'blocked').length };
}

/**
 * PeerAuthentication for the ready part: STRICT for a whole namespace when all its ports are
 * ready; otherwise per workload (selector app=<service>), STRICT when all its ports are ready, or
 * PERMISSIVE with port-level STRICT for the ready ports. Blocked-only workloads get nothing.
 */
export function buildStrictManifest(ports: readonly MtlsPortReadiness[]): string {
  const byNamespace = new Map<string, MtlsPortReadiness[]>();
  for (const p of ports) {
    if (p.verdict === 'no-data') continue;
    const list = byNamespace.get(p.namespace) ?? [];
    list.push(p);
    byNamespace.set(p.namespace, list);
  }
  const docs: object[] = [];
  for (const [namespace, list] of [...byNamespace].sort(([a], [b]) => a.localeCompare(b))) {
    if (!namespace) continue;
    if (list.every((p) => p.verdict === 'ready')) {
      docs.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace }, spec: { mtls: { mode: 'STRICT' } } });
      continue;
    }
    const byService = new Map<string, MtlsPortReadiness[]>();
    for (const p of list) byService.set(p.service, [...(byService.get(p.service) ?? []), p]);
    for (const [service, sp] of [...byService].sort(([a], [b]) => a.localeCompare(b))) {
      const ready = sp.filter((p) => p.verdict === 'ready');
      if (ready.length === 0) continue;
      const metadata = { name: `${service}-strict`, namespace };
      const selector = { matchLabels: { app: service } };
      if (ready.length === sp.length) docs.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata, spec: { selector, mtls: { mode: 'STRICT' } } });
      else {
        docs.push({
          apiVersion: 'security.istio.io/v1',
          kind: 'PeerAuthentication',
          metadata,
          spec: { selector, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: Object.fromEntries(ready.map((p) => [String(p.port), { mode: 'STRICT' }])) },
        });
      }
    }
  }
  return docs.map((d) => stringify(d)).join('---\n');
}
