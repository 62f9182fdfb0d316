// /v1/graph/series: counters per step from the edge rollup, dense over the range, filtered by
// source identity and destination service, with the mean of a baseline range; bad ranges are 400s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseStepSeconds, MAX_SERIES_POINTS } from '../../store/graph-queries.ts';
import { createTestApi, type TestApi } from './helpers.ts';

const MINUTE_MS = 60_000;
const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

describe('GET /v1/graph/series', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ withIngest: false });
    const row = (minute: number, src: string, dst: string, requests: number, denies: number) => ({
      minute: Math.floor((T0 + minute * MINUTE_MS) / 1000),
      src_identity: src,
      src_namespace: 'shop',
      dst_service: dst,
      dst_namespace: 'shop',
      source: 'envoy',
      requests,
      denies,
      errors: 0,
      tls_failures: 0,
      plaintext: 0,
      mtls_requests: requests,
      bytes_in: 0,
      bytes_out: 0,
    });
    await api.store?.insertRows('edge_minute', [
      // Baseline hour before T0: 2 denies a minute on a → cart over minutes -60..-31 (30 minutes).
      ...Array.from({ length: 30 }, (_, i) => row(-60 + i, 'a', 'cart', 10, 2)),
      row(0, 'a', 'cart', 10, 1),
      row(2, 'a', 'cart', 20, 15),
      row(2, 'b', 'cart', 5, 0),
      row(3, 'a', 'pay', 7, 7),
    ]);
  });
  afterAll(async () => {
    await api.close();
  });

  const get = (query: string) => api.app.inject({ method: 'GET', url: `/v1/graph/series?${query}`, headers: api.auth('analyst') });
  const iso = (minute: number) => new Date(T0 + minute * MINUTE_MS).toISOString();

  it('returns one point per minute, zero where nothing happened, for the named edge', async () => {
    const res = await get(`from=${iso(0)}&to=${iso(5)}&src=a&dst=cart`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.step_seconds).toBe(60);
    expect(body.times).toEqual([0, 1, 2, 3, 4].map((m) => (T0 + m * MINUTE_MS) / 1000));
    expect(body.values.requests).toEqual([10, 0, 20, 0, 0]);
    expect(body.values.denies).toEqual([1, 0, 15, 0, 0]);
    expect(body.baseline).toBeNull();
  });

  it('sums every source when none is named, and several destinations when repeated', async () => {
    const all = (await get(`from=${iso(0)}&to=${iso(5)}&dst=cart&dst=pay`)).json();
    expect(all.values.requests).toEqual([10, 0, 25, 7, 0]);
    const onlyB = (await get(`from=${iso(0)}&to=${iso(5)}&src=b`)).json();
    expect(onlyB.values.requests).toEqual([0, 0, 5, 0, 0]);
  });

  it('gives the mean per step of the baseline range', async () => {
    const body = (await get(`from=${iso(0)}&to=${iso(5)}&src=a&dst=cart&baseline_from=${iso(-60)}&baseline_to=${iso(0)}`)).json();
    // 30 minutes × 2 denies over a 60-minute range: 1 per minute.
    expect(body.baseline.denies).toBeCloseTo(1, 6);
    expect(body.baseline.requests).toBeCloseTo(5, 6);
  });

  it('coarsens the step so a long range stays within the point limit', () => {
    expect(chooseStepSeconds(0, 60 * MINUTE_MS)).toBe(60);
    const week = chooseStepSeconds(0, 7 * 24 * 60 * MINUTE_MS);
    expect(week % 60).toBe(0);
    expect((7 * 24 * 60 * 60) / week).toBeLessThanOrEqual(MAX_SERIES_POINTS);
  });

  it('refuses bad ranges with 400 and a code, and other roles than analyst/admin', async () => {
    for (const query of [`from=${iso(5)}&to=${iso(0)}`, `from=${iso(0)}&to=${iso(5)}&baseline_from=${iso(-60)}`, `from=${iso(0)}&to=${iso(5)}&baseline_from=${iso(0)}&baseline_to=${iso(-60)}`, 'from=yesterday', 'colour=red']) {
      const res = await get(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code, query).toMatch(/^ZTW_/);
    }
    const auditor = await api.app.inject({ method: 'GET', url: '/v1/graph/series', headers: api.auth('auditor') });
    expect(auditor.statusCode).toBe(403);
  });
});
