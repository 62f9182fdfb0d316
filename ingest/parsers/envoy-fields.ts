// What Envoy and Istio access logs say, whatever their encoding: the text and JSON readers fill an
// `EnvoyFields` record, and `buildEnvoyEvent` turns it into a normalized event — identities,
// service names, mTLS state, TLS failure and decision — in one place.
import { DECISIONS, MTLS_STATES, REPORTERS, type Decision, type NormalizedEvent, type ParseResult, type Source } from '../../core/event.ts';
import {
  canonicalizeIdentity,
  directionOfCluster,
  hostOfCluster,
  hostOfIstioSni,
  namespaceOfHost,
  parseSpiffeId,
  serviceOfHost,
} from '../identity.ts';
import { templateRoute } from '../route.ts';
import {
  normalizeTlsFailure,
  parseTimestampMs,
  readCount,
  readPort,
  readStatus,
  readText,
  addressHost,
  addressPort,
  traceIdFromTraceparent,
  truncateText,
  createStringMemo,
  hasPrefix,
} from './common.ts';

/** Slots a record's keys are read into. Numbers, so the per-key dispatch is a switch. */
export const SLOT = {
  startTime: 1,
  method: 2,
  path: 3,
  protocol: 4,
  status: 5,
  flags: 6,
  details: 7,
  termDetails: 8,
  upstreamFailure: 9,
  downstreamFailure: 10,
  bytesIn: 11,
  bytesOut: 12,
  duration: 13,
  requestId: 14,
  authority: 15,
  upstreamHost: 16,
  cluster: 17,
  downstreamLocal: 18,
  downstreamRemote: 19,
  downstreamDirectRemote: 20,
  sni: 21,
  downstreamPeerSan: 22,
  upstreamPeerSan: 23,
  upstreamLocalSan: 24,
  downstreamLocalSan: 25,
  downstreamTls: 26,
  upstreamTls: 27,
  traceId: 28,
  traceparent: 29,
  embeddedLog: 30,
  forwardedFor: 31,
  /** A `fieldMap` key mapped to `time`: unlike Envoy's own START_TIME, it may hold epoch numbers. */
  mappedTime: 32,
  /** `fieldMap` target that is an event field written as is (see OVERRIDE_FIELDS). */
  override: 100,
} as const;

/**
 * Keys understood without configuration: Istio's default JSON keys, Envoy command operators in
 * snake_case (`%DOWNSTREAM_PEER_URI_SAN%` → `downstream_peer_uri_san`), and the header-style keys
 * of Envoy Gateway's default format. Text formats are read into the same slots.
 */
export const ENVOY_KEYS: ReadonlyMap<string, number> = new Map<string, number>([
  ['start_time', SLOT.startTime],
  ['timestamp', SLOT.startTime],
  ['method', SLOT.method],
  ['req_method', SLOT.method],
  [':method', SLOT.method],
  ['path', SLOT.path],
  ['req_path', SLOT.path],
  [':path', SLOT.path],
  ['x-envoy-origin-path', SLOT.path],
  ['x_envoy_original_path', SLOT.path],
  ['protocol', SLOT.protocol],
  ['response_code', SLOT.status],
  ['response_flags', SLOT.flags],
  ['response_flags_long', SLOT.flags],
  ['response_code_details', SLOT.details],
  ['connection_termination_details', SLOT.termDetails],
  ['upstream_transport_failure_reason', SLOT.upstreamFailure],
  ['downstream_transport_failure_reason', SLOT.downstreamFailure],
  ['bytes_received', SLOT.bytesIn],
  ['bytes_sent', SLOT.bytesOut],
  ['duration', SLOT.duration],
  ['request_id', SLOT.requestId],
  ['x_request_id', SLOT.requestId],
  ['x-request-id', SLOT.requestId],
  ['authority', SLOT.authority],
  [':authority', SLOT.authority],
  ['upstream_host', SLOT.upstreamHost],
  ['upstream_cluster', SLOT.cluster],
  ['upstream_cluster_raw', SLOT.cluster],
  ['downstream_local_address', SLOT.downstreamLocal],
  ['downstream_remote_address', SLOT.downstreamRemote],
  ['downstream_direct_remote_address', SLOT.downstreamDirectRemote],
  ['requested_server_name', SLOT.sni],
  ['downstream_peer_uri_san', SLOT.downstreamPeerSan],
  ['upstream_peer_uri_san', SLOT.upstreamPeerSan],
  ['upstream_local_uri_san', SLOT.upstreamLocalSan],
  ['downstream_local_uri_san', SLOT.downstreamLocalSan],
  ['downstream_tls_version', SLOT.downstreamTls],
  ['upstream_tls_version', SLOT.upstreamTls],
  ['trace_id', SLOT.traceId],
  ['x_b3_traceid', SLOT.traceId],
  ['x-b3-traceid', SLOT.traceId],
  ['traceparent', SLOT.traceparent],
  ['x_forwarded_for', SLOT.forwardedFor],
  ['x-forwarded-for', SLOT.forwardedFor],
  // Docker's json-file driver and CRI collectors wrap each text line as {"log": "…"}.
  ['log', SLOT.embeddedLog],
]);

/** Event fields a `fieldMap` entry may name, beyond those the slots above already fill. */
const OVERRIDE_FIELDS = new Set<string>([
  'src_identity',
  'src_workload',
  'src_namespace',
  'src_ip',
  'src_port',
  'dst_identity',
  'dst_service',
  'dst_namespace',
  'dst_ip',
  'dst_port',
  'route',
  'decision',
  'decision_reason',
  'mtls',
  'tls_version',
  'tls_failure',
  'decision_id',
  'reporter',
]);

/** Event field → slot, for `fieldMap` entries that name an event field the slots fill. */
const FIELD_SLOTS: ReadonlyMap<string, number> = new Map<string, number>([
  ['time', SLOT.mappedTime],
  ['method', SLOT.method],
  ['path', SLOT.path],
  ['protocol', SLOT.protocol],
  ['status', SLOT.status],
  ['response_flags', SLOT.flags],
  ['bytes_in', SLOT.bytesIn],
  ['bytes_out', SLOT.bytesOut],
  ['duration_ms', SLOT.duration],
  ['request_id', SLOT.requestId],
  ['authority', SLOT.authority],
  ['trace_id', SLOT.traceId],
]);

/** A compiled key table: the built-in keys plus a `fieldMap`, with override targets remembered. */
export interface KeyTable {
  readonly slots: ReadonlyMap<string, number>;
  /** Source key → event field, for keys written straight into the event. */
  readonly overrides: ReadonlyMap<string, string>;
}

const DEFAULT_TABLE: KeyTable = { slots: ENVOY_KEYS, overrides: new Map() };
const compiledTables = new WeakMap<object, KeyTable>();

/**
 * The key table for a `fieldMap` (`{ "my_key": "dst_service" }`): a target may be an event field
 * name or one of the built-in keys (`{ "ts": "start_time" }`). Unknown targets are ignored.
 * Compiled once per fieldMap object.
 */
export function compileKeyTable(fieldMap: Readonly<Record<string, string>> | undefined): KeyTable {
  if (fieldMap === undefined) return DEFAULT_TABLE;
  const cached = compiledTables.get(fieldMap);
  if (cached) return cached;
  const slots = new Map(ENVOY_KEYS);
  const overrides = new Map<string, string>();
  for (const [key, target] of Object.entries(fieldMap)) {
    if (typeof target !== 'string') continue;
    const slot = FIELD_SLOTS.get(target) ?? ENVOY_KEYS.get(target);
    if (slot !== undefined) {
      slots.set(key, slot);
    } else if (OVERRIDE_FIELDS.has(target)) {
      slots.set(key, SLOT.override);
      overrides.set(key, target);
    }
  }
  const table: KeyTable = { slots, overrides };
  compiledTables.set(fieldMap, table);
  return table;
}

/** The override lists of a record that has none: frozen, so a push that skipped assignOverride throws. */
const NO_OVERRIDES: unknown[] = Object.freeze([]) as unknown as unknown[];

/** One record's Envoy fields, as text ('' = unset) and numbers (0 = unset). */
export class EnvoyFields {
  startTime: unknown = undefined;
  method = '';
  path = '';
  protocol = '';
  status = 0;
  flags = '';
  details = '';
  termDetails = '';
  upstreamFailure = '';
  downstreamFailure = '';
  bytesIn = 0;
  bytesOut = 0;
  durationMs = 0;
  requestId = '';
  authority = '';
  upstreamHost = '';
  cluster = '';
  downstreamLocal = '';
  downstreamRemote = '';
  downstreamDirectRemote = '';
  sni = '';
  /** True when the record has an SNI column at all (Istio formats), so '' means "no TLS". */
  hasSni = false;
  downstreamPeerSan = '';
  upstreamPeerSan = '';
  upstreamLocalSan = '';
  downstreamLocalSan = '';
  downstreamTls = '';
  /** True when the record has a downstream TLS version column at all, so '' means plaintext. */
  hasDownstreamTls = false;
  upstreamTls = '';
  traceId = '';
  forwardedFor = '';
  embeddedLog = '';
  /**
   * `fieldMap` overrides: event field names and their raw values, in record order. Both start as
   * the shared empty NO_OVERRIDES and get arrays of their own at the first override, so a record
   * without overrides (nearly all) allocates none.
   */
  overrideFields: string[] = NO_OVERRIDES as string[];
  overrideValues: unknown[] = NO_OVERRIDES;

  /** Clears every field for the next record. */
  reset(): this {
    this.startTime = undefined;
    this.method = this.path = this.protocol = this.flags = this.details = this.termDetails = '';
    this.upstreamFailure = this.downstreamFailure = this.requestId = this.authority = '';
    this.upstreamHost = this.cluster = this.downstreamLocal = this.downstreamRemote = '';
    this.downstreamDirectRemote = this.sni = this.downstreamPeerSan = this.upstreamPeerSan = '';
    this.upstreamLocalSan = this.downstreamLocalSan = this.downstreamTls = this.upstreamTls = '';
    this.traceId = this.forwardedFor = this.embeddedLog = '';
    this.status = this.bytesIn = this.bytesOut = this.durationMs = 0;
    this.hasSni = this.hasDownstreamTls = false;
    if (this.overrideFields.length > 0) {
      this.overrideFields = NO_OVERRIDES as string[];
      this.overrideValues = NO_OVERRIDES;
    }
    return this;
  }

  /** Stores `value` (string, number or null, as JSON or text gives it) into `slot`. */
  assign(slot: number, value: unknown): void {
    switch (slot) {
      case SLOT.startTime:
        // Envoy writes %START_TIME% as text (epoch seconds with `%s`); a number is not its output.
        this.startTime = typeof value === 'string' ? value : undefined;
        break;
      case SLOT.mappedTime:
        this.startTime = value;
        break;
      case SLOT.method:
        this.method = readText(value);
        break;
      case SLOT.path:
        this.path = readText(value);
        break;
      case SLOT.protocol:
        this.protocol = readText(value);
        break;
      case SLOT.status:
        this.status = readStatus(value);
        break;
      case SLOT.flags:
        this.flags = readText(value);
        break;
      case SLOT.details:
        this.details = readText(value);
        break;
      case SLOT.termDetails:
        this.termDetails = readText(value);
        break;
      case SLOT.upstreamFailure:
        this.upstreamFailure = readText(value);
        break;
      case SLOT.downstreamFailure:
        this.downstreamFailure = readText(value);
        break;
      case SLOT.bytesIn:
        this.bytesIn = readCount(value);
        break;
      case SLOT.bytesOut:
        this.bytesOut = readCount(value);
        break;
      case SLOT.duration:
        this.durationMs = readCount(value);
        break;
      case SLOT.requestId:
        this.requestId = readText(value);
        break;
      case SLOT.authority:
        this.authority = readText(value);
        break;
      case SLOT.upstreamHost:
        this.upstreamHost = readText(value);
        break;
      case SLOT.cluster:
        this.cluster = readText(value);
        break;
      case SLOT.downstreamLocal:
        this.downstreamLocal = readText(value);
        break;
      case SLOT.downstreamRemote:
        this.downstreamRemote = readText(value);
        break;
      case SLOT.downstreamDirectRemote:
        this.downstreamDirectRemote = readText(value);
        break;
      case SLOT.sni:
        this.sni = readText(value);
        this.hasSni = true;
        break;
      case SLOT.downstreamPeerSan:
        this.downstreamPeerSan = readText(value);
        break;
      case SLOT.upstreamPeerSan:
        this.upstreamPeerSan = readText(value);
        break;
      case SLOT.upstreamLocalSan:
        this.upstreamLocalSan = readText(value);
        break;
      case SLOT.downstreamLocalSan:
        this.downstreamLocalSan = readText(value);
        break;
      case SLOT.downstreamTls:
        this.downstreamTls = readText(value);
        this.hasDownstreamTls = true;
        break;
      case SLOT.upstreamTls:
        this.upstreamTls = readText(value);
        break;
      case SLOT.traceId:
        this.traceId = readText(value);
        break;
      case SLOT.traceparent:
        if (this.traceId === '') this.traceId = traceIdFromTraceparent(readText(value));
        break;
      case SLOT.forwardedFor:
        this.forwardedFor = readText(value);
        break;
      case SLOT.embeddedLog:
        this.embeddedLog = typeof value === 'string' ? value : '';
        break;
      default:
        break;
    }
  }

  /** Remembers a `fieldMap` value to write into event field `field` after normalization. */
  assignOverride(field: string, value: unknown): void {
    if (this.overrideFields === NO_OVERRIDES) {
      this.overrideFields = [];
      this.overrideValues = [];
    }
    this.overrideFields.push(field);
    this.overrideValues.push(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Response flags and decisions

/** `%RESPONSE_FLAGS_LONG%` names → the short codes `%RESPONSE_FLAGS%` prints. */
const LONG_FLAGS: ReadonlyMap<string, string> = new Map([
  ['NoHealthyUpstream', 'UH'],
  ['UpstreamConnectionFailure', 'UF'],
  ['UpstreamOverflow', 'UO'],
  ['NoRouteFound', 'NR'],
  ['UpstreamRetryLimitExceeded', 'URX'],
  ['NoClusterFound', 'NC'],
  ['DurationTimeout', 'DT'],
  ['DownstreamConnectionTermination', 'DC'],
  ['FailedLocalHealthCheck', 'LH'],
  ['UpstreamRequestTimeout', 'UT'],
  ['LocalReset', 'LR'],
  ['UpstreamRemoteReset', 'UR'],
  ['UpstreamConnectionTermination', 'UC'],
  ['DelayInjected', 'DI'],
  ['FaultInjected', 'FI'],
  ['RateLimited', 'RL'],
  ['UnauthorizedExternalService', 'UAEX'],
  ['RateLimitServiceError', 'RLSE'],
  ['InvalidEnvoyRequestHeaders', 'IH'],
  ['StreamIdleTimeout', 'SI'],
  ['DownstreamProtocolError', 'DPE'],
  ['UpstreamProtocolError', 'UPE'],
  ['UpstreamMaxStreamDurationReached', 'UMSDR'],
  ['ResponseFromCacheFilter', 'RFCF'],
  ['NoFilterConfigFound', 'NFCF'],
  ['OverloadManagerTerminated', 'OM'],
  ['DnsResolutionFailed', 'DF'],
  ['DropOverload', 'DO'],
  ['UnconditionalDropOverload', 'UDO'],
  ['DownstreamRemoteReset', 'DR'],
]);

/**
 * Flags that mean the proxy could not serve the request (no upstream, reset, timeout, protocol
 * error, overload, rate limit, fault). `DC`/`DR` (the client left) and `DI`/`RFCF` are not errors.
 */
const ERROR_FLAGS = new Set([
  'UH', 'UF', 'UO', 'NR', 'URX', 'NC', 'DT', 'LH', 'UT', 'LR', 'UR', 'UC', 'FI', 'RL', 'RLSE',
  'IH', 'SI', 'DPE', 'UPE', 'UMSDR', 'NFCF', 'OM', 'DF', 'DO', 'UDO',
]);

/** `UF,URX` → `['UF','URX']`; long names become short codes; `-`/'' → []. */
export function parseResponseFlags(text: string): string[] {
  if (text === '' || text === '-') return [];
  // Short codes are at most 5 letters; only longer texts may be long names or lists.
  if (text.length <= 5) return [text];
  if (text.indexOf(',') < 0) return [LONG_FLAGS.get(text) ?? text.trim()];
  const flags = text.split(',');
  for (let i = 0; i < flags.length; i++) {
    const flag = (flags[i] as string).trim();
    flags[i] = LONG_FLAGS.get(flag) ?? flag;
  }
  return flags;
}

const RBAC_MARK = 'rbac_access_denied';
const MAX_DECISION_REASON_CHARS = 256;

/**
 * The policy in `rbac_access_denied_matched_policy[ns[foo]-policy[bar]-rule[0]]`
 * (→ `ns[foo]-policy[bar]-rule[0]`; `[none]` → `none`); `RBAC` for an RBAC denial without a
 * policy id; '' when `details` is not an RBAC denial.
 */
export function rbacPolicyOf(details: string): string {
  // Cheap guards first: this runs on every line, and nearly every line says `via_upstream`.
  if (details.length < 5 || details === 'via_upstream') return '';
  const mark = details.indexOf(RBAC_MARK);
  if (mark < 0) {
    const upper = details.indexOf('RBAC:');
    if (upper < 0) return '';
    return details.startsWith(' access denied', upper + 5) || details.startsWith('_access_denied', upper + 5) ? 'RBAC' : '';
  }
  const open = details.indexOf('[', mark);
  const close = details.lastIndexOf(']');
  if (open < 0 || close <= open) return 'RBAC';
  return truncateText(details.slice(open + 1, close), MAX_DECISION_REASON_CHARS);
}

/**
 * One `%RESPONSE_FLAGS%` text, parsed, with what the decision asks of it. Flag texts repeat on
 * nearly every line (`-`, `UF,URX`, `UAEX`), so each is parsed once (flagSetOf) and its frozen
 * list is shared by every event that carries it.
 */
interface FlagSet {
  readonly flags: readonly string[];
  readonly rbac: boolean;
  readonly uaex: boolean;
  /** The flags joined with `,` when one of them is an error flag, else ''. */
  readonly errorReason: string;
}

const NO_FLAGS: FlagSet = flagSetOfList([]);
const flagSets = createStringMemo<FlagSet>(1024);

function flagSetOfList(list: readonly string[]): FlagSet {
  // Well-formed from the start: the shared list is frozen, so repairEvent must find nothing to fix.
  const flags = Object.freeze(list.map((flag) => flag.toWellFormed()));
  return {
    flags,
    rbac: flags.includes('RBAC'),
    uaex: flags.includes('UAEX'),
    errorReason: flags.some((flag) => ERROR_FLAGS.has(flag)) ? flags.join(',') : '',
  };
}

function flagSetOf(text: string): FlagSet {
  if (text === '' || text === '-') return NO_FLAGS;
  let set = flagSets.get(text);
  if (set === undefined) {
    set = flagSetOfList(parseResponseFlags(text));
    flagSets.set(text, set);
  }
  return set;
}

// The reason found by the last decideEnvoy call (returning the decision keeps the pair unallocated).
let decidedReason = '';

/**
 * The decision for an Envoy record (mapping table in docs/ingest-formats.md); the reason is left
 * in `decidedReason`. RBAC denial (details or `RBAC` flag) → deny with the policy; `UAEX` → deny
 * (error when 5xx: the authorization service itself failed); error flags or 5xx → error; 2xx/3xx
 * → allow; a TCP connection (no method, status 0, no flags) that ended normally → allow; else unknown.
 */
function decideEnvoy(status: number, set: FlagSet, details: string, termDetails: string, tlsFailure: string, method: string): Decision {
  decidedReason = '';
  const flagCount = set.flags.length;
  // The common case first: an answered request with nothing unusual about it.
  if (status >= 200 && status < 400 && flagCount === 0 && termDetails === '' && (details === 'via_upstream' || details === '') && tlsFailure === '') {
    return 'allow';
  }
  let policy = rbacPolicyOf(details);
  if (policy === '') policy = rbacPolicyOf(termDetails);
  if (policy !== '') {
    decidedReason = policy;
    return 'deny';
  }
  if (set.rbac) {
    decidedReason = 'RBAC';
    return 'deny';
  }
  if (set.uaex) {
    decidedReason = 'UAEX';
    return status >= 500 || details.startsWith('ext_authz_error') ? 'error' : 'deny';
  }
  if (details.startsWith('ext_authz_denied')) {
    decidedReason = 'ext_authz_denied';
    return 'deny';
  }
  if (set.errorReason !== '') {
    decidedReason = set.errorReason;
    return 'error';
  }
  if (status >= 500 || details.startsWith('ext_authz_error')) {
    decidedReason = details === 'via_upstream' ? '' : truncateText(details, MAX_DECISION_REASON_CHARS);
    return 'error';
  }
  if (tlsFailure !== '') {
    decidedReason = tlsFailure;
    return 'error';
  }
  if (status >= 200 && status < 400) return 'allow';
  if (status === 0 && flagCount === 0 && method === '' && termDetails === '') return 'allow';
  return 'unknown';
}

/**
 * Sets `decision` and `decision_reason` from the status, response flags, method and TLS failure
 * already on `event` and the two details fields (see decideEnvoy).
 */
export function applyEnvoyDecision(event: NormalizedEvent, details: string, termDetails: string): void {
  event.decision = decideEnvoy(event.status, flagSetOfList(event.response_flags), details, termDetails, event.tls_failure, event.method);
  event.decision_reason = decidedReason;
}

// ---------------------------------------------------------------------------------------------
// The event

// Host part found by the last readAddress call (returning the port keeps the pair unallocated).
let addressHostPart = '';

/** Splits `ip:port` (the common case inline; other spellings through common.ts); returns the port. */
function readAddress(address: string): number {
  // Digits after the last `:`, read backwards (at most 5): no search over the whole string.
  const len = address.length;
  let port = 0;
  let scale = 1;
  let i = len - 1;
  for (; i >= 0 && len - i <= 6; i--) {
    const c = address.charCodeAt(i);
    if (c === 58 /* : */) break;
    if (c < 48 || c > 57) {
      i = -1;
      break;
    }
    port += (c - 48) * scale;
    scale *= 10;
  }
  // A plain host has no other `:` (IPv6 comes bracketed, or without a port) and no `[`.
  if (i > 0 && i < len - 1 && address.charCodeAt(i) === 58 && port <= 65535 && address.indexOf(':') === i && address.charCodeAt(0) !== 91 /* [ */) {
    addressHostPart = address.slice(0, i);
    return port;
  }
  addressHostPart = addressHost(address);
  return addressPort(address);
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
    srcPort = readAddress(remoteAddress);
    srcIp = addressHostPart;
  } else if (f.forwardedFor !== '') {
    // Envoy's default format has no peer address; the first X-Forwarded-For hop is the client.
    const comma = f.forwardedFor.indexOf(',');
    srcIp = (comma < 0 ? f.forwardedFor : f.forwardedFor.slice(0, comma)).trim();
  }

  const server = serverOf(f.cluster, f.sni, f.authority);
  const inbound = server.reporter === 'inbound';
  const dstAddress = !inbound && f.upstreamHost !== '' && !isLoopback(f.upstreamHost) ? f.upstreamHost : f.downstreamLocal;
  const dstPort = readAddress(dstAddress);
  const dstIp = addressHostPart;

  const src = peerOf(f.downstreamPeerSan !== '' ? f.downstreamPeerSan : f.upstreamLocalSan);
  const dst = peerOf(f.upstreamPeerSan !== '' ? f.upstreamPeerSan : f.downstreamLocalSan);
  const dstNamespace = server.namespace !== '' ? server.namespace : dst.namespace;
  const tlsFailure = firstTlsFailure(f);
  const flagSet = flagSetOf(f.flags);
  const decision = decideEnvoy(f.status, flagSet, f.details, f.termDetails, tlsFailure, f.method);

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
    decision,
    decision_reason: decidedReason,
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
