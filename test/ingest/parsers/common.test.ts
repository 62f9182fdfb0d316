// Shared parser helpers: timestamps, numbers, addresses, durations, logfmt, TLS failure reasons,
// the string memo. Properties (fast-check) where a rule is general, tables where it is a spelling.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressHost,
  addressPort,
  createStringMemo,
  MAX_MEMO_KEY_CHARS,
  normalizeTlsFailure,
  parseDecimal,
  parseDurationMs,
  parseTimestampMs,
  readCount,
  readStatus,
  readText,
  scanLogfmt,
  splitHostPort,
  traceIdFromTraceparent,
} from '../../../ingest/parsers/common.ts';

describe('parseTimestampMs', () => {
  it.each([
    ['2016-04-15T20:17:00.310Z', Date.UTC(2016, 3, 15, 20, 17, 0, 310)],
    ['2021-10-04T14:28:43.062066108Z', Date.UTC(2021, 9, 4, 14, 28, 43, 62)],
    ['2024-09-23T22:32:47+00:00', Date.UTC(2024, 8, 23, 22, 32, 47)],
    ['2024-09-23T22:32:47.5-02:30', Date.UTC(2024, 8, 24, 1, 2, 47, 500)],
    ['2024-09-23T22:32:47+0100', Date.UTC(2024, 8, 23, 21, 32, 47)],
    ['2024-09-26 11:40:13.329', Date.UTC(2024, 8, 26, 11, 40, 13, 329)],
    ['2024/12/12 16:22:57', Date.UTC(2024, 11, 12, 16, 22, 57)],
    ['2024-02-29', Date.UTC(2024, 1, 29)],
    ['1970-01-01T00:20:34.567800Z', 1_234_567],
    ['1600000000', 1_600_000_000_000],
    ['1600000000.123', 1_600_000_000_123],
    [1_700_000_000_000, 1_700_000_000_000],
    [1_700_000_000, 1_700_000_000_000],
  ])('%j → %i', (input, expected) => {
    expect(parseTimestampMs(input)).toBe(expected);
  });

  it.each(['', '-', 'yesterday', '2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01T00:00:00Q', '2024-01-01T00:00:00.Z', null, undefined, {}, -5, Number.NaN])(
    'rejects %j',
    (input) => {
      expect(parseTimestampMs(input)).toBeUndefined();
    },
  );

  it('agrees with Date.parse on every ISO time with milliseconds and zone Z', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(Date.UTC(1971, 0, 1)), max: new Date(Date.UTC(2200, 0, 1)), noInvalidDate: true }), (date) => {
        const iso = date.toISOString();
        expect(parseTimestampMs(iso)).toBe(date.getTime());
        expect(parseTimestampMs(iso.replace('Z', '123456Z'))).toBe(date.getTime());
        expect(parseTimestampMs(iso.replace('T', ' ').replace('Z', ''))).toBe(date.getTime());
        expect(parseTimestampMs(iso.replace(/\.\d+Z$/, 'Z'))).toBe(date.getTime() - date.getUTCMilliseconds());
      }),
    );
  });

  it('reads consecutive times across minute, day and year boundaries (the fast path remembers the last minute)', () => {
    const times = ['2024-12-31T23:58:59.999Z', '2024-12-31T23:59:00.000Z', '2024-12-31T23:59:59Z', '2025-01-01T00:00:00.001Z', '2025-01-01T00:00:07Z', '2024-12-31T23:59:30.500Z'];
    for (const time of times) expect(parseTimestampMs(time), time).toBe(Date.parse(time));
    // A bad second after a good line of the same minute is still refused.
    expect(parseTimestampMs('2025-01-01T00:00:6x.000Z')).toBeUndefined();
    expect(parseTimestampMs('2025-01-01T00:00:61Z')).toBeUndefined();
  });

  it('refuses a wrong separator in the date or time, on the fast path too', () => {
    for (const bad of ['2025x01-15T12:00:00.000Z', '2025-01x15T12:00:00.000Z', '2025-01-15x12:00:00.000Z', '2025-01-15T12x00:00.000Z', '2025-01-15T12:00x00.000Z']) {
      // Once with a different minute cached, once right after the same minute was read well.
      expect(parseTimestampMs(bad), bad).toBeUndefined();
      expect(parseTimestampMs('2025-01-15T12:00:00.000Z')).toBe(Date.UTC(2025, 0, 15, 12));
      expect(parseTimestampMs(bad), bad).toBeUndefined();
    }
  });
});

describe('numbers and text', () => {
  it('reads Envoy values typed or untyped', () => {
    expect([readText('-'), readText(null), readText(undefined), readText('x'), readText(12), readText(true)]).toEqual(['', '', '', 'x', '12', 'true']);
    expect([readCount('56'), readCount(56), readCount('-'), readCount(null), readCount(-3), readCount('1.9'), readCount('1e3'), readCount('12abc')]).toEqual([56, 56, 0, 0, 0, 1, 0, 0]);
    expect([readStatus('0'), readStatus(200), readStatus('503'), readStatus(1000), readStatus('-')]).toEqual([0, 200, 503, 0, 0]);
    expect([parseDecimal('123'), parseDecimal('1.25'), parseDecimal(''), parseDecimal('.'), parseDecimal('1.2.3')]).toEqual([123, 1.25, Number.NaN, Number.NaN, Number.NaN]);
    expect(traceIdFromTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(traceIdFromTraceparent('garbage')).toBe('');
  });

  it.each([
    ['7571ms', 7571],
    ['0ms', 0],
    ['1.5s', 1500],
    ['250us', 0],
    ['2500µs', 2],
    ['3m', 180_000],
    ['42', 42],
    ['', 0],
    ['fast', 0],
    ['5h', 0],
  ])('parseDurationMs(%j) = %i', (text, expected) => {
    expect(parseDurationMs(text)).toBe(expected);
  });
});

describe('addresses', () => {
  it.each([
    ['10.0.0.1:8080', '10.0.0.1', 8080],
    ['[fe80::1]:443', 'fe80::1', 443],
    ['tcp://10.0.2.1:80', '10.0.2.1', 80],
    ['tcp://[::1]:80', '::1', 80],
    ['fe80::64d8:8aff:fe72:fc14', 'fe80::64d8:8aff:fe72:fc14', 0],
    ['[::1]', '::1', 0],
    ['host', 'host', 0],
    ['X.X.X.X:0', 'X.X.X.X', 0],
    ['REDACTED_IP1:7600', 'REDACTED_IP1', 7600],
    ['10.1.1.1:99999', '10.1.1.1', 0],
    ['-', '', 0],
    ['', '', 0],
  ])('%j → %j %i', (address, host, port) => {
    expect(splitHostPort(address)).toEqual({ host, port });
    expect([addressHost(address), addressPort(address)]).toEqual([host, port]);
  });
});

describe('scanLogfmt', () => {
  it('reads quoted and bare values, skips words, unescapes', () => {
    const fields: Array<[string, string]> = [];
    scanLogfmt('connection complete\tsrc.addr=10.0.0.1:5 src.workload="a b" error="say \\"no\\"" flag= x=1 "quoted words" y=2', 0, (k, v) => fields.push([k, v]));
    expect(fields).toEqual([
      ['src.addr', '10.0.0.1:5'],
      ['src.workload', 'a b'],
      ['error', 'say "no"'],
      ['flag', ''],
      ['x', '1'],
      ['y', '2'],
    ]);
  });

  it('never throws and stays linear on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        let count = 0;
        scanLogfmt(text, 0, () => count++);
        expect(count).toBeLessThanOrEqual(text.length);
      }),
    );
  });
});

describe('normalizeTlsFailure', () => {
  it.each([
    ['TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end', 'CERTIFICATE_VERIFY_FAILED'],
    ['TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED', 'CERTIFICATE_VERIFY_FAILED'],
    ['TLS error: 268436501:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_EXPIRED', 'SSLV3_ALERT_CERTIFICATE_EXPIRED'],
    ['TLS_error:|268436504:SSL_routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA:TLS_error_end', 'TLSV1_ALERT_UNKNOWN_CA'],
    ['TLS_error:|268435603:SSL_routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE:TLS_error_end', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
    ['peer did not return a certificate', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
    ['SSLV3_ALERT_HANDSHAKE_FAILURE', 'SSLV3_ALERT_HANDSHAKE_FAILURE'],
    ['TLS error: Secret is not supplied by SDS', 'SECRET_NOT_SUPPLIED_BY_SDS'],
    ['received fatal alert: UnknownCA', 'TLSV1_ALERT_UNKNOWN_CA'],
    ['-', ''],
    ['', ''],
    ['via_upstream', ''],
    ['upstream_reset_before_response_started{connection_termination}', ''],
    ['connection refused', ''],
  ])('%j → %j', (text, reason) => {
    expect(normalizeTlsFailure(text)).toBe(reason);
  });

  it('always answers an upper-snake constant or nothing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 40 }), (prefix, reason) => {
        const result = normalizeTlsFailure(`${prefix}OPENSSL_internal:${reason}`);
        expect(result).toMatch(/^[A-Z0-9_]{0,64}$/);
      }),
    );
  });
});

describe('createStringMemo', () => {
  it('returns what was stored for equal strings, and keeps keys that share a bucket apart', () => {
    const memo = createStringMemo<number>(4096);
    memo.set('outbound|9080||reviews.default.svc.cluster.local', 1);
    expect(memo.get(['outbound|9080||reviews', 'default.svc.cluster.local'].join('.'))).toBe(1);
    expect(memo.get('outbound|9080||ratings.default.svc.cluster.local')).toBeUndefined();
    // Names that differ in a few middle characters: every one is kept, none is confused.
    const names = ['reviews', 'ratings', 'details', 'revievs', 'raviews'].flatMap((service) =>
      ['shop', 'shoq', 'payments', 'paymentz'].map((ns) => `outbound_.9080_._.${service}.${ns}.svc.cluster.local`),
    );
    names.forEach((name, i) => memo.set(name, i));
    names.forEach((name, i) => expect(memo.get(name)).toBe(i));
    memo.set(names[0] as string, 99);
    expect(memo.get(names[0] as string)).toBe(99);
    expect(memo.get('')).toBeUndefined();
  });

  it('holds at most its capacity, then starts over', () => {
    const memo = createStringMemo<number>(8);
    for (let i = 0; i < 8; i++) memo.set(`key-${i}`, i);
    for (let i = 0; i < 8; i++) expect(memo.get(`key-${i}`)).toBe(i);
    memo.set('key-8', 8);
    expect(memo.get('key-8')).toBe(8);
    expect(memo.get('key-0')).toBeUndefined();
  });

  it('does not keep keys longer than MAX_MEMO_KEY_CHARS', () => {
    const memo = createStringMemo<number>(8);
    const longest = 'a'.repeat(MAX_MEMO_KEY_CHARS);
    memo.set(longest, 1);
    memo.set(`${longest}b`, 2);
    expect(memo.get(longest)).toBe(1);
    expect(memo.get(`${longest}b`)).toBeUndefined();
  });
});
