// Correlation of anomalies into incidents (DESIGN §6b): one incident is one page. Pure, no I/O:
// it is fed anomaly lifecycle changes in event-time order (live from the detector engine, or from
// a replay) and returns the incident changes they cause. Time comes only from the anomalies
// (their detected_at / last_seen) and from `advanceTo`, never from the clock.
//
// An anomaly joins a live incident (firing, or resolved less than `linkGapSeconds` before the
// anomaly's first evidence) when one of these holds:
// - shared actor: the anomaly's source (identity, IP, principal, or a top source named in its
//   evidence) is an actor of the incident;
// - a scan explains the denials: the incident holds a fan-out whose destinations include the
//   anomaly's destination, and the anomaly (deny_spike, new_edge, plaintext) names no other source;
// - an expired or broken certificate explains its peers' failures: two mtls_failure anomalies where
//   one's workload is among the other's peers (client side and server side of one certificate);
//   and a fan-out whose attempts all failed the TLS handshake (no request reached an application)
//   from an address an mtls_failure names, or on which the failing workload's identity was seen
//   (a client whose certificate expired: servers see only its pod addresses). Such a fan-out,
//   alone, waits `holdSeconds` for the certificate finding before it pages as a scan;
// - one broken policy explains the denials of all the callers of one destination: the incident is
//   made of deny_spike anomalies at one destination, and the anomaly is a deny_spike there too.
// An anomaly with the same actor and the same target as an incident that resolved at most
// `reopenSeconds` before its first evidence reopens that incident (same id, timeline entry
// 'reopened') instead of opening and paging a new one.
// When an anomaly links several incidents they merge into one (the one that paged first survives;
// the others resolve with evidence.merged_into). An incident that names no actor waits
// `holdSeconds` of event time before it pages, so the scan that explains it can claim it first.
import { createHash } from 'node:crypto';
import type { Anomaly, Severity } from '../core/anomaly.ts';
import { rankSeverity, SEVERITIES } from '../core/anomaly.ts';
import { isPagingSeverity, type Incident, type IncidentTimelineEntry } from '../core/incident.ts';

/** A member anomaly's lifecycle change. */
export type MemberChange = 'opened' | 'updated' | 'resolved';

/** An incident change, as returned by the correlator; `incident` is a snapshot (safe to keep). */
export interface IncidentChange {
  readonly incident: Incident;
  readonly change: 'opened' | 'updated' | 'resolved';
}

export interface IncidentOptions {
  /**
   * An anomaly whose first evidence comes at most this long after an incident's last evidence may
   * still join it (and reopens it when it had resolved), in seconds. @default 300
   */
  readonly linkGapSeconds: number;
  /**
   * An anomaly with the same actor and target as an incident resolved at most this long before its
   * first evidence reopens that incident instead of opening (and paging) a new one, in seconds. @default 900
   */
  readonly reopenSeconds: number;
  /** Event time an incident naming no actor waits before it pages, in seconds. @default 30 */
  readonly holdSeconds: number;
  /** Most timeline entries kept per incident (the oldest are kept, the count of dropped ones is in evidence). @default 200 */
  readonly maxTimelineEntries: number;
  /** Most actors / targets listed per incident. @default 50 */
  readonly maxListed: number;
  /**
   * Keep resolved and merged incidents for all() (a replay's output). A live process passes false:
   * incidents resolved for an hour beyond linkGapSeconds are forgotten, bounding memory. @default true
   */
  readonly keepResolved: boolean;
}

export const DEFAULT_INCIDENT_OPTIONS: IncidentOptions = Object.freeze({ linkGapSeconds: 300, reopenSeconds: 900, holdSeconds: 30, maxTimelineEntries: 200, maxListed: 50, keepResolved: true });

/** Event time a resolved incident is remembered beyond linkGapSeconds when keepResolved is false, in ms. */
const FORGET_AFTER_MS = 3_600_000;

export interface IncidentCorrelator {
  /** Feeds one anomaly change (in event-time order); returns the incident changes it caused, in event-time order. */
  observe(anomaly: Anomaly, change: MemberChange): IncidentChange[];
  /** Moves event time on without an anomaly change (pages held incidents whose hold ran out). */
  advanceTo(watermarkMs: number): IncidentChange[];
  /** End of a replay: moves event time to the final watermark. Incidents still firing stay firing. */
  finish(finalWatermarkMs: number): IncidentChange[];
  /** Every incident in its current state, by first_seen. */
  all(): Incident[];
  /** Live restart: takes back incidents that were firing (as stored), before any observe(). */
  restore(incidents: readonly Incident[]): void;
}

/** Per-member facts the links are computed from; kept in the incident's evidence so a restart can rebuild them. */
interface MemberFacts {
  detector: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  actors: string[];
  /** Actors strong enough to link this member to others: its src, or a source behind most of its evidence. */
  linkActors?: string[];
  targets: string[];
  /** Destinations a fan-out touched. */
  scanned: string[];
  /** Workloads an mtls_failure involves: its own and its peers. */
  tlsWorkload: string | null;
  tlsPeers: string[];
  /** Reason class of TLS failures (expired, unknown_ca, …), when the member is an mtls_failure. */
  tlsReason: string | null;
  /** Policies that denied, when the member names them (authz_deny_burst, deny_spike samples). */
  policies?: string[];
  /**
   * A fan-out whose attempts (nearly) all failed the TLS handshake: no request reached an
   * application, so it may be a workload that lost its certificate rather than a scan.
   */
  tlsOnly?: boolean;
  /** Identities seen shortly before on the source address of a fan-out, or on the failing address of an mtls_failure (the workload behind it). */
  ipIdentities?: string[];
  firstSeenMs: number;
  lastSeenMs: number;
  summary: string;
}

interface State {
  incident: Incident;
  members: Map<string, MemberFacts>;
  firstSeenMs: number;
  lastSeenMs: number;
  openedAtMs: number;
  /** Event time at which an incident without an actor may page. */
  holdUntilMs: number;
  timelineDropped: number;
}

const ISO = (ms: number): string => new Date(ms).toISOString();

/** Strips the `:port` a fan-out target key carries (`dst_key:port`). */
function destinationOfTarget(target: string): string {
  const cut = target.lastIndexOf(':');
  return cut > 0 && /^\d+$/.test(target.slice(cut + 1)) ? target.slice(0, cut) : target;
}

function readStrings(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === 'string' && v !== '');
}

/** Share of a finding's evidence below which a named top source does not make an actor. */
const MIN_ACTOR_SHARE = 0.1;

/**
 * Top sources a destination-level finding names in its evidence (`top_sources` or `actors`): plain
 * strings, or objects `{ src | actor | identity, share? }`; a source behind less than a tenth of
 * the evidence does not make an actor.
 */
function readAttributedSources(evidence: Record<string, unknown>, minShare = MIN_ACTOR_SHARE): string[] {
  const out: string[] = [];
  for (const key of ['actors', 'top_sources']) {
    const list = evidence[key];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (typeof item === 'string' && item !== '') out.push(item);
      else if (typeof item === 'object' && item !== null) {
        const o = item as Record<string, unknown>;
        const name = [o.src, o.actor, o.identity, o.source].find((v): v is string => typeof v === 'string' && v !== '');
        const share = typeof o.share === 'number' ? o.share : 1;
        if (name && share >= minShare) out.push(name);
      }
    }
  }
  return out;
}

/** What an anomaly says about who acts on what. */
export function describeAnomaly(anomaly: Anomaly): MemberFacts {
  const e = anomaly.evidence;
  const actors: string[] = [];
  const linkActors: string[] = [];
  const targets: string[] = [];
  let scanned: string[] = [];
  let tlsWorkload: string | null = null;
  let tlsPeers: string[] = [];
  const mtlsIdentities: string[] = [];
  if (anomaly.detector === 'mtls_failure') {
    // The workload whose certificate fails is the subject: the client side names it in src, the server side in dst.
    const role = e.role === 'server' ? 'server' : 'client';
    tlsWorkload = role === 'server' ? anomaly.dst : anomaly.src;
    const peers = e.peers;
    tlsPeers = peers && typeof peers === 'object' && !Array.isArray(peers) ? Object.keys(peers) : [];
    const peer = role === 'server' ? anomaly.src : anomaly.dst;
    if (peer && !tlsPeers.includes(peer)) tlsPeers.push(peer);
    // Addresses stand for the workloads seen on them (a client without a valid certificate is
    // only an address to its servers).
    const named = e.address_identities && typeof e.address_identities === 'object' && !Array.isArray(e.address_identities) ? (e.address_identities as Record<string, unknown>) : {};
    const nameOf = (address: string): string | undefined => readStrings(named[address])[0];
    if (tlsWorkload && nameOf(tlsWorkload)) mtlsIdentities.push(nameOf(tlsWorkload) as string);
    if (tlsWorkload) actors.push(tlsWorkload, ...mtlsIdentities);
    for (const p of [...tlsPeers]) {
      const identity = nameOf(p);
      if (identity && !tlsPeers.includes(identity)) tlsPeers.push(identity);
    }
    targets.push(...tlsPeers);
  } else {
    if (anomaly.src) actors.push(anomaly.src);
    for (const s of readAttributedSources(e)) if (!actors.includes(s)) actors.push(s);
    linkActors.push(...new Set([...(anomaly.src ? [anomaly.src] : []), ...readAttributedSources(e, 0.5)]));
    if (anomaly.dst) targets.push(anomaly.dst);
    if (anomaly.detector === 'fanout') {
      scanned = [...new Set([...readStrings(e.destinations), ...readStrings(e.targets).map(destinationOfTarget)])];
      for (const d of scanned) if (!targets.includes(d)) targets.push(d);
    }
    if (anomaly.detector === 'authz_deny_burst') for (const d of readStrings(e.destinations)) if (!targets.includes(d)) targets.push(d);
  }
  let tlsOnly = false;
  let ipIdentities: string[] = [];
  if (anomaly.detector === 'fanout') {
    tlsOnly = typeof e.tls_failure_share === 'number' && e.tls_failure_share >= TLS_ONLY_SHARE;
    // The workload behind an address names the actor too (after the address it was seen on).
    ipIdentities = readStrings(e.ip_identities).slice(0, 3);
    for (const identity of ipIdentities) if (!actors.includes(identity)) actors.push(identity);
  }
  return {
    detector: anomaly.detector,
    status: anomaly.status,
    severity: anomaly.severity,
    actors,
    linkActors,
    targets,
    scanned,
    tlsWorkload,
    tlsPeers,
    tlsReason: anomaly.detector === 'mtls_failure' && typeof e.reason_class === 'string' ? e.reason_class : null,
    policies: e.policies && typeof e.policies === 'object' && !Array.isArray(e.policies) ? Object.keys(e.policies).filter((p) => p !== '').slice(0, 5) : [],
    ...(anomaly.detector === 'fanout' ? { tlsOnly, ipIdentities } : {}),
    ...(mtlsIdentities.length > 0 ? { ipIdentities: mtlsIdentities } : {}),
    firstSeenMs: Date.parse(anomaly.first_seen),
    lastSeenMs: Date.parse(anomaly.last_seen),
    summary: anomaly.summary,
  };
}

/** Share of a fan-out's sampled attempts failing the TLS handshake from which it may be a certificate's doing. */
const TLS_ONLY_SHARE = 0.8;

/**
 * True when a certificate explains a fan-out: its attempts all failed the TLS handshake, and its
 * source (the address, or the workload seen on it) is a workload whose TLS handshakes fail in the
 * same incident (an mtls_failure names it as the failing workload or as a peer). A scan that
 * failed handshakes from an address no certificate finding involves is still a scan.
 */
function certificateExplains(fanout: MemberFacts, tls: MemberFacts): boolean {
  if (fanout.detector !== 'fanout' || !fanout.tlsOnly || tls.detector !== 'mtls_failure') return false;
  const source = [...(fanout.linkActors ?? fanout.actors), ...(fanout.ipIdentities ?? [])];
  return sameWorkload(source, [...(tls.tlsWorkload ? [tls.tlsWorkload] : []), ...(tls.ipIdentities ?? []), ...tls.tlsPeers]);
}

/** True when every fan-out of the members is explained by a certificate finding among them. */
function explainedScan(m: MemberFacts, all: readonly MemberFacts[]): boolean {
  return m.detector === 'fanout' && all.some((other) => certificateExplains(m, other));
}

/**
 * The members as TLS failures, when a certificate explains the fan-outs among them: each such
 * fan-out becomes the failing handshakes of the workload seen on its address with the servers it
 * reached, and that address, where another member lists it as a peer, stands for the workload.
 * Other members are returned unchanged.
 */
function certificateView(members: readonly MemberFacts[]): MemberFacts[] {
  const byAddress = new Map<string, string>();
  for (const m of members) {
    const identity = m.ipIdentities?.[0];
    if (m.detector === 'mtls_failure' && m.tlsWorkload && identity) byAddress.set(m.tlsWorkload, identity);
  }
  const out = members.map((m) => {
    if (!explainedScan(m, members)) return m;
    const address = (m.linkActors ?? m.actors)[0];
    const workload = m.ipIdentities?.[0] ?? address ?? null;
    if (address && workload && workload !== address) byAddress.set(address, workload);
    return { ...m, detector: 'mtls_failure', tlsWorkload: workload, tlsPeers: m.scanned };
  });
  if (byAddress.size === 0) return out;
  const named = (x: string): string => byAddress.get(x) ?? x;
  return out.map((m) => (m.detector === 'mtls_failure' ? { ...m, tlsWorkload: m.tlsWorkload === null ? null : named(m.tlsWorkload), tlsPeers: [...new Set(m.tlsPeers.map(named))] } : m));
}

/** Detectors whose findings a scan explains at each destination it touched. */
const SCAN_EXPLAINS = new Set(['deny_spike', 'new_edge', 'plaintext']);

/**
 * Names one workload goes by: a SPIFFE identity `spiffe://td/ns/NS/sa/SA` also answers to its
 * service account name SA (the service name its peers log), except the shared `default`; a
 * qualified service name `svc.ns…` also to `svc`.
 */
export function aliasesOf(name: string): string[] {
  const spiffe = /^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/([^/]+)$/.exec(name);
  if (spiffe) return spiffe[1] && spiffe[1] !== 'default' ? [name, spiffe[1]] : [name];
  if (/^[\d.:]+$/.test(name) || !name.includes('.')) return [name];
  return [name, name.slice(0, name.indexOf('.'))];
}

/** True when some name in `a` and some name in `b` can be the same workload. */
function sameWorkload(a: readonly string[], b: readonly string[]): boolean {
  const names = new Set(b.flatMap(aliasesOf));
  return a.some((x) => aliasesOf(x).some((alias) => names.has(alias)));
}

function intersects(a: readonly string[], b: Iterable<string>): boolean {
  const set = b instanceof Set ? (b as Set<string>) : new Set(b);
  return a.some((x) => set.has(x));
}

/** Why an anomaly belongs to an incident, or undefined when it does not. */
function findLink(facts: MemberFacts, members: ReadonlyMap<string, MemberFacts>): string | undefined {
  const all = [...members.values()];
  const linking = (m: MemberFacts): string[] => m.linkActors ?? m.actors;
  const actorsOf = new Set(all.filter((m) => m.detector !== 'mtls_failure').flatMap(linking));
  if (facts.detector !== 'mtls_failure' && intersects(linking(facts), actorsOf)) return 'shared_actor';
  const scanned = new Set(all.flatMap((m) => m.scanned));
  // A scan explains findings at destinations it touched that name no other source.
  if (SCAN_EXPLAINS.has(facts.detector) && linking(facts).every((x) => actorsOf.has(x)) && intersects(facts.targets, scanned)) return 'scan_explains';
  if (facts.detector === 'fanout') {
    // …and the reverse: a scan arriving after the findings it explains claims them.
    const scanTargets = new Set(facts.scanned);
    const scanners = new Set(linking(facts));
    if (all.some((m) => SCAN_EXPLAINS.has(m.detector) && linking(m).every((x) => scanners.has(x)) && intersects(m.targets, scanTargets))) return 'scan_explains';
  }
  // A workload that lost its certificate fails its handshakes everywhere it calls: a fan-out of
  // failed handshakes from it is that certificate's doing, not a scan.
  if (all.some((m) => certificateExplains(facts, m) || certificateExplains(m, facts))) return 'same_certificate';
  if (facts.detector === 'mtls_failure') {
    for (const m of all) {
      if (m.detector !== 'mtls_failure') continue;
      const own = [...(facts.tlsWorkload ? [facts.tlsWorkload] : []), ...(facts.ipIdentities ?? [])];
      const other = [...(m.tlsWorkload ? [m.tlsWorkload] : []), ...(m.ipIdentities ?? [])];
      if (sameWorkload(own, [...other, ...m.tlsPeers]) || sameWorkload(other, facts.tlsPeers)) return 'same_certificate';
    }
  }
  if (facts.detector === 'deny_spike' && all.every((m) => m.detector === 'deny_spike')) {
    const destinations = new Set(all.flatMap((m) => m.targets));
    if (destinations.size === 1 && intersects(facts.targets, destinations)) return 'same_destination_denials';
  }
  return undefined;
}

/**
 * The incident kind each detector's finding names (the incidents stage may not import detectors/,
 * so test/detectors/registry.test.ts checks that this covers exactly the registered detectors).
 */
export const KIND_BY_DETECTOR: Readonly<Record<string, string>> = {
  fanout: 'scan',
  authz_deny_burst: 'privilege_probing',
  volume: 'exfiltration',
  mtls_failure: 'certificate',
  plaintext: 'plaintext',
  new_edge: 'new_edge',
  deny_spike: 'denials',
};
/**
 * True when the anomaly has the same actor and the same target as the incident's members: one of
 * its linking actors is an actor of a member (any name the workload goes by), and one of its
 * targets (or denying policies, when it names no destination) is a member's.
 */
function sameActorAndTarget(facts: MemberFacts, members: ReadonlyMap<string, MemberFacts>): boolean {
  const all = [...members.values()];
  const own = facts.detector === 'mtls_failure' ? facts.actors : (facts.linkActors ?? facts.actors);
  if (own.length === 0 || !sameWorkload(own, all.flatMap((m) => m.actors))) return false;
  const targetsOf = (m: MemberFacts): string[] => [...m.targets, ...(m.policies ?? [])];
  const mine = targetsOf(facts);
  return mine.length > 0 && sameWorkload(mine, all.flatMap(targetsOf));
}

/** The member detector that names an incident's kind, strongest first (every detector, checked by the same test). */
export const KIND_ORDER: readonly string[] = ['fanout', 'authz_deny_burst', 'volume', 'mtls_failure', 'plaintext', 'deny_spike', 'new_edge'];

function listNames(names: readonly string[], max = 3): string {
  if (names.length === 0) return '';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** One sentence naming the actor and the target, or saying that no actor can be named. */
export function buildTitle(members: ReadonlyMap<string, MemberFacts>, actors: readonly string[], targets: readonly string[]): string {
  const every = [...members.values()];
  // A fan-out a certificate explains does not make the incident a scan.
  const all = every.some((m) => explainedScan(m, every)) ? every.filter((m) => !explainedScan(m, every)) : every;
  const lead = KIND_ORDER.find((d) => all.some((m) => m.detector === d)) ?? all[0]?.detector ?? 'unknown';
  // The lead finding's own actors when it names any (a scan's source, not every caller denied near it).
  const leadActors = lead === 'mtls_failure' ? [] : [...new Set(all.filter((m) => m.detector === lead).flatMap((m) => m.linkActors ?? m.actors))];
  const named = leadActors.length > 0 ? leadActors : actors;
  const who = named.length > 0 ? listNames(named) : 'an unidentified source (no actor can be named from the evidence)';
  const what = targets.length > 0 ? listNames(targets) : 'no single named target';
  const denialsOnly = all.every((m) => m.detector === 'deny_spike');
  if (lead === 'fanout') {
    const scanned = new Set(all.flatMap((m) => m.scanned));
    return `Scan or lateral movement by ${who} reaching ${scanned.size} destination${scanned.size === 1 ? '' : 's'} (${listNames([...scanned]) || what}).`;
  }
  if (lead === 'authz_deny_burst') {
    if (targets.length > 0) return `Privilege probing by ${who}, denied by the policy engine at ${what}.`;
    // Decision logs without a destination still name the policy package that refused.
    const policies = [...new Set(all.flatMap((m) => m.policies ?? []))];
    return `Privilege probing by ${who}, denied by the policy engine${policies.length > 0 ? ` under ${listNames(policies)}` : ''} (no destination service in the decisions).`;
  }
  if (lead === 'volume') return `Unusual data volume (possible exfiltration) from ${what} to ${who}.`;
  if (lead === 'mtls_failure') {
    const reasons = [...new Set(all.map((m) => m.tlsReason).filter((r): r is string => r !== null))];
    const why = reasons.length > 0 ? reasons.join(', ') : 'a certificate or CA problem';
    if (all.every((m) => m.detector === 'mtls_failure')) {
      // One workload under several names (SPIFFE identity, service name): its identity says most.
      const owner = actors.find((a) => a.startsWith('spiffe://')) ?? actors[0];
      return `Certificate of ${owner ?? who} failing TLS handshakes with ${what} (${why}).`;
    }
    const workloads = [...new Set(all.map((m) => m.tlsWorkload).filter((w): w is string => w !== null))];
    return `TLS handshakes of ${listNames(workloads) || who} failing with ${what} (${why}).`;
  }
  if (lead === 'plaintext') return `Plaintext traffic from ${who} to ${what}, which expects mTLS.`;
  if (denialsOnly && actors.length > 1 && targets.length === 1) return `Denials of ${actors.length} callers (${listNames(actors)}) at ${what}: one policy likely broke their access.`;
  if (lead === 'deny_spike') return `Denial spike of ${who} at ${what}.`;
  return `New service-to-service edges from ${who} to ${what}.`;
}

/**
 * For TLS failures only: the workload the members have in common (named as a failing workload or
 * as a peer by the most members; its certificate is the likely cause), under every name it goes
 * by, and the other workloads involved.
 */
export function findCertificateFocus(members: readonly MemberFacts[]): { culprit: string[]; peers: string[] } {
  const counts = new Map<string, { members: number; asWorkload: number }>();
  for (const m of members) {
    const seen = new Set([...(m.tlsWorkload ? [m.tlsWorkload] : []), ...m.tlsPeers].flatMap(aliasesOf));
    for (const alias of seen) {
      const c = counts.get(alias) ?? { members: 0, asWorkload: 0 };
      c.members++;
      if (m.tlsWorkload && aliasesOf(m.tlsWorkload).includes(alias)) c.asWorkload++;
      counts.set(alias, c);
    }
  }
  let top: string | undefined;
  let best = { members: 0, asWorkload: 0 };
  for (const [alias, c] of counts) {
    if (c.members > best.members || (c.members === best.members && c.asWorkload > best.asWorkload)) {
      top = alias;
      best = c;
    }
  }
  const names = [...new Set(members.flatMap((m) => [...(m.tlsWorkload ? [m.tlsWorkload] : []), ...m.tlsPeers]))];
  if (top === undefined) return { culprit: [], peers: names };
  const culprit = names.filter((n) => aliasesOf(n).includes(top as string));
  return { culprit, peers: names.filter((n) => !culprit.includes(n)) };
}

/** A member's facts as shown in `evidence.member_facts` (snake_case, ISO times). */
function toMemberRecord(m: MemberFacts): Record<string, unknown> {
  return {
    detector: m.detector,
    status: m.status,
    severity: m.severity,
    actors: m.actors,
    link_actors: m.linkActors ?? m.actors,
    targets: m.targets,
    scanned: m.scanned,
    tls_workload: m.tlsWorkload,
    tls_peers: m.tlsPeers,
    tls_reason: m.tlsReason,
    policies: m.policies ?? [],
    ...(m.detector === 'fanout' ? { tls_only: m.tlsOnly === true } : {}),
    ...(m.ipIdentities && m.ipIdentities.length > 0 ? { ip_identities: m.ipIdentities } : {}),
    first_seen: ISO(m.firstSeenMs),
    last_seen: ISO(m.lastSeenMs),
    summary: m.summary,
  };
}

/** Reads back `toMemberRecord` (a restart); missing fields get neutral values. */
function fromMemberRecord(value: unknown): MemberFacts {
  const r = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const severity = text(r.severity);
  return {
    detector: text(r.detector) ?? 'unknown',
    status: r.status === 'resolved' ? 'resolved' : 'firing',
    severity: severity !== null && (SEVERITIES as readonly string[]).includes(severity) ? (severity as Severity) : 'info',
    actors: readStrings(r.actors),
    linkActors: readStrings(r.link_actors),
    targets: readStrings(r.targets),
    scanned: readStrings(r.scanned),
    tlsWorkload: text(r.tls_workload),
    tlsPeers: readStrings(r.tls_peers),
    tlsReason: text(r.tls_reason),
    policies: readStrings(r.policies),
    ...(r.detector === 'fanout' ? { tlsOnly: r.tls_only === true } : {}),
    ...(readStrings(r.ip_identities).length > 0 ? { ipIdentities: readStrings(r.ip_identities) } : {}),
    firstSeenMs: Date.parse(String(r.first_seen)) || 0,
    lastSeenMs: Date.parse(String(r.last_seen)) || 0,
    summary: text(r.summary) ?? '',
  };
}

/** Creates a correlator; see the file comment for how anomalies are grouped. */
export function createIncidentCorrelator(options: Partial<IncidentOptions> = {}): IncidentCorrelator {
  const opts: IncidentOptions = { ...DEFAULT_INCIDENT_OPTIONS, ...options };
  const linkGapMs = opts.linkGapSeconds * 1000;
  const reopenMs = opts.reopenSeconds * 1000;
  const holdMs = opts.holdSeconds * 1000;
  const states = new Map<string, State>();
  /** Member anomaly id → incident id. */
  const byAnomaly = new Map<string, string>();
  /** Incidents merged into another: kept for all(), resolved. */
  const merged = new Map<string, State>();
  let nowMs = -Infinity;

  const snapshot = (s: State): Incident => structuredClone(s.incident);

  /** Recomputes the derived fields from the members; returns true when something visible changed. */
  function refresh(s: State): void {
    const members = [...s.members.values()];
    const actors: string[] = [];
    const targets: string[] = [];
    for (const m of members) {
      for (const a of m.actors) if (!actors.includes(a)) actors.push(a);
    }
    for (const m of members) for (const t of m.targets) if (!targets.includes(t) && !actors.includes(t)) targets.push(t);
    const certificate = certificateView(members);
    if (certificate.length > 1 && certificate.every((m) => m.detector === 'mtls_failure')) {
      // One certificate: the workload all the failures have in common acts; the others are its peers.
      const focus = findCertificateFocus(certificate);
      if (focus.culprit.length > 0) {
        actors.splice(0, actors.length, ...focus.culprit);
        targets.splice(0, targets.length, ...focus.peers);
      }
    }
    let severity: Severity = s.incident.severity;
    for (const m of members) if (rankSeverity(m.severity) > rankSeverity(severity)) severity = m.severity;
    s.firstSeenMs = Math.min(...members.map((m) => m.firstSeenMs));
    s.lastSeenMs = Math.max(s.lastSeenMs, ...members.map((m) => m.lastSeenMs));
    const inc = s.incident;
    inc.severity = severity;
    inc.actors = actors.slice(0, opts.maxListed);
    inc.targets = targets.slice(0, opts.maxListed);
    inc.first_seen = ISO(s.firstSeenMs);
    inc.last_seen = ISO(s.lastSeenMs);
    inc.title = buildTitle(s.members, actors, targets);
    const detectors: Record<string, number> = {};
    for (const m of members) detectors[m.detector] = (detectors[m.detector] ?? 0) + 1;
    const kind = KIND_BY_DETECTOR[KIND_ORDER.find((d) => d in detectors) ?? ''] ?? 'other';
    inc.evidence = {
      ...inc.evidence,
      kind,
      actor_named: actors.length > 0,
      detectors,
      actor_count: actors.length,
      target_count: targets.length,
      members_firing: members.filter((m) => m.status === 'firing').length,
      member_facts: Object.fromEntries([...s.members].map(([id, m]) => [id, toMemberRecord(m)])),
      ...(s.timelineDropped > 0 ? { timeline_dropped: s.timelineDropped } : {}),
    };
  }

  function addTimeline(s: State, anomaly: Anomaly, change: IncidentTimelineEntry['change'], atMs: number): void {
    const entry: IncidentTimelineEntry = { at: ISO(atMs), anomaly: anomaly.id, detector: anomaly.detector, change, severity: anomaly.severity, summary: anomaly.summary };
    if (s.incident.timeline.length >= opts.maxTimelineEntries) s.timelineDropped++;
    else s.incident.timeline.push(entry);
  }

  /** Pages incidents whose hold ran out by `toMs`, in event-time order; each gets detected_at = the moment it would have paged. */
  function releaseHolds(toMs: number, strict: boolean): IncidentChange[] {
    const due = [...states.values()]
      .filter((s) => s.incident.status === 'firing' && !s.incident.notify && isPagingSeverity(s.incident.severity) && (strict ? s.holdUntilMs < toMs : s.holdUntilMs <= toMs))
      .sort((a, b) => a.holdUntilMs - b.holdUntilMs || a.incident.id.localeCompare(b.incident.id));
    return due.map((s) => {
      s.incident.notify = true;
      s.incident.detected_at = ISO(Math.max(s.holdUntilMs, s.openedAtMs));
      return { incident: snapshot(s), change: 'updated' as const };
    });
  }

  /**
   * True while an incident waits before it pages: it names no actor (the scan that explains it may
   * claim it), or it is only fan-outs of failed TLS handshakes (the certificate finding that
   * explains them may claim them; a scan still pages when the hold runs out).
   */
  function needsHold(s: State): boolean {
    if (s.incident.actors.length === 0) return true;
    const members = [...s.members.values()];
    return members.length > 0 && members.every((m) => m.detector === 'fanout' && m.tlsOnly === true);
  }

  /** Sets notify when the incident may page now; returns true when it changed. */
  function maybeNotify(s: State, atMs: number): boolean {
    if (s.incident.notify || s.incident.status !== 'firing' || !isPagingSeverity(s.incident.severity)) return false;
    if (needsHold(s)) {
      s.holdUntilMs = Math.min(s.holdUntilMs, s.openedAtMs + holdMs);
      if (atMs < s.holdUntilMs) return false;
    }
    s.incident.notify = true;
    s.incident.detected_at = ISO(atMs);
    return true;
  }

  function linkable(s: State, facts: MemberFacts): boolean {
    if (s.incident.status === 'firing') return true;
    return s.incident.evidence.merged_into === undefined && facts.firstSeenMs - s.lastSeenMs <= linkGapMs;
  }

  function open(anomaly: Anomaly, facts: MemberFacts, atMs: number): IncidentChange[] {
    const candidates: Array<{ s: State; reason: string }> = [];
    for (const s of states.values()) {
      if (!linkable(s, facts)) continue;
      const reason = findLink(facts, s.members);
      if (reason) candidates.push({ s, reason });
    }
    if (candidates.length === 0) {
      // The same actor at the same target again soon after: the incident reopens (the latest one).
      let latest: State | undefined;
      for (const s of states.values()) {
        if (s.incident.status !== 'resolved' || s.incident.evidence.merged_into !== undefined) continue;
        const gap = facts.firstSeenMs - s.lastSeenMs;
        if (gap > reopenMs || !sameActorAndTarget(facts, s.members)) continue;
        if (!latest || s.lastSeenMs > latest.lastSeenMs) latest = s;
      }
      if (latest) candidates.push({ s: latest, reason: 'reopened_same_actor_target' });
    }
    const changes: IncidentChange[] = [];
    if (candidates.length === 0) {
      const id = `inc-${createHash('sha256').update(`incident\u0000${anomaly.id}`).digest('hex').slice(0, 20)}`;
      const s: State = {
        incident: {
          id,
          title: '',
          severity: anomaly.severity,
          status: 'firing',
          first_seen: anomaly.first_seen,
          detected_at: ISO(atMs),
          last_seen: anomaly.last_seen,
          actors: [],
          targets: [],
          members: [anomaly.id],
          timeline: [],
          evidence: { links: {} },
          notify: false,
        },
        members: new Map([[anomaly.id, facts]]),
        firstSeenMs: facts.firstSeenMs,
        lastSeenMs: facts.lastSeenMs,
        openedAtMs: atMs,
        holdUntilMs: facts.actors.length === 0 || (facts.detector === 'fanout' && facts.tlsOnly === true) ? atMs + holdMs : atMs,
        timelineDropped: 0,
      };
      states.set(id, s);
      byAnomaly.set(anomaly.id, id);
      addTimeline(s, anomaly, 'opened', atMs);
      refresh(s);
      maybeNotify(s, atMs);
      changes.push({ incident: snapshot(s), change: 'opened' });
      return changes;
    }
    // The survivor: the incident that paged first, else the oldest.
    candidates.sort(
      (a, b) =>
        Number(b.s.incident.notify) - Number(a.s.incident.notify) ||
        (a.s.incident.notify ? Date.parse(a.s.incident.detected_at) - Date.parse(b.s.incident.detected_at) : 0) ||
        a.s.openedAtMs - b.s.openedAtMs ||
        a.s.incident.id.localeCompare(b.s.incident.id),
    );
    const [first, ...others] = candidates as [{ s: State; reason: string }, ...Array<{ s: State; reason: string }>];
    const target = first.s;
    const links = target.incident.evidence.links as Record<string, string>;
    links[anomaly.id] = first.reason;
    for (const { s: other, reason } of others) {
      for (const [id, m] of other.members) {
        target.members.set(id, m);
        target.incident.members.push(id);
        byAnomaly.set(id, target.incident.id);
        const otherLinks = other.incident.evidence.links as Record<string, string>;
        links[id] = otherLinks[id] ?? `merged:${reason}`;
      }
      for (const entry of other.incident.timeline) target.incident.timeline.push(entry);
      target.incident.timeline.sort((a, b) => a.at.localeCompare(b.at));
      target.incident.timeline.splice(opts.maxTimelineEntries);
      target.incident.evidence.merged = [...readStrings(target.incident.evidence.merged), other.incident.id];
      if (other.incident.notify) target.incident.evidence.merged_paged = [...readStrings(target.incident.evidence.merged_paged), other.incident.id];
      other.incident.status = 'resolved';
      other.incident.evidence = { ...other.incident.evidence, merged_into: target.incident.id };
      other.incident.last_seen = ISO(Math.max(other.lastSeenMs, 0));
      states.delete(other.incident.id);
      changes.push({ incident: snapshot(other), change: 'resolved' });
      if (opts.keepResolved) merged.set(other.incident.id, other);
    }
    target.members.set(anomaly.id, facts);
    target.incident.members.push(anomaly.id);
    byAnomaly.set(anomaly.id, target.incident.id);
    const reopened = target.incident.status === 'resolved';
    target.incident.status = 'firing';
    if (reopened) {
      target.incident.evidence.reopened = ((target.incident.evidence.reopened as number | undefined) ?? 0) + 1;
      // Paged before: the reopened incident is not a new page (the incidents stage counts on this).
      if (target.incident.notify) target.incident.evidence.paged_before_reopen = true;
    }
    addTimeline(target, anomaly, reopened ? 'reopened' : 'opened', atMs);
    refresh(target);
    maybeNotify(target, atMs);
    changes.push({ incident: snapshot(target), change: 'updated' });
    return changes;
  }

  /** Live mode: forgets incidents resolved long enough ago that nothing can join them any more. */
  function forget(): void {
    if (opts.keepResolved) return;
    for (const [id, s] of states) {
      if (s.incident.status !== 'resolved' || nowMs - s.lastSeenMs <= Math.max(linkGapMs, reopenMs) + FORGET_AFTER_MS) continue;
      states.delete(id);
      for (const member of s.incident.members) if (byAnomaly.get(member) === id) byAnomaly.delete(member);
    }
  }

  function observe(anomaly: Anomaly, change: MemberChange): IncidentChange[] {
    const atMs = change === 'opened' && anomaly.detected_at ? Date.parse(anomaly.detected_at) : Date.parse(anomaly.last_seen);
    const changes = releaseHolds(atMs, true);
    nowMs = Math.max(nowMs, atMs);
    const facts = describeAnomaly(anomaly);
    const incidentId = byAnomaly.get(anomaly.id);
    const s = incidentId === undefined ? undefined : states.get(incidentId);
    if (!s) {
      // Unknown anomaly (opened before a restart without its incident): treat an update as an opening.
      if (change === 'resolved') return changes;
      return [...changes, ...open(anomaly, facts, nowMs)];
    }
    const before = s.members.get(anomaly.id);
    s.members.set(anomaly.id, { ...facts, firstSeenMs: Math.min(facts.firstSeenMs, before?.firstSeenMs ?? Infinity) });
    addTimeline(s, anomaly, change, atMs);
    const wasFiring = s.incident.status === 'firing';
    const anyFiring = [...s.members.values()].some((m) => m.status === 'firing');
    s.incident.status = anyFiring ? 'firing' : 'resolved';
    refresh(s);
    maybeNotify(s, nowMs);
    changes.push({ incident: snapshot(s), change: wasFiring && !anyFiring ? 'resolved' : 'updated' });
    return changes;
  }

  return {
    observe,
    advanceTo(watermarkMs) {
      nowMs = Math.max(nowMs, watermarkMs);
      const changes = releaseHolds(nowMs, false);
      forget();
      return changes;
    },
    finish(finalWatermarkMs) {
      nowMs = Math.max(nowMs, finalWatermarkMs);
      return releaseHolds(nowMs, false);
    },
    all() {
      return [...states.values(), ...merged.values()].map(snapshot).sort((a, b) => a.first_seen.localeCompare(b.first_seen) || a.id.localeCompare(b.id));
    },
    restore(incidents) {
      for (const incident of incidents) {
        if (incident.status !== 'firing' || states.has(incident.id)) continue;
        const facts = incident.evidence.member_facts;
        const members = new Map<string, MemberFacts>();
        if (facts && typeof facts === 'object') for (const [id, m] of Object.entries(facts as Record<string, unknown>)) members.set(id, fromMemberRecord(m));
        const lastSeenMs = Date.parse(incident.last_seen);
        const s: State = {
          incident: structuredClone(incident),
          members,
          firstSeenMs: Date.parse(incident.first_seen),
          lastSeenMs,
          openedAtMs: Date.parse(incident.detected_at),
          holdUntilMs: Date.parse(incident.detected_at) + (incident.actors.length === 0 ? holdMs : 0),
          timelineDropped: Number(incident.evidence.timeline_dropped ?? 0),
        };
        states.set(incident.id, s);
        for (const id of incident.members) byAnomaly.set(id, incident.id);
        nowMs = Math.max(nowMs, lastSeenMs);
      }
    },
  };
}
