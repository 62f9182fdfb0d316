import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scanLogfmt } from '../../../ingest/parsers/logfmt.ts';

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
