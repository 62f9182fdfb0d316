import { describe, expect, it } from 'vitest';
import { createStringMemo, MAX_MEMO_KEY_CHARS } from '../../../ingest/parsers/string-memo.ts';

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
