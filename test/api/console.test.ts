// The console's assets and its session route: served by the api role from the project's sources,
// with a strict content-security policy; no data without a token; the session names the role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../api/console.ts';
import { createTestApi, type TestApi } from './helpers.ts';

describe('console assets and /v1/session', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ withIngest: false });
  });
  afterAll(async () => {
    await api.close();
  });

  it('serves the page at / with its own script and styles, no other origin', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(res.body).toContain('src="/console/app.js"');
    expect(res.body).toContain('href="/console/app.css"');
    expect(res.body).not.toMatch(/https?:\/\//);
  });

  it('bundles cytoscape, fcose and uPlot into one script, and their styles', async () => {
    const js = await api.app.inject({ method: 'GET', url: '/console/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body.length).toBeGreaterThan(100_000);
    expect(js.body).toContain('fcose');
    expect(js.body).not.toMatch(/\bimport\s*\(?\s*["']https?:/);
    const css = await api.app.inject({ method: 'GET', url: '/console/app.css' });
    expect(css.statusCode).toBe(200);
    expect(css.body).toContain('.uplot');
    expect(css.body).toContain('--sev-critical');
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await api.app.inject({ method: 'GET', url: '/console/app.js' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await api.app.inject({ method: 'GET', url: '/console/app.js', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('names the caller and role on /v1/session, and refuses without a valid token', async () => {
    for (const role of ['ingest', 'analyst', 'auditor', 'admin'] as const) {
      const res = await api.app.inject({ method: 'GET', url: '/v1/session', headers: api.auth(role) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ name: `${role}-user`, role });
    }
    const none = await api.app.inject({ method: 'GET', url: '/v1/session' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('ZTW_API_UNAUTHENTICATED');
    const wrong = await api.app.inject({ method: 'GET', url: '/v1/session', headers: { authorization: 'Bearer not-a-token' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('is absent from a process without the query routes (no store)', async () => {
    const collector = await createTestApi({ withStore: false });
    try {
      expect((await collector.app.inject({ method: 'GET', url: '/' })).statusCode).toBe(404);
    } finally {
      await collector.close();
    }
  });
});
