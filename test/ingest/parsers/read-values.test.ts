import { describe, expect, it } from 'vitest';
import { parseDecimal, readCount, readStatus, readText, traceIdFromTraceparent } from '../../../ingest/parsers/read-values.ts';

describe('numbers and text', () => {
  it('reads Envoy values typed or untyped', () => {
    expect([readText('-'), readText(null), readText(undefined), readText('x'), readText(12), readText(true)]).toEqual(['', '', '', 'x', '12', 'true']);
    expect([readCount('56'), readCount(56), readCount('-'), readCount(null), readCount(-3), readCount('1.9'), readCount('1e3'), readCount('12abc')]).toEqual([56, 56, 0, 0, 0, 1, 0, 0]);
    expect([readStatus('0'), readStatus(200), readStatus('503'), readStatus(1000), readStatus('-')]).toEqual([0, 200, 503, 0, 0]);
    expect([parseDecimal('123'), parseDecimal('1.25'), parseDecimal(''), parseDecimal('.'), parseDecimal('1.2.3')]).toEqual([123, 1.25, Number.NaN, Number.NaN, Number.NaN]);
    expect(traceIdFromTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(traceIdFromTraceparent('garbage')).toBe('');
  });
});
