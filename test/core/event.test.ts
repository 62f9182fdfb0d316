import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { NormalizedEventSchema, UINT32_MAX, createEmptyEvent, repairEvent } from '../../core/event.ts';

describe('repairEvent', () => {
  it('replaces lone surrogates in text fields and flags', () => {
    const event = createEmptyEvent('envoy', 0);
    event.path = 'a\ud800b';
    event.response_flags = ['UF', 'x\udc00'];
    repairEvent(event);
    expect(event.path).toBe('a\ufffdb');
    expect(event.response_flags).toEqual(['UF', 'x\ufffd']);
  });

  it('replaces a frozen flag list instead of editing it, leaving the shared list intact', () => {
    const shared = Object.freeze(['y\ud800']);
    const event = createEmptyEvent('envoy', 0);
    event.response_flags = shared as unknown as string[];
    expect(() => repairEvent(event)).not.toThrow();
    expect(event.response_flags).toEqual(['y\ufffd']);
    expect(shared).toEqual(['y\ud800']);
  });

  it('keeps a well-formed list as it is', () => {
    const event = createEmptyEvent('envoy', 0);
    const flags = ['UH'];
    event.response_flags = flags;
    repairEvent(event);
    expect(event.response_flags).toBe(flags);
  });

  it('caps a duration or count beyond UInt32 instead of letting the store wrap it around', () => {
    const event = { ...createEmptyEvent('envoy', 0), duration_ms: 5_000_000_000, count: 2 ** 40 };
    repairEvent(event);
    expect([event.duration_ms, event.count]).toEqual([UINT32_MAX, UINT32_MAX]);
    expect(Value.Check(NormalizedEventSchema, event)).toBe(true);
  });
});
