// The one wiring of sink and hash chain, and the live path it gives replays: every row a replay
// stores is covered by the chain, dead letters travel the bus too, and a store that keeps failing
// ends the replay with its error instead of retrying forever.
import { describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { hasCode } from '../../core/errors.ts';
import { createMetrics } from '../../core/metrics.ts';
import { replayIntoStore, type ReplaySource } from '../../detectors/backtest.ts';
import { createRecordParser } from '../../cli/commands/backtest.ts';
import { verifyChain } from '../../store/chain.ts';
import type { Store } from '../../store/client.ts';
import { createBusSinkPath, createSinkWithChain } from '../../store/sink-with-chain.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { TOPICS } from '../../bus/port.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const BASE_MS = Date.now() - 3_600_000;

function makeEvent(i: number): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `p${String(i).padStart(5, '0')}`,
    time: BASE_MS + i * 100,
    src_identity: `spiffe://cluster.local/ns/shop/sa/sa${i % 3}`,
    dst_service: i % 2 ? 'payments' : 'ledger',
    decision: i % 10 === 0 ? 'deny' : 'allow',
    raw: `line ${i}`,
  };
}

async function count(store: Store, table: string): Promise<number> {
  const [row] = await store.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.database}.${table}`);
  return Number(row?.n);
}

/** Envoy JSON lines (Istio keys) one second apart, as a replay source read in two chunks. */
function envoySource(lines: number): ReplaySource {
  const records = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      start_time: new Date(BASE_MS + i * 1000).toISOString(),
      method: 'GET',
      path: `/items/${i}`,
      protocol: 'HTTP/1.1',
      response_code: i % 5 === 0 ? 403 : 200,
      response_code_details: i % 5 === 0 ? 'rbac_access_denied_matched_policy[none]' : 'via_upstream',
      request_id: `req-${i}`,
      authority: 'payments.shop.svc.cluster.local:8080',
      upstream_cluster: 'inbound|8080||payments.shop.svc.cluster.local',
      downstream_peer_uri_san: 'spiffe://cluster.local/ns/shop/sa/frontend',
    }),
  );
  const chunks = [records.slice(0, lines / 2), [...records.slice(lines / 2), 'not a log line']];
  return {
    name: 'envoy.log',
    async next() {
      const chunk = chunks.shift();
      return chunk ? { groups: [{ format: 'envoy', records: chunk }], rejected: [] } : undefined;
    },
  };
}

describe('bus-sink path', () => {
  it('stores events and dead letters through the bus, each write resolving once stored, every row in the chain', async () => {
    const config = createTestConfig({ sink: { batchRows: 300 } });
    const store = await createTestStore(config);
    try {
      const path = await createBusSinkPath({ store, metrics: createMetrics(), config });
      const events = Array.from({ length: 1000 }, (_, i) => makeEvent(i));
      await path.storeEvents(events.slice(0, 700));
      expect(await count(store, 'events')).toBe(700);
      await path.storeEvents(events.slice(700));
      await path.storeDeadLetters([{ observed_time: BASE_MS, source: 'envoy', reason: 'envoy_bad_json', raw: '{' }]);
      expect(await count(store, 'events')).toBe(1000);
      expect(await count(store, 'deadletters')).toBe(1);
      await path.close();
      const report = await verifyChain(store);
      expect(report.problems).toEqual([]);
      expect(report.rowsChecked).toBe(1000);
    } finally {
      await dropTestStore(store);
    }
  }, 60_000);

  it('chains carried events whose text is stored as sent, and events it must repair or serialize again, so that verify finds every row intact and a change to any of them', async () => {
    const config = createTestConfig({ sink: { batchRows: 100 } });
    const store = await createTestStore(config);
    try {
      const bus = new MemoryBus();
      const chained = await createSinkWithChain({ bus, store, metrics: createMetrics(), config, chainId: 'carried' });
      const plain = Array.from({ length: 20 }, (_, i) => makeEvent(i));
      // Carried objects a producer failed to repair: a lone surrogate, a duration past UInt32.
      const surrogate = { ...makeEvent(20), path: '/\ud800x' };
      const long = { ...makeEvent(21), duration_ms: 5_000_000_000 };
      // Keys out of schema order: its text is not the canonical row text.
      const reordered = Object.fromEntries(Object.entries(makeEvent(22)).reverse()) as unknown as NormalizedEvent;
      const all = [...plain, surrogate, long, reordered];
      await bus.publish(TOPICS.events, all.map((e) => ({ key: e.dst_service, value: JSON.stringify(e), payload: e })));
      await bus.whenIdle();
      await chained.close();
      await bus.close();
      const intact = await verifyChain(store);
      expect(intact.problems).toEqual([]);
      expect(intact.rowsChecked).toBe(23);
      const [stored] = await store.query<{ path: string; duration_ms: string }>(`SELECT path, toString(duration_ms) AS duration_ms FROM ${store.database}.events WHERE event_id IN ('p00020', 'p00021') ORDER BY event_id`);
      expect(stored?.path).toBe('/\ufffdx');
      for (const id of ['p00003', 'p00020', 'p00021', 'p00022']) {
        await store.command(`ALTER TABLE ${store.database}.events UPDATE bytes_in = bytes_in + 1 WHERE event_id = {id:String} SETTINGS mutations_sync = 2`, { id });
      }
      const tampered = await verifyChain(store);
      expect(tampered.problems).toEqual([expect.objectContaining({ kind: 'row_modified', detail: expect.stringMatching(/^4 row\(s\) changed, e\.g\. event_id p00003, p00020, p00021, p00022$/) })]);
    } finally {
      await dropTestStore(store);
    }
  }, 60_000);

  it.each(['events', 'batches'])('rejects a write with the store error once the same batch has failed repeatedly (no %s table)', async (table) => {
    const config = createTestConfig();
    const store = await createTestStore(config);
    try {
      const path = await createBusSinkPath({ store, metrics: createMetrics(), config });
      // Without `batches`, every insert lands (and is deduplicated on retry) but the chain fails.
      await store.command(`DROP TABLE ${store.database}.${table}`);
      const failed = await path.storeEvents([makeEvent(1)]).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(hasCode(failed, 'ZTW_STORE_QUERY_FAILED'), String(failed)).toBe(true);
      await path.close();
    } finally {
      await dropTestStore(store);
    }
  }, 60_000);

  it('gives a replay (backtest) the live path: every stored event is covered by the chain', async () => {
    const config = createTestConfig();
    const store = await createTestStore(config);
    try {
      const result = await replayIntoStore({ store, config, sources: [envoySource(400)], parse: createRecordParser(config), flushEvents: 150 });
      expect(result.events).toBe(400);
      expect(result.deadLetters).toBe(1);
      expect(await count(store, 'events')).toBe(400);
      expect(await count(store, 'deadletters')).toBe(1);
      const report = await verifyChain(store);
      expect(report.problems).toEqual([]);
      expect(report.rowsChecked).toBe(400);
    } finally {
      await dropTestStore(store);
    }
  }, 120_000);
});
