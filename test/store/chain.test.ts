import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import { createMetrics } from '../../core/metrics.ts';
import type { Store } from '../../store/client.ts';
import { compareUtf8, createBatchChain, digestRows, GENESIS_HASH, hashBatch, hashEventContent, hashEventText, readChainFormat, verifyChain, type ChainFormat, type ChainProblem } from '../../store/chain.ts';
import { encodeEventRows, serializeEventRow } from '../../store/insert-rows.ts';
import { drainThroughSink, toEventMessages } from '../helpers/sink.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';

const BASE_MS = Date.now() - 3_600_000;

function makeEvent(i: number, overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return {
    ...createEmptyEvent('envoy', BASE_MS + i),
    event_id: `e${String(i).padStart(5, '0')}`,
    time: BASE_MS + i * 1000,
    src_identity: `spiffe://cluster.local/ns/shop/sa/sa${i % 7}`,
    dst_service: i % 2 ? 'payments' : 'ledger',
    decision: i % 10 === 0 ? 'deny' : 'allow',
    response_flags: i % 3 ? [] : ['UF', 'URX'],
    bytes_out: 1000 + i,
    path: `/api/items/${i}`,
    raw: `line ${i} ünïcödé \u{1F600}`,
    ...overrides,
  };
}

/**
 * Runs `count` events through a real sink with the chain plugged into afterInsert, in chain format
 * `format`. Format 2 batches come as the in-process collector publishes them (the event carried
 * with its text, which the chain hashes in place); format 1 as text only (the sink serializes).
 */
async function seed(store: Store, config: ReturnType<typeof createTestConfig>, events: NormalizedEvent[], format: ChainFormat = 2): Promise<void> {
  const chain = await createBatchChain(store, { format });
  const messages = format === 2 ? events.map((e) => ({ key: e.dst_service, value: JSON.stringify(e), payload: e })) : toEventMessages(events);
  await drainThroughSink({ store, metrics: createMetrics(), config, afterInsert: (rows, token, encoded) => chain.record(rows, token, encoded) }, messages);
}

/** Chain format of the batches `withStore` seeds; each block of tests below runs for both. */
let seedFormat: ChainFormat = 2;

async function withStore(fn: (store: Store) => Promise<void>, overrides: Record<string, unknown> = {}): Promise<void> {
  const config = createTestConfig({ sink: { batchRows: 50, batchWaitMs: 10 }, clickhouse: { retentionDays: 3650 }, ...overrides });
  const store = await createTestStore(config);
  try {
    await seed(store, config, Array.from({ length: 300 }, (_, i) => makeEvent(i)), seedFormat);
    const formats = await store.query<{ rows_digest: string }>(`SELECT rows_digest FROM ${store.database}.batches`);
    expect(new Set(formats.map((r) => readChainFormat(r.rows_digest)))).toEqual(new Set([seedFormat]));
    await fn(store);
  } finally {
    await dropTestStore(store);
  }
}

const sync = 'SETTINGS mutations_sync = 2';

describe('hash helpers', () => {
  it('orders event ids by their UTF-8 bytes, as ClickHouse returns them to verify', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))));
      }),
      { numRuns: 2000 },
    );
    expect(compareUtf8('\uFF01', '\u{1F600}')).toBeLessThan(0);
    expect('\uFF01' < '\u{1F600}').toBe(false);
  });

  it('sorts the rows it digests by the UTF-8 bytes of their ids, ASCII-only batches and others alike', () => {
    const utf8Sorted = (ids: string[]) => [...ids].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ unit: 'binary' }), fc.string()), { maxLength: 40 }), (ids) => {
        const rows = ids.map((eventId, i) => ({ eventId, timeMs: i, contentHash: 'h' }));
        digestRows(rows);
        expect(rows.map((r) => r.eventId)).toEqual(utf8Sorted(ids));
      }),
      { numRuns: 500 },
    );
    const ascii = ['e10', 'e9', 'E1', 'e1-', ''];
    const rows = ascii.map((eventId) => ({ eventId, timeMs: 0, contentHash: 'h' }));
    digestRows(rows);
    expect(rows.map((r) => r.eventId)).toEqual(utf8Sorted(ascii));
  });

  it('digests rows independently of their order and hashes batches over the previous hash', () => {
    const rows = [
      { eventId: 'b', timeMs: 2, contentHash: 'x' },
      { eventId: 'a', timeMs: 1, contentHash: 'y' },
    ];
    const digest = digestRows([...rows]);
    expect(digestRows([...rows].reverse())).toBe(digest);
    expect(digestRows([{ ...rows[0]!, timeMs: 3 }, rows[1]!])).not.toBe(digest);
    expect(hashBatch(GENESIS_HASH, digest)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashBatch('1'.repeat(64), digest)).not.toBe(hashBatch(GENESIS_HASH, digest));
  });

  it('hashes every field of the content', () => {
    const e = makeEvent(1);
    const h = hashEventContent(e);
    for (const change of [{ path: '/other' }, { bytes_in: 1 }, { response_flags: ['UF'] }, { raw: 'x' }, { decision_reason: 'p' }] as Partial<NormalizedEvent>[]) {
      expect(hashEventContent({ ...e, ...change })).not.toBe(h);
    }
    const t = hashEventText(e);
    for (const change of [{ path: '/other' }, { bytes_in: 1 }, { response_flags: ['UF'] }, { response_flags: ['UF', 'URX'] }, { raw: 'x' }, { event_id: 'e2' }, { observed_time: 1 }, { count: 2 }] as Partial<NormalizedEvent>[]) {
      expect(hashEventText({ ...e, ...change })).not.toBe(t);
    }
  });

  it('format 2 hashes the canonical row text: schema field order whatever the object order, and exactly the bytes encoded for the insert', () => {
    const e = makeEvent(7, { raw: 'wide \u00e9\u{1F600} text', path: '/ä' });
    const reversed = Object.fromEntries(Object.entries(e).reverse()) as unknown as NormalizedEvent;
    expect(serializeEventRow(reversed)).toBe(JSON.stringify(e));
    expect(hashEventText(reversed)).toBe(hashEventText(e));
    // Rows of mixed widths, more multi-byte text than the buffer's slack: each row's bytes are its text.
    const events = [e, makeEvent(8, { raw: '\u{1F600}'.repeat(3000) }), reversed, makeEvent(9)];
    const { body, ends } = encodeEventRows(events, [undefined, undefined, undefined, JSON.stringify(events[3])]);
    const lines = body.toString('utf8').split('\n');
    expect(lines).toEqual(events.map((x) => serializeEventRow(x)));
    let start = 0;
    for (let i = 0; i < events.length; i++) {
      expect(body.subarray(start, ends[i]).toString('utf8')).toBe(lines[i]);
      start = (ends[i] as number) + 1;
    }
    expect(digestRows([{ eventId: 'a', timeMs: 1, contentHash: 'x' }], 2)).toMatch(/^v2:[0-9a-f]{64}$/);
    expect(readChainFormat(digestRows([{ eventId: 'a', timeMs: 1, contentHash: 'x' }], 1))).toBe(1);
  });
});

describe('chains written in both formats', () => {
  it('verifies a chain whose older batches are in format 1 and newer in format 2, and names tampering in each', async () => {
    const config = createTestConfig({ clickhouse: { retentionDays: 3650 } });
    const store = await createTestStore(config);
    try {
      const old = Array.from({ length: 20 }, (_, i) => makeEvent(i));
      const recent = Array.from({ length: 20 }, (_, i) => makeEvent(100 + i));
      const v1 = await createBatchChain(store, { format: 1 });
      await store.insertEvents(old, 'mixed:old');
      await v1.record(old, 'mixed:old');
      // A writer of the new format continues the same chain from its stored head.
      const v2 = await createBatchChain(store);
      const encoded = encodeEventRows(recent);
      await store.insertEvents(recent, 'mixed:new', encoded);
      await v2.record(recent, 'mixed:new', encoded);
      const digests = await store.query<{ seq: number; rows_digest: string }>(`SELECT seq, rows_digest FROM ${store.database}.batches ORDER BY seq`);
      expect(digests.map((r) => readChainFormat(r.rows_digest))).toEqual([1, 2]);
      const intact = await verifyChain(store);
      expect(intact.problems).toEqual([]);
      expect(intact.rowsChecked).toBe(40);

      await store.command(`ALTER TABLE ${store.database}.events UPDATE bytes_in = 5 WHERE event_id IN ('e00003', 'e00105') ${sync}`);
      await store.command(`ALTER TABLE ${store.database}.events DELETE WHERE event_id = 'e00110' ${sync}`);
      const forged = makeEvent(200, { event_id: 'forged-v2' });
      await store.insertEvents([forged], undefined, encodeEventRows([forged]));
      const tampered = await verifyChain(store);
      expect(tampered.problems.map((p) => [p.kind, p.seq])).toEqual([
        ['row_modified', 1],
        ['row_missing', 2],
        ['row_modified', 2],
        ['row_added', 0],
      ]);
      expect(tampered.problems[0]?.detail).toContain('e00003');
      expect(tampered.problems[2]?.detail).toContain('e00105');
      expect(tampered.problems[3]?.detail).toContain('forged-v2');
    } finally {
      await dropTestStore(store);
    }
  }, 120_000);

  it('reports a format-2 batch passed off as format 1 (its digest prefix removed) as edited', async () => {
    const config = createTestConfig({ clickhouse: { retentionDays: 3650 } });
    const store = await createTestStore(config);
    try {
      const events = Array.from({ length: 10 }, (_, i) => makeEvent(i));
      await store.insertEvents(events, 'swap');
      await (await createBatchChain(store)).record(events, 'swap');
      await store.command(`ALTER TABLE ${store.database}.batches UPDATE rows_digest = substring(rows_digest, 4) WHERE seq = 1 ${sync}`);
      const result = await verifyChain(store);
      expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'batch_modified', seq: 1 }));
    } finally {
      await dropTestStore(store);
    }
  }, 60_000);
});

describe.each([1, 2] as const)('batch chain on a real store, format %i', (format) => {
  beforeAll(() => {
    seedFormat = format;
  });

  it('verifies an untouched chain and ignores a redelivered batch', async () => {
    await withStore(async (store) => {
      const first = await verifyChain(store);
      expect(first.problems).toEqual([]);
      expect(first.ok).toBe(true);
      expect(first.batchesChecked).toBe(6);
      expect(first.rowsChecked).toBe(300);
      expect(first.chains).toHaveLength(1);
      expect(first.chains[0]?.headSeq).toBe(6);

      // A redelivery of an already recorded batch (same token) adds nothing, even from a new process.
      const [row] = await store.query<{ dedup_token: string }>(`SELECT dedup_token FROM ${store.database}.batches WHERE seq = 2`);
      const chain = await createBatchChain(store);
      await chain.record([makeEvent(5000)], row!.dedup_token);
      const again = await verifyChain(store);
      expect(again.batchesChecked).toBe(6);
      // A new batch extends the chain from the stored head.
      const extra = makeEvent(5001);
      await store.insertEvents([extra], 'extra');
      await chain.record([extra], 'extra');
      const extended = await verifyChain(store);
      expect(extended.ok).toBe(true);
      expect(extended.chains[0]?.headSeq).toBe(7);
    });
  });

  it('names a modified row', async () => {
    await withStore(async (store) => {
      await store.command(`ALTER TABLE ${store.database}.events UPDATE path = '/tampered' WHERE event_id = 'e00123' ${sync}`);
      const result = await verifyChain(store);
      expect(result.ok).toBe(false);
      expect(result.problems).toHaveLength(1);
      expect(result.problems[0]).toMatchObject({ kind: 'row_modified' });
      expect(result.problems[0]?.detail).toContain('e00123');
    });
  });

  it('detects a changed timestamp column', async () => {
    await withStore(async (store) => {
      await store.command(`ALTER TABLE ${store.database}.events UPDATE observed_time = observed_time + INTERVAL 1 SECOND WHERE event_id = 'e00007' ${sync}`);
      const result = await verifyChain(store);
      expect(result.problems.map((p) => p.kind)).toEqual(['row_modified']);
    });
  });

  it('detects a deleted row', async () => {
    await withStore(async (store) => {
      await store.command(`ALTER TABLE ${store.database}.events DELETE WHERE event_id = 'e00042' ${sync}`);
      const result = await verifyChain(store);
      expect(result.problems).toHaveLength(1);
      expect(result.problems[0]).toMatchObject({ kind: 'row_missing' });
      expect(result.problems[0]?.detail).toContain('1 of');
    });
  });

  it('detects a deleted batch, in the middle and at the start', async () => {
    await withStore(async (store) => {
      await store.command(`ALTER TABLE ${store.database}.batches DELETE WHERE seq = 3 ${sync}`);
      const middle = await verifyChain(store);
      // The deleted batch's rows are now listed by no batch: reported as added rows too (per hour).
      const added = (problems: ChainProblem[]) => problems.filter((p) => p.kind === 'row_added').reduce((n, p) => n + Number(/^(\d+) row/.exec(p.detail)?.[1]), 0);
      expect(middle.problems.filter((p) => p.kind !== 'row_added')).toEqual([expect.objectContaining({ kind: 'batch_missing', seq: 4 })]);
      expect(added(middle.problems)).toBe(50);
      await store.command(`ALTER TABLE ${store.database}.batches DELETE WHERE seq = 1 ${sync}`);
      const start = await verifyChain(store);
      expect(start.problems.filter((p) => p.kind !== 'row_added').map((p) => [p.kind, p.seq])).toEqual([
        ['batch_missing', 2],
        ['batch_missing', 4],
      ]);
      expect(added(start.problems)).toBe(100);
    });
  });

  it('detects a reordered chain', async () => {
    await withStore(async (store) => {
      const db = store.database;
      const rows = await store.query<Record<string, unknown>>(`SELECT * FROM ${db}.batches WHERE seq IN (4, 5) ORDER BY seq`);
      await store.command(`ALTER TABLE ${db}.batches DELETE WHERE seq IN (4, 5) ${sync}`);
      const swapped = rows.map((r, i) => ({ ...r, seq: i === 0 ? 5 : 4 }));
      await store.insertRows('batches', swapped, { insert_deduplication_token: 'reordered' });
      const result = await verifyChain(store);
      expect(result.ok).toBe(false);
      expect(result.problems.map((p) => p.kind)).toContain('chain_broken');
    });
  });

  it('detects an edited batch record', async () => {
    await withStore(async (store) => {
      await store.command(`ALTER TABLE ${store.database}.batches UPDATE row_count = row_count - 1 WHERE seq = 2 ${sync}`);
      const counted = await verifyChain(store);
      expect(counted.ok).toBe(false);
      await store.command(`ALTER TABLE ${store.database}.batches UPDATE rows_digest = repeat('0', 64) WHERE seq = 5 ${sync}`);
      const result = await verifyChain(store);
      expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'batch_modified', seq: 5 }));
    });
  });

  it('leaves out rows past retention and checks only the links of expired batches', async () => {
    const config = createTestConfig({ sink: { batchRows: 50, batchWaitMs: 10 }, clickhouse: { retentionDays: 2 } });
    const store = await createTestStore(config);
    try {
      const old = Array.from({ length: 20 }, (_, i) => makeEvent(i, { time: Date.now() - 3 * 86_400_000 + i }));
      const recent = Array.from({ length: 30 }, (_, i) => makeEvent(100 + i));
      await seed(store, config, [...old, ...recent], format);
      const [stored] = await store.query<{ n: string }>(`SELECT count() AS n FROM ${store.database}.events`);
      expect(Number(stored?.n)).toBe(30);
      const now = await verifyChain(store);
      expect(now.problems).toEqual([]);
      expect(now.rowsChecked).toBe(30);
      const later = await verifyChain(store, undefined, { now: () => Date.now() + 5 * 86_400_000 });
      expect(later.ok).toBe(true);
      expect(later.batchesExpired).toBe(later.batchesChecked);
      expect(later.rowsChecked).toBe(0);
    } finally {
      await dropTestStore(store);
    }
  });

  it('verifies rows with NUL, control, line-separator and astral characters and large numbers', async () => {
    const config = createTestConfig({ sink: { batchRows: 50, batchWaitMs: 10 }, clickhouse: { retentionDays: 3650 } });
    const store = await createTestStore(config);
    try {
      const odd = [
        makeEvent(1, { raw: 'tab\there', path: '/a%00b' }),
        makeEvent(2, { raw: 'nul \u0000 and \u0007 bell\r\n', decision_reason: '\u2028\u2029' }),
        makeEvent(3, { src_identity: 'spiffe://x/\u{10FFFF}', bytes_in: 2 ** 52 }),
        // Ids whose UTF-16 order differs from their UTF-8 byte order (the order verify reads them
        // back in): U+FF01 is below U+1F600 as code points and bytes, above it as UTF-16 units.
        makeEvent(4, { event_id: 'id-\uFF01' }),
        makeEvent(5, { event_id: 'id-\u{1F600}' }),
      ];
      await seed(store, config, odd, format);
      const result = await verifyChain(store);
      expect(result.problems).toEqual([]);
      expect(result.rowsChecked).toBe(5);
    } finally {
      await dropTestStore(store);
    }
  });

  it('reports progress', async () => {
    await withStore(async (store) => {
      const seen: number[] = [];
      await verifyChain(store, (p) => seen.push(p.batchesChecked));
      expect(seen.at(-1)).toBe(6);
    });
  });
});

describe('verify at scale', () => {
  it('checks hundreds of batches in numeric order and a batch larger than a page, and names modified, missing and added rows', { timeout: 240_000 }, async () => {
    const config = createTestConfig({ clickhouse: { retentionDays: 3650 } });
    const store = await createTestStore(config);
    try {
      const chain = await createBatchChain(store);
      const small = 250;
      let n = 0;
      for (let b = 0; b < small; b++) {
        const events = Array.from({ length: 4 }, () => makeEvent(n++));
        await store.insertEvents(events, `scale:${b}`);
        await chain.record(events, `scale:${b}`);
      }
      // One batch of 12,000 rows: read back over several pages.
      const big = Array.from({ length: 12_000 }, () => makeEvent(n++));
      await store.insertEvents(big, 'scale:big');
      await chain.record(big, 'scale:big');
      const total = small * 4 + big.length;

      const intact = await verifyChain(store);
      expect(intact.problems).toEqual([]);
      expect(intact.batchesChecked).toBe(small + 1);
      expect(intact.rowsChecked).toBe(total);
      expect(intact.chains).toEqual([expect.objectContaining({ firstSeq: 1, headSeq: small + 1, batches: small + 1 })]);

      const db = store.database;
      // Batch 200 holds events 796..799; the big batch (seq 251) starts at event 1000.
      await store.command(`ALTER TABLE ${db}.events UPDATE path = '/forged' WHERE event_id = 'e00797' ${sync}`);
      await store.command(`ALTER TABLE ${db}.events DELETE WHERE event_id = 'e07000' ${sync}`);
      const forged = makeEvent(99_999, { event_id: 'forged-row-1' });
      await store.insertEvents([forged]);
      const tampered = await verifyChain(store);
      expect(tampered.problems.map((p) => [p.kind, p.seq])).toEqual([
        ['row_modified', 200],
        ['row_missing', small + 1],
        ['row_added', 0],
      ]);
      expect(tampered.problems[0]?.detail).toContain('e00797');
      expect(tampered.problems[2]?.detail).toContain('forged-row-1');
      expect(tampered.rowsChecked).toBe(total - 1);
    } finally {
      await dropTestStore(store);
    }
  });

  it('reports a copied row (same event_id twice) as added', async () => {
    await withStore(async (store) => {
      const [row] = await store.query<Record<string, unknown>>(`SELECT * FROM ${store.database}.events WHERE event_id = 'e00042'`);
      await store.insertRows('events', [row as Record<string, unknown>], { insert_deduplicate: 0 });
      const result = await verifyChain(store);
      expect(result.problems).toEqual([expect.objectContaining({ kind: 'row_added', detail: expect.stringMatching(/^1 row\(s\) .* \(duplicated rows\)$/) })]);
    });
  });
});
