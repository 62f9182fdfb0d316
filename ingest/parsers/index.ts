// The parser registry: every input format ztwatch reads, by the name used in
// `POST /v1/ingest/{format}` and `--format`, and format detection for mixed files.
// To add a format: its declaration (FormatDeclaration, format.ts) in its module, one entry in
// FORMATS, and one check in DETECTORS (ordered: first match wins).
import { ENVOY_FORMAT, ISTIO_FORMAT } from './envoy.ts';
import type { FormatDeclaration } from './format.ts';
import { HUBBLE_FORMAT } from './hubble.ts';
import { OAUTH2_PROXY_FORMAT, POMERIUM_FORMAT, looksLikeOauth2Proxy, looksLikePomerium } from './iap.ts';
import { K8S_AUDIT_FORMAT, looksLikeK8sAudit } from './k8s-audit.ts';
import { LINKERD_FORMAT, looksLikeLinkerd } from './linkerd.ts';
import { OPA_FORMAT } from './opa.ts';
import { ZTUNNEL_FORMAT } from './ztunnel.ts';

/** A registered format (what its module declares). */
export type ParserEntry = FormatDeclaration;

/** Every format, in the order the docs list them. */
export const FORMATS: readonly FormatDeclaration[] = [ENVOY_FORMAT, ISTIO_FORMAT, ZTUNNEL_FORMAT, OPA_FORMAT, HUBBLE_FORMAT, LINKERD_FORMAT, OAUTH2_PROXY_FORMAT, POMERIUM_FORMAT, K8S_AUDIT_FORMAT];

/** Every format, by name. */
export const PARSERS: Readonly<Record<string, ParserEntry>> = Object.freeze(Object.fromEntries(FORMATS.map((f) => [f.name, f])));

/** Reasons for records that stand for no request (every format's `skipReasons`): dropped, not dead-lettered. */
export const SKIP_REASONS: ReadonlySet<string> = new Set(FORMATS.flatMap((f) => f.skipReasons));

/** How much of a record detection looks at, in characters. */
const DETECT_PREFIX_CHARS = 4096;

/** One detection rule: `head` is the record's first characters without leading blanks. */
interface FormatCheck {
  readonly format: string;
  readonly matches: (head: string) => boolean;
}

const isJson = (head: string): boolean => head.charCodeAt(0) === 123; /* { */
const hasAny = (head: string, needles: readonly string[]): boolean => needles.some((n) => head.includes(n));

const ENVOY_JSON_KEYS = ['"start_time"', '"response_code"', '"upstream_cluster"', '"downstream_remote_address"', '"response_flags"'];
const ZTUNNEL_TEXT = /^(\S+\s+)?(trace|debug|info|warn|error)\s+access\s/i;

/** Ordered checks: the first that matches names the format. JSON shapes first, then text. */
const DETECTORS: readonly FormatCheck[] = [
  { format: 'hubble', matches: (h) => isJson(h) && (h.startsWith('{"flow":') || (h.includes('"verdict"') && h.includes('"IP"'))) },
  { format: 'opa', matches: (h) => isJson(h) && (h.includes('"decision_id"') || h.includes('openpolicyagent.org/decision_logs')) },
  { format: 'ztunnel', matches: (h) => isJson(h) && h.includes('"scope":"access"') && hasAny(h, ['"src.addr"', '"dst.addr"']) },
  { format: 'k8s-audit', matches: looksLikeK8sAudit },
  { format: 'pomerium', matches: looksLikePomerium },
  { format: 'linkerd', matches: looksLikeLinkerd },
  { format: 'oauth2-proxy', matches: looksLikeOauth2Proxy },
  { format: 'envoy', matches: (h) => isJson(h) && hasAny(h, ENVOY_JSON_KEYS) },
  // OPA console output behind a fluentd/kubectl prefix: `<time>\t<tag>\t{"decision_id":…}`.
  { format: 'opa', matches: (h) => !isJson(h) && h.includes('{"') && h.includes('"decision_id"') },
  { format: 'ztunnel', matches: (h) => ZTUNNEL_TEXT.test(h) && hasAny(h, ['src.addr=', 'dst.addr=']) },
  { format: 'envoy', matches: (h) => isEnvoyText(h) },
];

/** `[2020-…] "GET …` (optionally after a short `<pod> <container>` prefix), Envoy's app log, or `DOWNSTREAM_…=` pairs. */
function isEnvoyText(head: string): boolean {
  if (head.startsWith('DOWNSTREAM_') || head.startsWith('UPSTREAM_') || head.startsWith('START_TIME=')) return head.includes('=');
  const open = head.charCodeAt(0) === 91 ? 0 : head.indexOf(' [');
  if (open < 0 || open > 512) return false;
  const at = open === 0 ? 0 : open + 1;
  const c = head.charCodeAt(at + 1);
  if (c < 48 || c > 57) return false;
  const close = head.indexOf(']', at);
  if (close < 0 || close - at > 64) return false;
  const next = head.charCodeAt(close + 1);
  return next === 91 /* [ app log */ || head.startsWith(' "', close + 1);
}

/** Guesses the format of one record; undefined when nothing matches. Cheap: looks at a prefix. */
export function detectFormat(line: string): string | undefined {
  let start = 0;
  while (start < line.length && start < 256) {
    const c = line.charCodeAt(start);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13 && c !== 0xfeff) break;
    start++;
  }
  const head = line.slice(start, start + DETECT_PREFIX_CHARS);
  for (const check of DETECTORS) {
    if (check.matches(head)) return check.format;
  }
  return undefined;
}
