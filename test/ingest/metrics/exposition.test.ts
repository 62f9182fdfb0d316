import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseExposition, typeOfSample } from '../../../ingest/metrics/exposition.ts';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

describe('parseExposition on fixtures', () => {
  it.each([
    // file, samples, errors, families with a TYPE line
    ['istio/ztunnel-tcp-metrics.prom', 14, 0, ['istio_build', 'istio_xds_connection_terminations', 'istio_xds_message', 'istio_xds_message_bytes', 'istio_tcp_connections_opened', 'istio_tcp_connections_closed']],
    ['istio/sidecar-http-metrics-excerpt.prom', 4, 0, []],
    ['istio/requests-total-labelset.prom', 1, 0, ['istio_requests_total']],
    ['istio/requests-total-query-result.txt', 1, 0, []],
    ['linkerd/proxy-metrics.prom', 46, 0, ['request_total', 'route_response_total', 'tcp_open_total', 'tcp_open_connections', 'tcp_read_bytes_total', 'tcp_write_bytes_total', 'control_request_total', 'control_response_total']],
  ] as Array<[string, number, number, string[]]>)('%s', (file, samples, errors, families) => {
    const parsed = parseExposition(read(file));
    expect(parsed.samples).toHaveLength(samples);
    expect(parsed.errors).toHaveLength(errors);
    expect(Object.keys(parsed.types).sort()).toEqual([...families].sort());
  });

  it('reads OpenMetrics family names: `# TYPE x counter` covers samples named `x_total`', () => {
    const parsed = parseExposition(read('istio/ztunnel-tcp-metrics.prom'));
    expect(typeOfSample(parsed.types, 'istio_tcp_connections_opened_total')).toBe('counter');
    expect(typeOfSample(parsed.types, 'istio_build')).toBe('gauge');
    expect(typeOfSample(parsed.types, 'istio_xds_message_bytes_total')).toBe('counter');
    expect(typeOfSample(parsed.types, 'nothing_total')).toBeUndefined();
    const opened = parsed.samples.filter((s) => s.name === 'istio_tcp_connections_opened_total');
    expect(opened.map((s) => s.value)).toEqual([831, 55, 294, 52, 267, 831, 831]);
    expect(opened[0]?.labels).toMatchObject({
      reporter: 'destination',
      source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-details',
      connection_security_policy: 'mutual_tls',
    });
    expect(Object.keys(opened[0]?.labels ?? {})).toHaveLength(23);
  });

  it('keeps empty label values (`grpc_response_status=""`)', () => {
    const [first] = parseExposition(read('istio/sidecar-http-metrics-excerpt.prom')).samples;
    expect(first).toMatchObject({ name: 'istio_request_duration_milliseconds_sum', value: 195 });
    expect(first?.labels.grpc_response_status).toBe('');
    expect(first?.labels.destination_service_name).toBe('PassthroughCluster');
  });

  it('joins a series pasted from a query result over many lines', () => {
    const [sample] = parseExposition(read('istio/requests-total-query-result.txt')).samples;
    expect(sample?.name).toBe('istio_requests_total');
    expect(sample?.value).toBe(36);
    expect(Object.keys(sample?.labels ?? {})).toHaveLength(34);
    expect(sample?.labels).toMatchObject({ reporter: 'destination', response_code: '200', source_workload: 'productpage-v1', version: 'v1' });
  });

  it('reads the linkerd proxy identities and TLS labels verbatim', () => {
    const samples = parseExposition(read('linkerd/proxy-metrics.prom')).samples.filter((s) => s.name === 'request_total');
    expect(samples).toHaveLength(12);
    expect(samples[0]?.labels).toEqual({ direction: 'inbound', tls: 'no_identity', no_tls_reason: 'not_provided_by_remote' });
    expect(samples[2]?.labels.server_id).toBe('linkerd-prometheus.linkerd.serviceaccount.identity.linkerd.cluster.local');
    expect(samples.reduce((sum, s) => sum + s.value, 0)).toBe(852 + 1 + 16275 + 1 + 4 + 582 + 10 + 2 + 5 + 1 + 1 + 3);
  });
});

describe('parseExposition edge cases', () => {
  it('unescapes label values, reads special values, timestamps and exemplars', () => {
    const text = [
      '# HELP a_total with "quotes"',
      '# TYPE a_total counter',
      'a_total{path="/x\\"y",note="line\\nbreak",back="c:\\\\dir"} 3 1700000000000',
      'b{} NaN',
      'c +Inf',
      'd -Inf',
      'e 1.5e3',
      'f_total{trace="1"} 7 # {trace_id="abc"} 1.0 1700000000.000',
      'g{a="1",} 2',
      '# EOF',
      'after_eof 1',
    ].join('\n');
    const { samples, errors } = parseExposition(text);
    expect(errors).toEqual([]);
    expect(samples.map((s) => s.name)).toEqual(['a_total', 'b', 'c', 'd', 'e', 'f_total', 'g']);
    expect(samples[0]).toEqual({ name: 'a_total', labels: { path: '/x"y', note: 'line\nbreak', back: 'c:\\dir' }, value: 3, timestamp: 1_700_000_000_000 });
    expect(Number.isNaN(samples[1]?.value)).toBe(true);
    expect(samples[2]?.value).toBe(Number.POSITIVE_INFINITY);
    expect(samples[3]?.value).toBe(Number.NEGATIVE_INFINITY);
    expect(samples[4]?.value).toBe(1500);
    expect(samples[5]?.value).toBe(7);
    expect(samples[6]?.labels).toEqual({ a: '1' });
  });

  it('lists malformed lines with reasons and keeps the good ones', () => {
    const text = ['ok 1', '9bad 1', 'x{a=1} 1', 'y{a="1"', 'z 1 2 3', 'w notanumber', 'v{a="1"} ', 'u 1 yesterday', 'q{a="1', 'ok2 2'].join('\n');
    const { samples, errors } = parseExposition(text);
    expect(samples.map((s) => s.name)).toEqual(['ok', 'ok2']);
    expect(errors).toEqual([
      { line: 2, reason: 'bad_metric_name' },
      { line: 3, reason: 'bad_label_value' },
      { line: 4, reason: 'unterminated_labels' },
      { line: 5, reason: 'trailing_garbage' },
      { line: 6, reason: 'bad_value' },
      { line: 7, reason: 'missing_value' },
      { line: 8, reason: 'bad_timestamp' },
      { line: 9, reason: 'unterminated_label_value' },
    ]);
  });
});
