// Flows as the store aggregates them (one request recorded by two reporters counts once; Hubble
// records apart; sources without identity keyed by IP), and the traffic of open anomalies and
// incidents left out of least-privilege generation.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { queryOpenFindings } from '../../store/posture-queries.ts';
import { loadFlows } from '../../posture/history.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const NOW = Date.now();
const A = 'spiffe://cluster.local/ns/shop/sa/web';
const B = 'spiffe://cluster.local/ns/shop/sa/batch';

function event(minutesAgo: number, overrides: Partial<NormalizedEvent>): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', NOW),
    event_id: randomUUID(),
    time: NOW - minutesAgo * 60_000,
    reporter: 'inbound',
    src_identity: A,
    src_workload: 'web',
    src_namespace: 'shop',
    src_ip: '10.0.0.1',
    dst_service: 'orders',
    dst_namespace: 'shop',
    dst_port: 8080,
    method: 'GET',
    route: '/orders/{id}',
    status: 200,
    decision: 'allow',
    mtls: 'yes',
    ...overrides,
  };
}

describe('posture history', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    const events: NormalizedEvent[] = [];
    for (let i = 0; i < 5; i++) {
      events.push(event(10 + i, {}), event(10 + i, { reporter: 'outbound', mtls: 'unknown', src_workload: '' }));
      events.push(event(10 + i, { source: 'hubble', reporter: 'network', method: '', route: '', mtls: 'unknown' }));
      events.push(event(30 + i, { src_identity: '', src_workload: '', src_namespace: '', src_ip: `192.0.2.${i % 2}`, mtls: 'no' }));
      events.push(event(50 + i, { src_identity: B, src_workload: 'batch', dst_service: 'ledger', route: '/export' }));
    }
    events.push(event(5, { source: 'opa', reporter: 'authz' }));
    await store.insertEvents(events);
    await store.insertRows('anomalies', [
      { id: 'x1', detector: 'fanout', severity: 'high', status: 'firing', first_seen: NOW - 60 * 60_000, last_seen: NOW - 52 * 60_000, src: B, dst: null, subject: B, score: 1, summary: '', evidence: '{}', version: 1 },
      { id: 'x1', detector: 'fanout', severity: 'high', status: 'resolved', first_seen: NOW - 60 * 60_000, last_seen: NOW - 52 * 60_000, src: B, dst: null, subject: B, score: 1, summary: '', evidence: '{}', version: 2 },
      { id: 'x2', detector: 'plaintext', severity: 'low', status: 'firing', first_seen: NOW - 40 * 60_000, last_seen: NOW - 20 * 60_000, src: '192.0.2.0', dst: 'orders', subject: 's', score: 1, summary: '', evidence: '{}', version: 1 },
    ]);
    await store.insertRows('incidents', [
      {
        id: 'i1',
        title: 'batch',
        severity: 'high',
        status: 'firing',
        first_seen: NOW - 53 * 60_000,
        detected_at: NOW - 50 * 60_000,
        last_seen: NOW - 51 * 60_000,
        actors: [B],
        targets: ['ledger'],
        members: [],
        timeline: '[]',
        evidence: '{}',
        notify: true,
        version: 1,
      },
    ]);
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('aggregates flows: two reporters of one request count once, Hubble apart, IP-only sources by IP, OPA left out', async () => {
    const flows = await loadFlows(store, { fromMs: NOW - 3_600_000, toMs: NOW + 1 });
    const summary = flows
      .map((f) => `${f.srcIdentity || f.srcIp} ${f.dstService} ${f.observer} ${f.inbound ? 'in' : 'out'} ${f.method || '-'} ${f.mtls} ${f.count}`)
      .sort();
    expect(summary).toEqual(
      [
        `${A} orders proxy in GET yes 5`,
        `${A} orders network out - unknown 5`,
        '192.0.2.0 orders proxy in GET no 3',
        '192.0.2.1 orders proxy in GET no 2',
        `${B} ledger proxy in GET yes 5`,
      ].sort(),
    );
    const web = flows.find((f) => f.srcIdentity === A && f.observer === 'proxy');
    expect(web).toMatchObject({ srcWorkload: 'web', srcNamespace: 'shop', dstPort: 8080, route: '/orders/{id}', decision: 'allow' });
    expect(web!.lastSeenMs).toBe(NOW - 10 * 60_000);
  });

  it('leaves out the traffic of open anomalies and incidents (latest version), in their time span', async () => {
    const exclude = await queryOpenFindings(store);
    expect(exclude.map((e) => `${e.src}>${e.dst}`).sort()).toEqual(['192.0.2.0>orders', `${B}>ledger`].sort());
    const flows = await loadFlows(store, { fromMs: NOW - 3_600_000, toMs: NOW + 1, decision: 'allow', exclude });
    const sources = flows.map((f) => f.srcIdentity || f.srcIp);
    expect(sources).not.toContain('192.0.2.0');
    expect(sources).toContain('192.0.2.1');
    // The incident spans 53..51 minutes ago: the batch events 50 and 54 minutes ago stay.
    expect(flows.find((f) => f.srcIdentity === B)?.count).toBe(2);
  });
});
