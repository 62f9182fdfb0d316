import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseTimestampMs } from '../../../ingest/parsers/timestamps.ts';

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

describe('parseDurationMs', () => {
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
