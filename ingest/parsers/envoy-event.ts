// What Envoy and Istio access logs say, whatever their encoding: the text and JSON readers fill an
// `EnvoyFields` record, and `buildEnvoyEvent` turns it into a normalized event — identities,
// service names, mTLS state, TLS failure and decision — in one place.
import { DECISIONS, MTLS_STATES, REPORTERS, type NormalizedEvent, type ParseResult, type Source } from '../../core/event.ts';
import {
  canonicalizeIdentity,
  directionOfCluster,
  hostOfCluster,
  hostOfIstioSni,
  namespaceOfHost,
  parseSpiffeId,
  serviceOfHost,
} from '../identity.ts';
import { templateRoute } from '../../core/route.ts';
import { addressHost, addressPort } from './addresses.ts';
import { hasPrefix, readPort, readText, truncateText } from './read-values.ts';
import { createStringMemo } from './string-memo.ts';
import { parseTimestampMs } from './timestamps.ts';
import { normalizeTlsFailure } from './tls-failures.ts';
import { MAX_DECISION_REASON_CHARS, decideEnvoy } from './envoy-decision.ts';
import { flagSetOf } from './envoy-flags.ts';
import type { EnvoyFields } from './envoy-record.ts';

/**
 * Index of the `:` before the port in a plain `host:port` (the common case, found without a search
 * over the whole string), or -1 when the address is spelled otherwise (see hostOfAddress).
 */
function portColonOf(address: string): number {
  // Digits after the last `:`, read backwards (at most 5).
  const len = address.length;
  let port = 0;
  let scale = 1;
  let i = len - 1;
  for (; i >= 0 && len - i <= 6; i--) {
    const c = address.charCodeAt(i);
    if (c === 58 /* : */) break;
    if (c < 48 || c > 57) return -1;
    port += (c - 48) * scale;
    scale *= 10;
  }
  // A plain host has no other `:` (IPv6 comes bracketed, or without a port) and no `[`.
  return i > 0 && i < len - 1 && address.charCodeAt(i) === 58 && port <= 65535 && address.indexOf(':') === i && address.charCodeAt(0) !== 91 /* [ */ ? i : -1;
}

/** Host part of an address whose port colon is at `colon` (other spellings through addresses.ts). */
function hostOfAddress(address: string, colon: number): string {
  return colon >= 0 ? address.slice(0, colon) : addressHost(address);
}

/** Port of an address whose port colon is at `colon` (other spellings through addresses.ts). */
function portOfAddress(address: string, colon: number): number {
  if (colon < 0) return addressPort(address);
  let port = 0;
  for (let i = colon + 1; i < address.length; i++) port = port * 10 + (address.charCodeAt(i) - 48);
  return port;
}

function isLoopback(address: string): boolean {
  const c = address.charCodeAt(0);
  if (c === 49 /* 1 */) return address.charCodeAt(1) === 50 && address.charCodeAt(2) === 55 && address.charCodeAt(3) === 46; // 127.
  return (c === 91 /* [ */ || c === 58 /* : */) && (address.startsWith('[::1]') || address.startsWith('::1'));
}

function firstTlsFailure(f: EnvoyFields): string {
  if (f.downstreamFailure === '' && f.upstreamFailure === '' && f.termDetails === '' && (f.details === '' || f.details === 'via_upstream')) return '';
  let reason = normalizeTlsFailure(f.downstreamFailure);
  if (reason === '') reason = normalizeTlsFailure(f.upstreamFailure);
  if (reason === '' && f.details.indexOf('TLS') >= 0) reason = normalizeTlsFailure(f.details);
  if (reason === '' && f.termDetails.indexOf('TLS') >= 0) reason = normalizeTlsFailure(f.termDetails);
  return reason;
}

/** The server side of a record, as the cluster name, Istio SNI or authority tell it. */
interface ServerSide {
  readonly reporter: 'inbound' | 'outbound' | 'unknown';
  readonly service: string;
  readonly namespace: string;
}

/**
 * Memo of cluster/SNI/authority → server side. Those strings repeat across lines (one per
 * service), so deriving them once keeps string slicing off the per-line path.
 */
const serverCache = createStringMemo<ServerSide>(4096);

function deriveServer(cluster: string, sni: string, authority: string): ServerSide {
  const direction = directionOfCluster(cluster);
  // The outbound cluster names the server; on an inbound listener Istio's mTLS SNI does, else the
  // inbound cluster when it carries the service host (`inbound|8080||checkout.shop.svc.cluster.local`).
  let host = direction === 'inbound' ? hostOfIstioSni(sni) : hostOfCluster(cluster);
  if (host === '' && direction === 'inbound') host = hostOfCluster(cluster);
  if (host === '') host = authority;
  return { reporter: direction === '' ? 'unknown' : direction, service: serviceOfHost(host), namespace: namespaceOfHost(host) };
}

function serverOf(cluster: string, sni: string, authority: string): ServerSide {
  // The memo key is the one input that names the server: Istio's SNI on inbound lines, the
  // cluster on outbound lines, else cluster and authority together. Character checks stand in
  // for startsWith: this runs on every line.
  let key: string;
  if (cluster.charCodeAt(7) === 124 /* inbound| */ && cluster.charCodeAt(0) === 105 && sni.charCodeAt(8) === 95 /* outbound_. */ && sni.charCodeAt(0) === 111) {
    key = sni;
  } else if (cluster.charCodeAt(8) === 124 /* outbound| */ && cluster.charCodeAt(0) === 111) {
    key = cluster;
  } else {
    key = `${cluster}\u0000${authority}`;
  }
  let server = serverCache.get(key);
  if (server === undefined) {
    server = deriveServer(cluster, sni, authority);
    serverCache.set(key, server);
  }
  return server;
}

/** A peer certificate's URI SAN, canonicalized, with the namespace and service account it names. */
interface Peer {
  readonly identity: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

const NO_PEER: Peer = { identity: '', namespace: '', serviceAccount: '' };
// Peers repeat on every line of a workload: canonicalize each SAN once.
const peerCache = createStringMemo<Peer>(4096);

function peerOf(san: string): Peer {
  if (san === '') return NO_PEER;
  let peer = peerCache.get(san);
  if (peer === undefined) {
    const identity = canonicalizeIdentity(san);
    const spiffe = parseSpiffeId(identity);
    peer = { identity, namespace: spiffe?.namespace ?? '', serviceAccount: spiffe?.serviceAccount ?? '' };
    peerCache.set(san, peer);
  }
  return peer;
}

/**
 * Builds the normalized event from one record's fields, or the rejection reason. `raw` is the
 * record text as received. Never throws. (One object literal in schema order: the same shape as
 * createEmptyEvent, without writing every field twice on the hot path.)
 */
export function buildEnvoyEvent(f: EnvoyFields, raw: string, observedTimeMs: number, source: Source): ParseResult {
  const time = parseTimestampMs(f.startTime);
  if (time === undefined) return { ok: false, reason: 'envoy_bad_timestamp' };

  let srcIp = '';
  let srcPort = 0;
  const remoteAddress = f.downstreamRemote !== '' ? f.downstreamRemote : f.downstreamDirectRemote;
  if (remoteAddress !== '') {
    const colon = portColonOf(remoteAddress);
    srcPort = portOfAddress(remoteAddress, colon);
    srcIp = hostOfAddress(remoteAddress, colon);
  } else if (f.forwardedFor !== '') {
    // Envoy's default format has no peer address; the first X-Forwarded-For hop is the client.
    const comma = f.forwardedFor.indexOf(',');
    srcIp = (comma < 0 ? f.forwardedFor : f.forwardedFor.slice(0, comma)).trim();
  }

  const server = serverOf(f.cluster, f.sni, f.authority);
  const inbound = server.reporter === 'inbound';
  const dstAddress = !inbound && f.upstreamHost !== '' && !isLoopback(f.upstreamHost) ? f.upstreamHost : f.downstreamLocal;
  const dstColon = portColonOf(dstAddress);
  const dstPort = portOfAddress(dstAddress, dstColon);
  const dstIp = hostOfAddress(dstAddress, dstColon);

  const src = peerOf(f.downstreamPeerSan !== '' ? f.downstreamPeerSan : f.upstreamLocalSan);
  const dst = peerOf(f.upstreamPeerSan !== '' ? f.upstreamPeerSan : f.downstreamLocalSan);
  const dstNamespace = server.namespace !== '' ? server.namespace : dst.namespace;
  const tlsFailure = firstTlsFailure(f);
  const flagSet = flagSetOf(f.flags);

  const event: NormalizedEvent = {
    event_id: '',
    time,
    observed_time: observedTimeMs,
    source,
    reporter: server.reporter,
    src_identity: src.identity,
    src_workload: src.serviceAccount,
    src_namespace: src.namespace,
    src_ip: srcIp,
    src_port: srcPort,
    dst_identity: dst.identity,
    dst_service: server.service,
    dst_namespace: dstNamespace,
    dst_ip: dstIp,
    dst_port: dstPort,
    method: f.method,
    path: f.path,
    route: templateRoute(f.path),
    authority: f.authority,
    protocol: f.protocol,
    status: f.status,
    // Both set by decideEnvoy below, from the fields above.
    decision: 'unknown',
    decision_reason: '',
    // Shared and frozen (see FlagSet); typed mutable like every event's list.
    response_flags: flagSet.flags as string[],
    mtls: mtlsOf(f, tlsFailure, inbound),
    tls_version: server.reporter === 'outbound' ? f.upstreamTls || f.downstreamTls : f.downstreamTls || f.upstreamTls,
    tls_failure: tlsFailure,
    bytes_in: f.bytesIn,
    bytes_out: f.bytesOut,
    duration_ms: f.durationMs,
    request_id: f.requestId,
    decision_id: '',
    trace_id: f.traceId,
    count: 1,
    raw,
  };
  decideEnvoy(event, flagSet, f.details, f.termDetails);
  if (f.overrideFields.length > 0) applyOverrides(event, f);
  return { ok: true, event };
}

function mtlsOf(f: EnvoyFields, tlsFailure: string, inbound: boolean): NormalizedEvent['mtls'] {
  // A failed handshake says nothing about whether mTLS would have been used.
  if (tlsFailure !== '') return 'unknown';
  if (f.downstreamPeerSan !== '' || f.upstreamPeerSan !== '') return 'yes';
  if (inbound && f.hasSni) {
    if (hasPrefix(f.sni, 'outbound_.')) return 'yes';
    if (f.sni === '' && f.downstreamTls === '') return 'no';
  }
  if (f.hasDownstreamTls && f.downstreamTls === '' && !hasPrefix(f.cluster, 'outbound|')) return 'no';
  return 'unknown';
}

function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}

/** Writes `fieldMap` overrides into the event, converting each value to the field's type. */
function applyOverrides(event: NormalizedEvent, f: EnvoyFields): void {
  for (let i = 0; i < f.overrideFields.length; i++) {
    const field = f.overrideFields[i] as string;
    const value = f.overrideValues[i];
    const text = readText(value);
    switch (field) {
      case 'src_port':
      case 'dst_port':
        event[field] = readPort(value);
        break;
      case 'src_identity':
      case 'dst_identity':
        event[field] = canonicalizeIdentity(text);
        break;
      case 'tls_failure':
        event.tls_failure = normalizeTlsFailure(text);
        break;
      case 'decision':
        if (isOneOf(DECISIONS, text)) event.decision = text;
        break;
      case 'mtls':
        if (isOneOf(MTLS_STATES, text)) event.mtls = text;
        break;
      case 'reporter':
        if (isOneOf(REPORTERS, text)) event.reporter = text;
        break;
      case 'decision_reason':
        event.decision_reason = truncateText(text, MAX_DECISION_REASON_CHARS);
        break;
      case 'src_workload':
      case 'src_namespace':
      case 'src_ip':
      case 'dst_service':
      case 'dst_namespace':
      case 'dst_ip':
      case 'route':
      case 'tls_version':
      case 'decision_id':
        event[field] = text;
        break;
      default:
        break;
    }
  }
}
