import { describe, expect, it } from 'vitest';
import { ERRORS, ZtwError, createError, hasCode } from '../../core/errors.ts';

describe('errors', () => {
  it('every code is unique and follows ZTW_<AREA>_<WHAT>', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, spec] of Object.entries(ERRORS)) expect(spec.code).toBe(`ZTW_${name}`);
  });

  it('carries code, retryability, detail and cause', () => {
    const cause = new Error('ECONNREFUSED');
    const err = createError('STORE_UNAVAILABLE', 'ping', { cause });
    expect(err).toBeInstanceOf(ZtwError);
    expect(err.code).toBe('ZTW_STORE_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('event store unavailable: ping');
    expect(err.cause).toBe(cause);
    expect(hasCode(err, 'ZTW_STORE_UNAVAILABLE')).toBe(true);
    expect(hasCode(new Error('x'), 'ZTW_STORE_UNAVAILABLE')).toBe(false);
    expect(createError('INGEST_BAD_BODY').retryable).toBe(false);
  });
});
