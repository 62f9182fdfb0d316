// Envoy and Istio access logs in any of their encodings: each record is read as JSON when it
// starts with `{`, as text otherwise, so one file or request may mix both.
import type { ParseOptions, ParseResult } from '../../core/event.ts';
import { parseEnvoyJson } from './envoy-json.ts';
import { parseEnvoyText } from './envoy-text.ts';
import type { FormatDeclaration } from './format.ts';

/** The `envoy` format, as the registry, the pipeline and the docs know it. */
export const ENVOY_FORMAT: FormatDeclaration = {
  name: 'envoy',
  source: 'envoy',
  parse: parseEnvoy,
  description: 'Envoy access logs: default/Istio text formats or JSON (Istio keys, snake_case command operators), per line',
  skipReasons: [],
  envelope: 'records',
  howToSend: '`meshConfig.accessLogEncoding: JSON` and ship the container logs',
  docs: 'docs/ingest-formats.md',
};

/** The `istio` format, as the registry, the pipeline and the docs know it. */
export const ISTIO_FORMAT: FormatDeclaration = {
  name: 'istio',
  source: 'istio',
  parse: parseIstio,
  description: 'Istio sidecar and gateway access logs (Envoy text or JSON), events tagged source istio',
  skipReasons: [],
  envelope: 'records',
  howToSend: '`meshConfig.accessLogEncoding: JSON` and ship the container logs',
  docs: 'docs/ingest-formats.md',
};

function startsWithBrace(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 123 /* { */) return true;
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13 && c !== 0xfeff) return false;
  }
  return false;
}

/** Parses one Envoy access-log record (text or JSON); events carry source `envoy`. */
export function parseEnvoy(line: string, observedTimeMs: number, options?: ParseOptions): ParseResult {
  return startsWithBrace(line) ? parseEnvoyJson(line, observedTimeMs, options, 'envoy') : parseEnvoyText(line, observedTimeMs, options, 'envoy');
}

/** Parses one Istio sidecar/gateway access-log record (Envoy's formats); events carry source `istio`. */
export function parseIstio(line: string, observedTimeMs: number, options?: ParseOptions): ParseResult {
  return startsWithBrace(line) ? parseEnvoyJson(line, observedTimeMs, options, 'istio') : parseEnvoyText(line, observedTimeMs, options, 'istio');
}
