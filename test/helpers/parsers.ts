// Assertions shared by the parser tests: a parse result is a schema-valid event with the fields a
// test expects, or the rejection it expects.
import { expect } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { NormalizedEventSchema, type NormalizedEvent, type ParseResult } from '../../core/event.ts';

/** What a test expects of one record: fields of its event, or the reason it is rejected. */
export type Expected = Partial<NormalizedEvent> | { reject: string };

/**
 * Asserts that `result` is an event valid under the schema, parsed from `raw` (which it keeps), of
 * count 1 and without an id yet, with the fields of `base` (what every event of the format has)
 * and then of `expected`. Returns the event.
 */
export function expectParsedEvent(result: ParseResult, raw: string, base: Readonly<Record<string, unknown>>, expected: Partial<NormalizedEvent>): NormalizedEvent {
  if (!result.ok) throw new Error(`rejected (${result.reason}): ${raw.slice(0, 200)}`);
  expect(Value.Check(NormalizedEventSchema, result.event)).toBe(true);
  expect(result.event).toMatchObject({ count: 1, event_id: '', ...base, raw, ...expected });
  return result.event;
}

/** expectParsedEvent, or for `{ reject }` the rejection with that reason. */
export function expectParseOutcome(result: ParseResult, raw: string, base: Readonly<Record<string, unknown>>, expected: Expected): void {
  if ('reject' in expected) {
    expect(result).toEqual({ ok: false, reason: expected.reject });
    return;
  }
  expectParsedEvent(result, raw, base, expected);
}
