import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, createError } from '../../core/errors.ts';
import { statusOf, toErrorResponse } from '../../api/errors.ts';

describe('error codes to HTTP statuses', () => {
  it('answers every declared code with its declared status, and an undeclared one with 500', () => {
    for (const spec of Object.values(ERRORS)) expect(statusOf(spec.code), spec.code).toBe(spec.status);
    expect(statusOf('ZTW_NOT_DECLARED')).toBe(500);
    expect(statusOf(ERRORS.API_UNAUTHENTICATED.code)).toBe(401);
    expect(statusOf(ERRORS.API_FORBIDDEN.code)).toBe(403);
    expect(statusOf(ERRORS.INGEST_BODY_TOO_LARGE.code)).toBe(413);
    expect(statusOf(ERRORS.INGEST_BAD_CONTENT_TYPE.code)).toBe(415);
    expect(statusOf(ERRORS.INGEST_OVERLOADED.code)).toBe(503);
  });

  it('keeps internals out of 5xx bodies and passes 4xx messages through', () => {
    const store = toErrorResponse(createError('STORE_QUERY_FAILED', 'query: Code: 62. Syntax error near SELECT secret FROM'));
    expect(store.status).toBe(500);
    expect(store.body.error).toEqual({ code: 'ZTW_STORE_QUERY_FAILED', message: 'event store query failed', retryable: false });
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

  it("keeps fastify's own 4xx statuses when it turns them into our codes", () => {
    for (const statusCode of [400, 401, 403, 404, 408, 413, 415]) {
      expect(toErrorResponse(Object.assign(new Error('framework'), { statusCode })).status, String(statusCode)).toBe(statusCode);
    }
  });

  it('docs/api.md lists every declared code with its declared status', () => {
    const documented = new Map<string, number>();
    for (const line of readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8').split('\n')) {
      const row = /^\| (`ZTW_[A-Z_]+`(?:, `ZTW_[A-Z_]+`)*) \| (\d{3}) \|/.exec(line);
      if (!row?.[1] || !row[2]) continue;
      for (const code of row[1].matchAll(/`(ZTW_[A-Z_]+)`/g)) documented.set(code[1] ?? '', Number(row[2]));
    }
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(Object.values(ERRORS).map((e) => [e.code, e.status])));
  });
});
