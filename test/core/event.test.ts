import { describe, expect, it } from 'vitest';
import { createEmptyEvent, repairEventText } from '../../core/event.ts';

describe('repairEventText', () => {
  it('replaces lone surrogates in text fields and flags', () => {
    const event = createEmptyEvent('envoy', 0);
    event.path = 'a\ud800b';
    event.response_flags = ['UF', 'x\udc00'];
    repairEventText(event);
    expect(event.path).toBe('a\ufffdb');
    expect(event.response_flags).toEqual(['UF', 'x\ufffd']);
  });

  it('replaces a frozen flag list instead of editing it, leaving the shared list intact', () => {
    const shared = Object.freeze(['y\ud800']);
    const event = createEmptyEvent('envoy', 0);
    event.response_flags = shared as unknown as string[];
    expect(() => repairEventText(event)).not.toThrow();
    expect(event.response_flags).toEqual(['y\ufffd']);
    expect(shared).toEqual(['y\ud800']);
  });

  it('keeps a well-formed list as it is', () => {
    const event = createEmptyEvent('envoy', 0);
    const flags = ['UH'];
    event.response_flags = flags;
    repairEventText(event);
    expect(event.response_flags).toBe(flags);
  });
});
