import { describe, expect, it } from 'vitest';
import { getAnomaly, queryAnomalies } from '../../store/anomaly-queries.ts';
import { useTestStore } from '../helpers/store.ts';

const HOUR_MS = 3_600_000;

describe('anomaly queries', () => {
  const db = useTestStore();

  it('reads anomalies in their latest version, filtered and paged', async () => {
    const row = (id: string, version: number, status: string, firstMs: number, severity = 'high') => ({
      id,
      detector: id.startsWith('d') ? 'deny_spike' : 'mtls_failure',
      severity,
      status,
      first_seen: firstMs,
      last_seen: firstMs + 60_000 * version,
      src: 'spiffe://cluster.local/ns/shop/sa/frontend',
      dst: id.startsWith('d') ? 'payments' : null,
      subject: `subject-${id}`,
      score: 3.5,
      summary: `anomaly ${id}`,
      evidence: JSON.stringify({ baseline: 1, observed: 10 }),
      version,
    });
    const now = Date.now() - HOUR_MS;
    await db.store.insertRows(
      'anomalies',
      [row('d1', 1, 'firing', now), row('d1', 2, 'resolved', now), row('d2', 1, 'firing', now + 1000), row('m1', 1, 'firing', now + 2000, 'low'), row('m2', 1, 'firing', now + 2000)],
      { insert_deduplication_token: 'anomalies-seed' },
    );
    const all = await queryAnomalies(db.store, {}, { limit: 10 });
    expect(all.anomalies.map((a) => a.id)).toEqual(['m2', 'm1', 'd2', 'd1']);
    expect(all.anomalies.find((a) => a.id === 'd1')?.status).toBe('resolved');
    const firing = await queryAnomalies(db.store, { status: 'firing', detector: 'deny_spike' }, { limit: 10 });
    expect(firing.anomalies.map((a) => a.id)).toEqual(['d2']);
    const low = await queryAnomalies(db.store, { severity: 'low' }, { limit: 10 });
    expect(low.anomalies.map((a) => a.id)).toEqual(['m1']);
    const first = await queryAnomalies(db.store, {}, { limit: 3 });
    const second = await queryAnomalies(db.store, {}, { limit: 3, after: first.next });
    expect([...first.anomalies, ...second.anomalies].map((a) => a.id)).toEqual(['m2', 'm1', 'd2', 'd1']);
    expect(second.next).toBeUndefined();
    const one = await getAnomaly(db.store, 'd1');
    expect(one).toMatchObject({ id: 'd1', status: 'resolved', dst: 'payments', evidence: { baseline: 1, observed: 10 } });
    expect(one?.first_seen).toBe(new Date(now).toISOString());
    expect((await getAnomaly(db.store, 'm1'))?.dst).toBeNull();
    expect(await getAnomaly(db.store, "' OR 1=1 --")).toBeUndefined();
  });
});
