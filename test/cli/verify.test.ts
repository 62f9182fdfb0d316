import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { createBatchChain } from '../../store/chain.ts';
import { runVerify } from '../../cli/commands/verify.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { captureIo } from './io.ts';

describe('ztwatch verify', () => {
  let store: Store;
  beforeAll(async () => {
    store = await createTestStore(createTestConfig());
    const chain = await createBatchChain(store);
    for (let b = 0; b < 3; b++) {
      const events = Array.from({ length: 10 }, (_, i) => ({ ...createEmptyEvent('envoy', Date.now()), event_id: randomUUID(), path: `/b${b}/${i}` }));
      await store.insertEvents(events, `verify-${b}`);
      await chain.record(events, `verify-${b}`);
    }
  });
  afterAll(async () => {
    await dropTestStore(store);
  });

  it('reports an intact chain with its head hash, exit 0, and audits the run', async () => {
    const io = captureIo();
    expect(await runVerify([], io, store)).toBe(0);
    expect(io.out()).toMatch(/^OK: 3 batch\(es\), 30 row\(s\) checked/);
    expect(io.out()).toMatch(/chain default: batches 1\.\.3, head hash [0-9a-f]{64}/);
    const [row] = await store.query<{ action: string; status: number; rows: string }>(`SELECT action, status, toString(rows) AS rows FROM ${store.database}.audit_log`);
    expect(row).toEqual({ action: 'chain.verify', status: 200, rows: '30' });
  });

  it('reports tampering, exit 1', async () => {
    await store.command(`ALTER TABLE ${store.database}.events UPDATE path = '/forged' WHERE path = '/b1/3' SETTINGS mutations_sync = 2`);
    const io = captureIo();
    expect(await runVerify([], io, store)).toBe(1);
    expect(io.out()).toMatch(/^TAMPERED/);
    expect(io.out()).toContain('row_modified at default#2');
    const json = captureIo();
    await runVerify(['--json'], json, store);
    expect(JSON.parse(json.out())).toMatchObject({ ok: false, problemCount: 1 });
  });
});
