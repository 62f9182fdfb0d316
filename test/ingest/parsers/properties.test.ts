// Robustness of every registered parser (and of format detection) on hostile input: random text,
// random JSON, and real fixture records damaged on purpose. Parsers must never throw, must answer
// each record promptly (no catastrophic backtracking, no unbounded recursion), and must refuse
// with a short machine-readable reason. New parsers added to PARSERS are covered automatically.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { NormalizedEventSchema, type ParseResult } from '../../../core/event.ts';
import { PARSERS, detectFormat } from '../../../ingest/parsers/index.ts';
import { splitRecords } from '../../../ingest/records.ts';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);
/** Generous bound per record: catches runaway regular expressions, not slow machines. */
const MAX_MS_PER_RECORD = 50;
const REASON = /^[a-z0-9_]+$/;
const MAX_REASON_CHARS = 64;

/** Every record of every fixture file (comment lines included: they are input too). */
function loadFixtureRecords(): { records: string[]; files: string[] } {
  const records: string[] = [];
  const files: string[] = [];
  for (const dir of readdirSync(FIXTURES, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const name of readdirSync(new URL(`${dir.name}/`, FIXTURES))) {
      if (name === 'README.md') continue;
      const text = readFileSync(new URL(`${dir.name}/${name}`, FIXTURES), 'utf8');
      files.push(text);
      records.push(...splitRecords(text, { maxLineBytes: 1 << 20 }).records);
    }
  }
  return { records, files };
}

const { records: FIXTURE_RECORDS, files: FIXTURE_FILES } = loadFixtureRecords();

/** Inputs known to hurt naive parsers: huge, deeply nested, repetitive, or oddly encoded. */
function buildPathologicalInputs(): string[] {
  const n = 100_000;
  const inputs = [
    '',
    ' ',
    '\0',
    '\uFEFF{}',
    '\uD800',
    'a'.repeat(n),
    ' '.repeat(n),
    '"'.repeat(n),
    '\\'.repeat(n),
    '{'.repeat(n),
    '['.repeat(n),
    '['.repeat(5000) + ']'.repeat(5000),
    '{"a":'.repeat(5000) + '1' + '}'.repeat(5000),
    JSON.stringify({ a: 'x'.repeat(n) }),
    JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ i }))),
    `{"${'k'.repeat(n)}":1}`,
    '1'.repeat(n),
    '-'.repeat(n),
    ':'.repeat(n),
    '='.repeat(n),
    'a='.repeat(n / 2),
    'a=('.repeat(n / 3),
    '[ 1.0s] INFO ' + 'x=('.repeat(20_000) + ' Request denied ' + 'k=v '.repeat(10_000),
    'req id=1:0 proxy=out ' + 'k=v '.repeat(20_000),
    '1.2.3.4 - x - y [2024/01/01 00:00:00] ' + 'h '.repeat(30_000),
    '1.2.3.4 - x - y [2024/01/01 00:00:00] host GET - "' + '\\"'.repeat(30_000),
    '[2024-01-01T00:00:00.000Z] "' + 'GET '.repeat(20_000),
    '[' + '2'.repeat(n) + ']',
    'x{' + 'a="1",'.repeat(10_000) + '} 1',
    `${'9'.repeat(400)}.${'9'.repeat(400)}`,
    JSON.stringify({ time: '9'.repeat(500), timestamp: -1, start_time: 1e308, status: 'NaN' }),
    ...FIXTURE_FILES,
  ];
  // Every fixture record stretched: long repeats of real structure.
  for (const record of FIXTURE_RECORDS.slice(0, 60)) inputs.push(record.repeat(Math.ceil(20_000 / Math.max(1, record.length))));
  return inputs;
}

const PATHOLOGICAL = buildPathologicalInputs();

// --- mutations of real records ----------------------------------------------------------------

type Path = Array<string | number>;

function collectPaths(value: unknown, path: Path, out: Path[]): void {
  if (out.length >= 400) return;
  out.push(path);
  if (Array.isArray(value)) value.forEach((v, i) => collectPaths(v, [...path, i], out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) collectPaths(v, [...path, k], out);
}

function setPath(root: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = replacement;
  return root;
}

/** One field of a JSON record given a value of another type (or the whole record replaced). */
function swapField(record: string, pick: number, replacement: unknown): string {
  let value: unknown;
  try {
    value = JSON.parse(record);
  } catch {
    return record;
  }
  const paths: Path[] = [];
  collectPaths(value, [], paths);
  const path = paths[pick % paths.length] as Path;
  return JSON.stringify(setPath(value, path, replacement)) ?? '';
}

function flipBytes(record: string, flips: ReadonlyArray<readonly [number, number]>): string {
  const bytes = Buffer.from(record, 'utf8');
  if (bytes.length === 0) return record;
  for (const [at, bit] of flips) {
    const i = at % bytes.length;
    bytes[i] = (bytes[i] as number) ^ (1 << bit);
  }
  return bytes.toString('utf8');
}

const fixtureRecord = fc.constantFrom(...FIXTURE_RECORDS);
const oddValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, '', '-', 'unknown', 'NaN', '9'.repeat(40), [], {}, [[]], { a: { b: {} } }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Real records damaged by bit flips, cuts, field type swaps, splices and repetition. */
const mutatedRecord = fc.oneof(
  fc.tuple(fixtureRecord, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 })).map(([r, flips]) => flipBytes(r, flips)),
  fc.tuple(fixtureRecord, fc.nat()).map(([r, n]) => r.slice(0, n % (r.length + 1))),
  fc.tuple(fixtureRecord, fc.nat()).map(([r, n]) => r.slice(n % (r.length + 1))),
  fc.tuple(fixtureRecord, fc.nat(), oddValue).map(([r, pick, v]) => swapField(r, pick, v)),
  fc.tuple(fixtureRecord, fixtureRecord, fc.nat(), fc.nat()).map(([a, b, i, j]) => a.slice(0, i % (a.length + 1)) + b.slice(j % (b.length + 1))),
  fc.tuple(fixtureRecord, fc.nat(), fc.string({ unit: 'binary', maxLength: 8 })).map(([r, at, s]) => {
    const i = at % (r.length + 1);
    return r.slice(0, i) + s + r.slice(i);
  }),
);

const randomText = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme-ascii', maxLength: 300 }));
const randomJson = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v) ?? 'null');

// --- the checks --------------------------------------------------------------------------------------

interface Timed {
  readonly result: ParseResult;
  readonly ms: number;
}

/** Times one call; a slow one is timed again (best of three) so a GC pause is not blamed on the parser. */
function timeParse(parse: (line: string) => ParseResult, input: string): Timed {
  let start = performance.now();
  let result = parse(input);
  let ms = performance.now() - start;
  for (let retry = 0; retry < 2 && ms > MAX_MS_PER_RECORD; retry++) {
    start = performance.now();
    result = parse(input);
    ms = Math.min(ms, performance.now() - start);
  }
  return { result, ms };
}

function checkResult(result: ParseResult): void {
  if (result.ok) {
    if (!Value.Check(NormalizedEventSchema, result.event)) {
      const first = [...Value.Errors(NormalizedEventSchema, result.event)][0];
      throw new Error(`invalid event: ${first?.path} ${first?.message}`);
    }
    return;
  }
  expect(typeof result.reason).toBe('string');
  expect(result.reason.length).toBeGreaterThan(0);
  expect(result.reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
  expect(result.reason).toMatch(REASON);
}

describe.each(Object.entries(PARSERS))('parser %s', (name, entry) => {
  const parse = (line: string): ParseResult => entry.parse(line, OBSERVED);
  let maxMs = 0;
  let slowest = '';
  const run = (input: string): void => {
    let timed: Timed;
    try {
      timed = timeParse(parse, input);
    } catch (err) {
      throw new Error(`${name} threw on ${JSON.stringify(input.slice(0, 200))}: ${String(err)}`);
    }
    if (timed.ms > maxMs) {
      maxMs = timed.ms;
      slowest = input.slice(0, 120);
    }
    checkResult(timed.result);
  };

  it('never throws on random text', () => {
    fc.assert(fc.property(randomText, (input) => run(input)), { numRuns: 400 });
  });

  it('never throws on random JSON values', () => {
    fc.assert(fc.property(randomJson, (input) => run(input)), { numRuns: 400 });
  });

  it('never throws on damaged fixture records', () => {
    fc.assert(fc.property(mutatedRecord, (input) => run(input)), { numRuns: 600 });
  });

  it('reads every fixture record, whatever its format, without throwing', () => {
    for (const record of FIXTURE_RECORDS) run(record);
  });

  it('survives huge, deep and repetitive inputs', () => {
    for (const input of PATHOLOGICAL) run(input);
  });

  it(`answers every record within ${MAX_MS_PER_RECORD} ms`, () => {
    expect(maxMs, `slowest input: ${JSON.stringify(slowest)}`).toBeLessThan(MAX_MS_PER_RECORD);
  });
});

describe('detectFormat', () => {
  it('never throws and answers promptly on the same inputs', () => {
    let maxMs = 0;
    const detect = (input: string): void => {
      let start = performance.now();
      let format = detectFormat(input);
      let ms = performance.now() - start;
      if (ms > MAX_MS_PER_RECORD) {
        start = performance.now();
        format = detectFormat(input);
        ms = Math.min(ms, performance.now() - start);
      }
      maxMs = Math.max(maxMs, ms);
      if (format !== undefined) expect(Object.hasOwn(PARSERS, format)).toBe(true);
    };
    fc.assert(fc.property(fc.oneof(randomText, randomJson, mutatedRecord), (input) => detect(input)), { numRuns: 1000 });
    for (const input of [...FIXTURE_RECORDS, ...PATHOLOGICAL]) detect(input);
    expect(maxMs).toBeLessThan(MAX_MS_PER_RECORD);
  });
});
