// The api stage's counters, as docs/telemetry.md specifies them: received per request, sent per
// answer below 400, errors{code} per refusal (including routes that do not exist).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from './helpers.ts';

describe('api stage telemetry', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ withStore: false });
  });
  afterAll(async () => {
    await api.close();
  });

  const counter = async (name: string): Promise<Array<{ labels: Partial<Record<string, string | number>>; value: number }>> =>
    ((await api.metrics.registry.getSingleMetric(name)?.get())?.values ?? []).filter((v) => v.labels.stage === 'api');

  it('counts every request as received, answers below 400 as sent, and refusals by code', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await api.app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404);
    const unauthenticated = await api.app.inject({ method: 'POST', url: '/v1/ingest/envoy', payload: '{}', headers: { 'content-type': 'application/json' } });
    expect(unauthenticated.statusCode).toBe(401);
    // Refused by the router itself (fastify's frameworkErrors), answered through the same sendError.
    const badUrl = await api.app.inject({ method: 'GET', url: '/health%zz' });
    expect(badUrl.statusCode).toBe(400);
    expect((await counter('ztwatch_stage_received_events_total')).map((v) => v.value)).toEqual([4]);
    expect((await counter('ztwatch_stage_sent_events_total')).map((v) => v.value)).toEqual([1]);
    const errors = Object.fromEntries((await counter('ztwatch_stage_errors_total')).map((v) => [v.labels.code, v.value]));
    expect(errors).toEqual({ ZTW_API_NOT_FOUND: 1, ZTW_API_UNAUTHENTICATED: 1, [badUrl.json().error.code]: 1 });
  });
});
