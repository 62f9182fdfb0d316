import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { literalUnion } from '../../core/literal-union.ts';

describe('literalUnion', () => {
  it('accepts exactly the listed strings and keeps schema options', () => {
    const schema = literalUnion(['allow', 'deny'] as const, { description: 'decision' });
    expect(schema.description).toBe('decision');
    expect(Value.Check(schema, 'allow') && Value.Check(schema, 'deny')).toBe(true);
    expect(Value.Check(schema, 'ALLOW') || Value.Check(schema, '') || Value.Check(schema, 1)).toBe(false);
  });
});
