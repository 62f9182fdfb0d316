// The parser registry and format detection: one record of every fixture of this area is detected
// as its format, and records of formats read elsewhere are never claimed by these checks.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SOURCES } from '../../../core/event.ts';
import { PARSERS, detectFormat } from '../../../ingest/parsers/index.ts';
import { splitRecords } from '../../../ingest/records.ts';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);
const MINE = ['envoy', 'istio', 'ztunnel', 'opa', 'hubble'];

function records(path: string): string[] {
  return splitRecords(readFileSync(new URL(path, FIXTURES), 'utf8'), { maxLineBytes: 1 << 20 }).records.filter((r) => !r.startsWith('#'));
}

function firstRecord(path: string, index = 0): string {
  const record = records(path)[index];
  if (record === undefined) throw new Error(`${path}: no record ${index}`);
  return record;
}

describe('PARSERS', () => {
  it('registers the core formats with their sources', () => {
    expect(Object.fromEntries(MINE.map((name) => [name, PARSERS[name]?.source]))).toEqual({
      envoy: 'envoy',
      istio: 'istio',
      ztunnel: 'ztunnel',
      opa: 'opa',
      hubble: 'hubble',
    });
    for (const entry of Object.values(PARSERS)) {
      expect(SOURCES).toContain(entry.source);
      expect(entry.description.length).toBeGreaterThan(10);
    }
  });

  it('parses a detected record with the detected format', () => {
    const line = firstRecord('envoy/istio-default-format.log');
    const format = detectFormat(line) as string;
    const result = PARSERS[format]?.parse(line, OBSERVED);
    expect(result?.ok).toBe(true);
  });
});

describe('detectFormat', () => {
  it.each([
    ['envoy/default-format.log', 0, 'envoy'],
    ['envoy/istio-default-format.log', 0, 'envoy'],
    ['envoy/edge-cases.log', 2, 'envoy'], // custom short format
    ['envoy/edge-cases.log', 3, 'envoy'], // `<pod> <container>` prefix
    ['envoy/rbac-denials.log', 0, 'envoy'],
    ['envoy/rbac-denials.log', 5, 'envoy'], // Envoy's debug log: Envoy's, refused by its parser
    ['envoy/tls-failures.txt', 3, 'envoy'], // `KEY=%OPERATOR%` listener log
    ['envoy/json-format.ndjson', 1, 'envoy'],
    ['envoy/json-typed.ndjson', 0, 'envoy'],
    ['envoy/json-typed-pretty.json', 0, 'envoy'],
    ['opa/decision-log-upload-body.json', 0, 'opa'],
    ['opa/decision-log-console-fluentd.log', 0, 'opa'],
    ['opa/decision-log-masking-examples.txt', 0, 'opa'],
    ['hubble/dropped-policy-denied-exporter.ndjson', 0, 'hubble'],
    ['hubble/dropped-printer-test.jsonpb.ndjson', 0, 'hubble'],
    ['hubble/http-l7-200-response-excerpt.ndjson', 0, 'hubble'],
    ['hubble/http-l7-flows.ndjson', 0, 'hubble'],
    ['hubble/l3l4-forwarded-flows.ndjson', 0, 'hubble'],
    ['hubble/policy-verdict-redirected-excerpt.ndjson', 0, 'hubble'],
    ['istio/ztunnel-access.log', 0, 'ztunnel'],
  ])('%s record %i → %s', (path, index, format) => {
    expect(detectFormat(firstRecord(path, index))).toBe(format);
  });

  it('does not claim an ext_authz policy input (no decision event) for any format', () => {
    expect(detectFormat(firstRecord('opa/envoy-ext-authz-input-v3.json'))).toBeUndefined();
    expect(detectFormat(firstRecord('opa/envoy-ext-authz-input-v2-istio.json'))).toBeUndefined();
  });

  it('detects the typical production spellings', () => {
    expect(detectFormat('2024-07-23T14:21:03.450051Z\tinfo\taccess\tconnection complete\tsrc.addr=10.12.0.8:37522 dst.addr=10.12.0.9:15008')).toBe('ztunnel');
    expect(detectFormat('{"level":"info","time":"2024-10-19T01:39:58Z","scope":"access","message":"connection complete","src.addr":"1.2.3.4:5"}')).toBe('ztunnel');
    expect(detectFormat('  {"start_time":"2024-01-01T00:00:00Z"}')).toBe('envoy');
    expect(detectFormat('{"verdict":"DROPPED","IP":{"source":"1.1.1.1"}}')).toBe('hubble');
    expect(detectFormat('hello')).toBeUndefined();
    expect(detectFormat('')).toBeUndefined();
  });

  it('never claims records of the formats other parsers read (linkerd, iap, k8s-audit, metrics)', () => {
    for (const dir of ['linkerd', 'iap', 'k8s-audit', 'istio']) {
      for (const name of readdirSync(new URL(`${dir}/`, FIXTURES))) {
        if (name === 'README.md' || name === 'ztunnel-access.log') continue;
        for (const record of records(`${dir}/${name}`)) {
          expect(MINE, `${dir}/${name}: ${record.slice(0, 80)}`).not.toContain(detectFormat(record));
        }
      }
    }
  });
});
