// Identity and naming helpers shared by every parser: SPIFFE IDs, Kubernetes service-account
// names, service hosts, Istio cluster names and SNI, pod → workload names, XFCC headers.
// One canonical form per identity lets the store join events from different sources.
import { createStringMemo } from './parsers/string-memo.ts';

/** Trust domain assumed when a source names a Kubernetes service account without one. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const SPIFFE_PREFIX = 'spiffe://';
const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/** The parts of a workload SPIFFE ID `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export interface SpiffeParts {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Builds `spiffe://<td>/ns/<ns>/sa/<sa>`; '' when namespace or service account is missing. */
export function buildSpiffeId(namespace: string, serviceAccount: string, trustDomain = DEFAULT_TRUST_DOMAIN): string {
  if (namespace === '' || serviceAccount === '') return '';
  return `${SPIFFE_PREFIX}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

// Identities repeat on every line of a workload: remember recent parses.
const spiffeCache = createStringMemo<SpiffeParts | null>(2048);

/** Splits an Istio/Kubernetes-style SPIFFE ID; undefined for other URIs (or non-workload paths). */
export function parseSpiffeId(uri: string): SpiffeParts | undefined {
  if (!uri.startsWith(SPIFFE_PREFIX) || uri.length > 2048) return undefined;
  const cached = spiffeCache.get(uri);
  if (cached !== undefined) return cached ?? undefined;
  const parts = splitSpiffeId(uri);
  spiffeCache.set(uri, parts === undefined ? null : Object.freeze(parts));
  return parts;
}

function splitSpiffeId(uri: string): SpiffeParts | undefined {
  const slash = uri.indexOf('/', SPIFFE_PREFIX.length);
  if (slash < 0) return undefined;
  const trustDomain = uri.slice(SPIFFE_PREFIX.length, slash);
  if (!uri.startsWith('/ns/', slash)) return undefined;
  const nsStart = slash + 4;
  const saMark = uri.indexOf('/sa/', nsStart);
  if (saMark < 0) return undefined;
  const namespace = uri.slice(nsStart, saMark);
  let serviceAccount = uri.slice(saMark + 4);
  const tail = serviceAccount.indexOf('/');
  if (tail >= 0) serviceAccount = serviceAccount.slice(0, tail);
  if (trustDomain === '' || namespace === '' || serviceAccount === '' || namespace.indexOf('/') >= 0) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

/** The namespace of a workload SPIFFE ID, '' otherwise. */
export function namespaceOfSpiffe(uri: string): string {
  return parseSpiffeId(uri)?.namespace ?? '';
}

/** The service account of a workload SPIFFE ID, '' otherwise. */
export function serviceAccountOfSpiffe(uri: string): string {
  return parseSpiffeId(uri)?.serviceAccount ?? '';
}

/**
 * Canonical identity: a SPIFFE URI is kept (the first one of a comma-separated SAN list),
 * `system:serviceaccount:NS:SA` becomes `spiffe://<td>/ns/NS/sa/SA`, other names (users,
 * e-mails) are kept trimmed; `-`, '' and `unknown` are none ('').
 */
export function canonicalizeIdentity(value: string, trustDomain = DEFAULT_TRUST_DOMAIN): string {
  const text = value.trim();
  if (text === '' || text === '-' || text === 'unknown') return '';
  if (text.startsWith(SPIFFE_PREFIX)) {
    const comma = text.indexOf(',');
    return comma < 0 ? text : text.slice(0, comma).trim();
  }
  if (text.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    const rest = text.slice(SERVICE_ACCOUNT_PREFIX.length);
    const colon = rest.indexOf(':');
    if (colon > 0 && colon < rest.length - 1 && rest.indexOf(':', colon + 1) < 0) {
      return buildSpiffeId(rest.slice(0, colon), rest.slice(colon + 1), trustDomain);
    }
    return text;
  }
  // A SAN list may put a DNS name first and the SPIFFE URI later.
  const spiffe = text.indexOf(SPIFFE_PREFIX);
  if (spiffe > 0 && text.charCodeAt(spiffe - 1) === 44 /* , */) return canonicalizeIdentity(text.slice(spiffe), trustDomain);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Service hosts, Istio cluster names and SNI

function stripPort(host: string): string {
  if (host.charCodeAt(0) === 91 /* [ */) return host;
  const colon = host.lastIndexOf(':');
  if (colon < 0 || host.indexOf(':') !== colon) return host;
  for (let i = colon + 1; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return host;
  }
  return host.slice(0, colon);
}

function isAddressLiteral(host: string): boolean {
  if (host.charCodeAt(0) === 91 || host.indexOf(':') >= 0) return true;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c !== 46 && (c < 48 || c > 57)) return false;
  }
  return true;
}

/** The host name of a service host with port and wildcard removed; '' for IP literals and `-`. */
function cleanHost(host: string): string {
  if (host === '' || host === '-') return '';
  let h = stripPort(host);
  if (h.startsWith('*.')) h = h.slice(2);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h === '' || isAddressLiteral(h) ? '' : h;
}

/**
 * Short service name of a host: `reviews.default.svc.cluster.local:9080` and `reviews:9080`
 * give `reviews`; other names (external hosts, `name.ns` shorthands) are kept whole without the
 * port; IP literals give ''.
 */
export function serviceOfHost(host: string): string {
  const h = cleanHost(host);
  const dot = h.indexOf('.');
  if (dot < 0) return h;
  const second = h.indexOf('.', dot + 1);
  if (second > 0 && h.startsWith('svc', second + 1) && (h.length === second + 4 || h.charCodeAt(second + 4) === 46)) {
    return h.slice(0, dot);
  }
  return h;
}

/** Namespace of a Kubernetes service host (`reviews.default.svc…` → `default`); '' otherwise. */
export function namespaceOfHost(host: string): string {
  const h = cleanHost(host);
  const dot = h.indexOf('.');
  if (dot < 0) return '';
  const second = h.indexOf('.', dot + 1);
  if (second > 0 && h.startsWith('svc', second + 1) && (h.length === second + 4 || h.charCodeAt(second + 4) === 46)) {
    return h.slice(dot + 1, second);
  }
  return '';
}

/** Direction in an Istio cluster name: `inbound|…`, `outbound|…`, or '' for other clusters. */
export function directionOfCluster(cluster: string): 'inbound' | 'outbound' | '' {
  if (cluster.startsWith('outbound|')) return 'outbound';
  if (cluster.startsWith('inbound|') || cluster.startsWith('InboundPassthroughCluster')) return 'inbound';
  if (cluster === 'PassthroughCluster' || cluster === 'BlackHoleCluster') return 'outbound';
  return '';
}

/**
 * The service host in an Istio cluster name (`outbound|9080|v1|reviews.default.svc.cluster.local`
 * → `reviews.default.svc.cluster.local`); '' for `inbound|8000||` and non-Istio names.
 */
export function hostOfCluster(cluster: string): string {
  if (!cluster.startsWith('outbound|') && !cluster.startsWith('inbound|')) return '';
  const last = cluster.lastIndexOf('|');
  return last < 0 ? '' : cluster.slice(last + 1);
}

/** The port in an Istio cluster name (`outbound|9080||…` → 9080); 0 when absent. */
export function portOfCluster(cluster: string): number {
  const first = cluster.indexOf('|');
  if (first < 0) return 0;
  let n = 0;
  for (let i = first + 1; i < cluster.length && i < first + 7; i++) {
    const c = cluster.charCodeAt(i);
    if (c === 124 /* | */) return n <= 65535 ? n : 0;
    if (c < 48 || c > 57) return 0;
    n = n * 10 + (c - 48);
  }
  return 0;
}

/**
 * The service host in Istio's mTLS SNI `outbound_.8000_._.httpbin.foo.svc.cluster.local` (the
 * requested server name on an inbound sidecar listener); '' for any other SNI.
 */
export function hostOfIstioSni(sni: string): string {
  if (!sni.startsWith('outbound_.')) return '';
  const afterPort = sni.indexOf('_.', 10);
  if (afterPort < 0) return '';
  const afterSubset = sni.indexOf('_.', afterPort + 2);
  return afterSubset < 0 ? '' : sni.slice(afterSubset + 2);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes workload names

// Kubernetes' generated-name alphabet (no vowels, no 0/1/3), used for ReplicaSet hashes and pod suffixes.
function isGeneratedChar(c: number): boolean {
  if (c >= 50 && c <= 57) return c !== 51; // 2 4 5 6 7 8 9
  switch (c) {
    case 98: case 99: case 100: case 102: case 103: case 104: case 106: case 107: case 108:
    case 109: case 110: case 112: case 113: case 114: case 115: case 116: case 118: case 119:
    case 120: case 122:
      return true;
    default:
      return false;
  }
}

function isGeneratedSegment(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isGeneratedChar(text.charCodeAt(i))) return false;
  return true;
}

/**
 * The workload (Deployment / DaemonSet) name behind a pod name: drops the random 5-character pod
 * suffix and a ReplicaSet hash before it (`reviews-v1-545db77b95-s6jb8` → `reviews-v1`,
 * `node-local-dns-r99x7` → `node-local-dns`). Names without generated parts are kept.
 */
export function workloadOfPod(pod: string): string {
  const last = pod.lastIndexOf('-');
  if (last <= 0 || pod.length - last - 1 !== 5 || !isGeneratedSegment(pod, last + 1, pod.length)) return pod;
  const base = pod.slice(0, last);
  const prev = base.lastIndexOf('-');
  const hashLength = base.length - prev - 1;
  if (prev > 0 && hashLength >= 6 && hashLength <= 10 && isGeneratedSegment(base, prev + 1, base.length)) {
    return base.slice(0, prev);
  }
  return base;
}

// ---------------------------------------------------------------------------------------------
// x-forwarded-client-cert

/**
 * The `URI=` (client) and `By=` (server) SPIFFE IDs of the last element of an Envoy
 * `x-forwarded-client-cert` header, i.e. the hop that reached the policy check. '' when absent.
 */
export function parseXfcc(header: string): { uri: string; by: string } {
  if (header === '' || header.length > 16_384) return { uri: '', by: '' };
  // Elements are comma-separated, but a quoted Subject may hold commas: find the last unquoted one.
  let start = 0;
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header.charCodeAt(i);
    if (c === 34) quoted = !quoted;
    else if (c === 44 && !quoted) start = i + 1;
  }
  let uri = '';
  let by = '';
  for (const pair of header.slice(start).split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const value = pair.slice(eq + 1).trim().replace(/^"|"$/g, '');
    if (key === 'uri' && uri === '') uri = value;
    else if (key === 'by' && by === '') by = value;
  }
  return { uri, by };
}
