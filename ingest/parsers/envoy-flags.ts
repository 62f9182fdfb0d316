// Envoy's %RESPONSE_FLAGS%: parsing (short codes and long names), which flags mean the proxy
// could not serve the request, and each flags text parsed once into a shared FlagSet.
import { createStringMemo } from './string-memo.ts';

/** `%RESPONSE_FLAGS_LONG%` names → the short codes `%RESPONSE_FLAGS%` prints. */
export const LONG_FLAGS: ReadonlyMap<string, string> = new Map([
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
 * error, overload, rate limit, fault): the one list every reader of Envoy flags uses (access logs,
 * Istio metrics). `DC`/`DR` (the client left) and `DI`/`RFCF` are not failures; `UAEX` and `RBAC`
 * are denials, decided apart.
 */
export const FAILURE_FLAGS: ReadonlySet<string> = new Set([
  'UH', 'UF', 'UO', 'NR', 'URX', 'NC', 'DT', 'LH', 'UT', 'LR', 'UR', 'UC', 'FI', 'RL', 'RLSE',
  'IH', 'SI', 'DPE', 'UPE', 'UMSDR', 'NFCF', 'OM', 'DF', 'DO', 'UDO',
]);

/** True when one of `flags` says the proxy could not serve the request (FAILURE_FLAGS). */
export function hasFailureFlag(flags: readonly string[]): boolean {
  for (const flag of flags) if (FAILURE_FLAGS.has(flag)) return true;
  return false;
}

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

/**
 * One `%RESPONSE_FLAGS%` text, parsed, with what the decision asks of it. Flag texts repeat on
 * nearly every line (`-`, `UF,URX`, `UAEX`), so each is parsed once (flagSetOf) and its frozen
 * list is shared by every event that carries it.
 */
export interface FlagSet {
  readonly flags: readonly string[];
  readonly rbac: boolean;
  readonly uaex: boolean;
  /** The flags joined with `,` when one of them is an error flag, else ''. */
  readonly errorReason: string;
}

const NO_FLAGS: FlagSet = flagSetOfList([]);
const flagSets = createStringMemo<FlagSet>(1024);

/** The FlagSet of a parsed list of flags (a new one each call; see flagSetOf for the memo). */
export function flagSetOfList(list: readonly string[]): FlagSet {
  // Well-formed from the start: the shared list is frozen, so repairEvent must find nothing to fix.
  const flags = Object.freeze(list.map((flag) => flag.toWellFormed()));
  return {
    flags,
    rbac: flags.includes('RBAC'),
    uaex: flags.includes('UAEX'),
    errorReason: hasFailureFlag(flags) ? flags.join(',') : '',
  };
}

/** The shared FlagSet of one `%RESPONSE_FLAGS%` text, parsed once per distinct text. */
export function flagSetOf(text: string): FlagSet {
  if (text === '' || text === '-') return NO_FLAGS;
  let set = flagSets.get(text);
  if (set === undefined) {
    set = flagSetOfList(parseResponseFlags(text));
    flagSets.set(text, set);
  }
  return set;
}
