// splitRecords: NDJSON, JSON arrays, pretty-printed objects, text lines and mixes of them; bounded
// on huge lines, safe on binary junk and truncated JSON, and nothing valid is lost to a bad neighbour.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REJECTED_RAW_CHARS, splitRecords } from '../../ingest/records.ts';

const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url);
const OPTIONS = { maxLineBytes: 1024 * 1024 };

describe('splitRecords', () => {
  it('splits NDJSON and text lines, skipping blank lines of every kind', () => {
    const body = '\uFEFF{"a":1}\r\n\r\n   \n\t\n{"b":2}\n[2024-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200\n  indented text  \n';
    expect(splitRecords(body, OPTIONS)).toEqual({
      records: ['{"a":1}', '{"b":2}', '[2024-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200', 'indented text'],
      rejected: [],
    });
    expect(splitRecords('', OPTIONS)).toEqual({ records: [], rejected: [] });
    expect(splitRecords('\n\n \r\n', OPTIONS)).toEqual({ records: [], rejected: [] });
  });

  it('splits a JSON array body into its elements, each re-serialized compactly', () => {
    const body = readFileSync(new URL('opa/decision-log-upload-body.json', FIXTURES), 'utf8');
    const { records, rejected } = splitRecords(body, OPTIONS);
    expect(rejected).toEqual([]);
    expect(records).toEqual((JSON.parse(body) as unknown[]).map((e) => JSON.stringify(e)));
    expect(splitRecords('[{"a":"x]"},{"b":"}{\\"["} , {"c":[1,{"d":2}]}]', OPTIONS).records).toEqual(['{"a":"x]"}', '{"b":"}{\\"["}', '{"c":[1,{"d":2}]}']);
    expect(splitRecords('[]', OPTIONS)).toEqual({ records: [], rejected: [] });
    expect(splitRecords('[ ]\n{"after":1}', OPTIONS).records).toEqual(['{"after":1}']);
  });

  it('joins pretty-printed objects, one after another, and keeps text lines around them', () => {
    const pretty = readFileSync(new URL('envoy/json-typed-pretty.json', FIXTURES), 'utf8');
    const body = `# first\n${pretty}\n${pretty}{\n  "x": {\n    "y": [1, 2]\n  }\n}\nplain line\n`;
    const { records, rejected } = splitRecords(body, OPTIONS);
    expect(rejected).toEqual([]);
    expect(records).toEqual(['# first', JSON.stringify(JSON.parse(pretty)), JSON.stringify(JSON.parse(pretty)), '{"x":{"y":[1,2]}}', 'plain line']);
  });

  it('passes an invalid pretty block on whole (for its parser to reject), as in the OPA masking doc', () => {
    const body = readFileSync(new URL('opa/decision-log-masking-examples.txt', FIXTURES), 'utf8');
    const { records, rejected } = splitRecords(body, OPTIONS);
    expect(rejected).toEqual([]);
    expect(records.filter((r) => r.startsWith('#'))).toHaveLength(5);
    const blocks = records.filter((r) => r.startsWith('{'));
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      expect(block).toContain('8<');
      expect(block.trimEnd().endsWith('}')).toBe(true);
    }
  });

  it('rejects a 10 MB line as record_too_long with a cut-down raw, and keeps its neighbours', () => {
    const huge = `{"path":"/${'a'.repeat(10 * 1024 * 1024)}"}`;
    const { records, rejected } = splitRecords(`{"before":1}\n${huge}\n{"after":2}\n`, OPTIONS);
    expect(records).toEqual(['{"before":1}', '{"after":2}']);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toBe('record_too_long');
    expect(rejected[0]?.raw.length).toBeLessThan(REJECTED_RAW_CHARS + 100);
    expect(rejected[0]?.raw.startsWith('{"path":"/aaa')).toBe(true);
  });

  it('bounds a pretty object that never closes, and a huge array element', () => {
    const open = `{\n${`  "a": "${'x'.repeat(2000)}",\n`.repeat(10)}`;
    const small = { maxLineBytes: 4096 };
    const result = splitRecords(`${open}{"next":1}\n`, small);
    expect(result.rejected.map((r) => r.reason)).toEqual(['record_too_long']);
    expect(result.records).toEqual(['{"next":1}']);
    const closed = splitRecords(`${open}  "z": 1\n}\nafter\n`, small);
    expect(closed.rejected.map((r) => r.reason)).toEqual(['record_too_long']);
    expect(closed.records).toEqual(['after']);
    const array = splitRecords(`[{"a":"${'y'.repeat(10_000)}"},{"b":1}]\n{"c":2}`, small);
    expect(array.rejected.map((r) => r.reason)).toEqual(['record_too_long']);
    expect(array.records).toEqual(['{"b":1}', '{"c":2}']);
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    const line = 'é'.repeat(600); // 1200 bytes
    expect(splitRecords(line, { maxLineBytes: 1000 }).rejected.map((r) => r.reason)).toEqual(['record_too_long']);
    expect(splitRecords(line, { maxLineBytes: 1200 }).records).toEqual([line]);
  });

  it('handles truncated JSON: a cut NDJSON line stays one record, a cut array keeps its complete elements', () => {
    const ndjson = splitRecords('{"a":1,"b":\n{"c":2}\n', OPTIONS);
    expect(ndjson).toEqual({ records: ['{"a":1,"b":', '{"c":2}'], rejected: [] });
    const array = splitRecords('[{"a":1},{"b":2},{"c":', OPTIONS);
    expect(array.records).toEqual(['{"a":1}', '{"b":2}']);
    expect(array.rejected).toEqual([{ raw: '{"c":', reason: 'truncated_json' }]);
    const unclosed = splitRecords('[{"a":1},{"b":2}', OPTIONS);
    expect(unclosed).toEqual({ records: ['{"a":1}', '{"b":2}'], rejected: [] });
    const pretty = splitRecords('{\n  "a": 1,\n  "b": [\n', OPTIONS);
    expect(pretty.records).toEqual([]);
    expect(pretty.rejected.map((r) => r.reason)).toEqual(['truncated_json']);
  });

  it('resynchronises when a pretty object is cut short and a new one starts at column 0', () => {
    const { records, rejected } = splitRecords('{\n  "a": 1,\n{\n  "b": 2\n}\n', OPTIONS);
    expect(rejected.map((r) => r.reason)).toEqual(['truncated_json']);
    expect(records).toEqual(['{"b":2}']);
  });

  it('never throws on binary junk, and every piece it returns is bounded', () => {
    for (let round = 0; round < 20; round++) {
      const junk = randomBytes(256 * 1024).toString('utf8');
      const { records, rejected } = splitRecords(junk, { maxLineBytes: 8192 });
      for (const record of records) expect(Buffer.byteLength(record)).toBeLessThanOrEqual(8192);
      for (const r of rejected) expect(r.raw.length).toBeLessThan(REJECTED_RAW_CHARS + 100);
    }
  });

  it('returns NDJSON of arbitrary objects line by line, unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.object(), { maxLength: 20 }), (objects) => {
        const lines = objects.map((o) => JSON.stringify(o));
        const { records, rejected } = splitRecords(lines.join('\n'), OPTIONS);
        expect(rejected).toEqual([]);
        expect(records).toEqual(lines);
      }),
    );
  });

  it('returns the elements of arbitrary JSON arrays, pretty or not', () => {
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { minLength: 1, maxLength: 10 }), fc.boolean(), (objects, pretty) => {
        const body = JSON.stringify(objects, null, pretty ? 2 : undefined);
        const { records, rejected } = splitRecords(body, OPTIONS);
        expect(rejected).toEqual([]);
        expect(records.map((r) => JSON.parse(r) as unknown)).toEqual(objects.map((o) => JSON.parse(JSON.stringify(o)) as unknown));
      }),
    );
  });

  it('returns sequences of pretty-printed objects', () => {
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.string({ minLength: 1 }), fc.jsonValue(), { minKeys: 1 }), { minLength: 1, maxLength: 5 }), (objects) => {
        const body = objects.map((o) => JSON.stringify(o, null, 2)).join('\n');
        const { records, rejected } = splitRecords(body, OPTIONS);
        expect(rejected).toEqual([]);
        expect(records).toEqual(objects.map((o) => JSON.stringify(o)));
      }),
    );
  });
});
