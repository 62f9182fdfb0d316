// Test fixture of the access-history and service-graph tests: 600 Envoy events two days back,
// over four identities (one with a quote), three services and two namespaces, with denies every
// seventh event and plaintext every fourth, several per minute so ties on time are exercised.
import { randomUUID } from 'node:crypto';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { FrozenConfig } from '../../core/config.ts';
import { createTestConfig, useTestStore, type TestStoreHandle } from './store.ts';

const HOUR_MS = 3_600_000;
export const BASE_MS = Date.now() - 48 * HOUR_MS;
export const IDENTITIES = ['spiffe://cluster.local/ns/shop/sa/frontend', 'spiffe://cluster.local/ns/shop/sa/cart', 'alice@example.com', "o'brien@example.com"];
export const SERVICES = ['payments', 'ledger', 'catalog'];

export function makeEvent(i: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS),
    event_id: randomUUID(),
    // Several events share each millisecond, so ties on time are exercised.
    time: BASE_MS + Math.floor(i / 3) * 60_000,
    src_identity: IDENTITIES[i % IDENTITIES.length] as string,
    src_namespace: 'shop',
    dst_service: SERVICES[i % SERVICES.length] as string,
    dst_namespace: i % 2 ? 'prod' : 'staging',
    method: i % 5 ? 'GET' : 'POST',
    path: `/api/v${i % 2}/items/${i}`,
    status: i % 7 === 0 ? 403 : 200,
    decision: i % 7 === 0 ? 'deny' : 'allow',
    decision_reason: i % 7 === 0 ? 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-all]-rule[0]]' : '',
    mtls: i % 4 ? 'yes' : 'no',
    bytes_in: i,
    bytes_out: 2 * i,
    raw: `raw line ${i}`,
    ...overrides,
  };
}

export const EVENTS = Array.from({ length: 600 }, (_, i) => makeEvent(i));

/** Config of a store that keeps the fixture's events, two days old (and older ones). */
export function createAccessTestConfig(): FrozenConfig {
  return createTestConfig({ clickhouse: { retentionDays: 3650 } });
}

/** A store for the enclosing describe block, holding the 600 fixture events. */
export function useAccessStore(): TestStoreHandle {
  return useTestStore(createAccessTestConfig(), (store) => store.insertEvents(EVENTS, 'seed'));
}
