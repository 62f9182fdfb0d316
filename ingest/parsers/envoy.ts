// Envoy and Istio access logs in any of their encodings: each record is read as JSON when it
// starts with `{`, as text otherwise, so one file or request may mix both.
import type { ParseOptions, ParseResult } from '../../core/event.ts';
import { parseEnvoyJson } from './envoy-json.ts';
import { parseEnvoyText } from './envoy-text.ts';

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
