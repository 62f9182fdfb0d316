import { describe, expect, it } from 'vitest';
import { ERRORS, createError } from '../../core/errors.ts';
import { STATUS_BY_CODE, statusOf, toErrorResponse } from '../../api/errors.ts';

describe('error codes to HTTP statuses', () => {
  it('maps every code in core/errors.ts, and nothing else', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    const unmapped = codes.filter((c) => STATUS_BY_CODE[c] === undefined);
    expect(unmapped).toEqual([]);
    expect(Object.keys(STATUS_BY_CODE).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      const status = statusOf(code);
      expect(status >= 400 && status <= 599, code).toBe(true);
    }
  });

  it('gives bad input a 4xx and a fault of ours or a dependency a 5xx', () => {
    for (const spec of Object.values(ERRORS)) {
      const status = statusOf(spec.code);
      // A retryable error is never blamed on the caller's input (except a timeout: send it faster).
      if (spec.retryable && spec.code !== ERRORS.API_TIMEOUT.code) expect(status, spec.code).toBeGreaterThanOrEqual(500);
    }
    expect(statusOf(ERRORS.API_UNAUTHENTICATED.code)).toBe(401);
    expect(statusOf(ERRORS.API_FORBIDDEN.code)).toBe(403);
    expect(statusOf(ERRORS.INGEST_BODY_TOO_LARGE.code)).toBe(413);
    expect(statusOf(ERRORS.INGEST_BAD_CONTENT_TYPE.code)).toBe(415);
    expect(statusOf(ERRORS.INGEST_OVERLOADED.code)).toBe(503);
  });

  it('keeps internals out of 5xx bodies and passes 4xx messages through', () => {
    const store = toErrorResponse(createError('STORE_QUERY_FAILED', 'query: Code: 62. Syntax error near SELECT secret FROM'));
    expect(store.status).toBe(500);
    expect(store.body.error).toEqual({ code: 'ZTW_STORE_QUERY_FAILED', message: 'event store query failed', retryable: true });
    const unknown = toErrorResponse(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(unknown.status).toBe(500);
    expect(unknown.body.error.code).toBe('ZTW_API_INTERNAL');
    expect(unknown.body.error.message).toBe('internal error');
    expect(unknown.internal).toBe(true);
    const bad = toErrorResponse(createError('API_BAD_CURSOR', 'damaged'));
    expect(bad).toMatchObject({ status: 400, internal: false, body: { error: { code: 'ZTW_API_BAD_CURSOR', message: 'invalid cursor: damaged', retryable: false } } });
    const validation = Object.assign(new Error('querystring/limit must be <= 1000'), { validation: [{}], statusCode: 400 });
    expect(toErrorResponse(validation)).toMatchObject({ status: 400, body: { error: { code: 'ZTW_API_BAD_REQUEST' } } });
    const framework = Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' });
    expect(toErrorResponse(framework).body.error.code).toBe('ZTW_INGEST_BAD_CONTENT_TYPE');
  });
});
