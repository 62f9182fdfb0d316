import { describe, expect, it } from 'vitest';
import { ERRORS, ZtwError, createError, hasCode, specOf, type ErrorName } from '../../core/errors.ts';

describe('errors', () => {
  it('declares every code once, as ZTW_<AREA>_<WHAT>, with a status that fits its retryability', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(codes.length).toBeGreaterThan(20);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, spec] of Object.entries(ERRORS)) {
      expect(spec.code).toBe(`ZTW_${name}`);
      expect(spec.code).toMatch(/^ZTW_[A-Z]+_[A-Z_]+$/);
      expect(spec.message.length, spec.code).toBeGreaterThan(0);
      expect(spec.status >= 400 && spec.status <= 599, spec.code).toBe(true);
      // A retryable error is never blamed on the caller's input (except a timeout: send it faster).
      if (spec.retryable && spec.code !== ERRORS.API_TIMEOUT.code) expect(spec.status, spec.code).toBeGreaterThanOrEqual(500);
      expect(specOf(spec.code)).toBe(spec);
      const err = createError(name as ErrorName);
      expect({ code: err.code, retryable: err.retryable, message: err.message }).toEqual({ code: spec.code, retryable: spec.retryable, message: spec.message });
    }
    expect(specOf('ZTW_NOT_DECLARED')).toBeUndefined();
    expect(Object.isFrozen(ERRORS) && Object.isFrozen(ERRORS.BUS_CLOSED)).toBe(true);
  });

  it('calls a rejected store statement non-retryable and an unreachable store retryable', () => {
    expect(ERRORS.STORE_QUERY_FAILED.retryable).toBe(false);
    expect(ERRORS.STORE_UNAVAILABLE.retryable).toBe(true);
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
