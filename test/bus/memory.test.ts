// The in-memory bus of the embedded deployment: batching, backpressure, redelivery with the same
// token, whenIdle and close.
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../bus/memory.ts';
import { TOPICS, type ConsumedBatch } from '../../bus/port.ts';
import { createError, hasCode } from '../../core/errors.ts';
import { createMetrics } from '../../core/metrics.ts';

const messages = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ key: `k${(from + i) % 3}`, value: String(from + i) }));

describe('MemoryBus', () => {
  it('hands every message once, in order, in batches of at most maxBatchMessages', async () => {
    const bus = new MemoryBus();
    const batches: ConsumedBatch[] = [];
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 40, maxBatchWaitMs: 5 }, async (b) => {
      batches.push(b);
    });
    await bus.publish(TOPICS.events, messages(0, 100));
    await bus.publish(TOPICS.events, messages(100, 5));
    await bus.whenIdle();
    await sub.close();
    await bus.close();
    expect(batches.flatMap((b) => b.messages.map((m) => Number(m.value)))).toEqual(Array.from({ length: 105 }, (_, i) => i));
    expect(Math.max(...batches.map((b) => b.messages.length))).toBeLessThanOrEqual(40);
    expect(new Set(batches.map((b) => b.dedupToken)).size).toBe(batches.length);
    expect(batches.every((b) => b.partition === undefined && b.topic === TOPICS.events)).toBe(true);
  });

  it('waits up to maxBatchWaitMs for a partial batch to fill', async () => {
    const bus = new MemoryBus();
    const sizes: number[] = [];
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 10, maxBatchWaitMs: 300 }, async (b) => {
      sizes.push(b.messages.length);
    });
    await bus.publish(TOPICS.events, messages(0, 3));
    await new Promise((r) => setTimeout(r, 50));
    await bus.publish(TOPICS.events, messages(3, 3));
    await bus.whenIdle();
    await sub.close();
    await bus.close();
    // Both publishes arrived within the wait, so they left as one batch.
    expect(sizes).toEqual([6]);
  });

  it('is saturated at maxInFlightMessages and holds publishers until the consumer catches up', async () => {
    const inFlight: number[] = [];
    const bus = new MemoryBus({ maxInFlightMessages: 10, onInFlight: (n) => inFlight.push(n) });
    await bus.publish(TOPICS.events, messages(0, 10));
    expect(bus.isSaturated()).toBe(true);
    // What happened, in order: the held publisher may leave only after the consumer took a batch.
    const order: string[] = [];
    const waiting = bus.publish(TOPICS.events, messages(10, 5)).then(() => {
      order.push('released');
    });
    const seen: number[] = [];
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 4, maxBatchWaitMs: 1 }, async (b) => {
      order.push(`batch from ${b.messages[0]?.value}`);
      for (const m of b.messages) seen.push(Number(m.value));
    });
    await waiting;
    expect(order[0]).toBe('batch from 0');
    expect(order).toContain('released');
    await bus.whenIdle();
    expect(bus.isSaturated()).toBe(false);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(inFlight.at(-1)).toBe(0);
    expect(Math.max(...inFlight)).toBeLessThanOrEqual(15);
    await sub.close();
    await bus.close();
  });

  it('redelivers a rejected batch after the backoff, with the same messages and token', async () => {
    const bus = new MemoryBus({ retryBackoffMs: 100 });
    const deliveries: Array<{ token: string; values: string[]; atMs: number }> = [];
    let failures = 2;
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 50, maxBatchWaitMs: 1 }, async (b) => {
      deliveries.push({ token: b.dedupToken, values: b.messages.map((m) => m.value), atMs: Date.now() });
      if (failures-- > 0) throw new Error('store down');
    });
    await bus.publish(TOPICS.events, messages(0, 20));
    await bus.whenIdle();
    await sub.close();
    await bus.close();
    expect(deliveries).toHaveLength(3);
    expect(new Set(deliveries.map((d) => d.token)).size).toBe(1);
    expect(deliveries[1]?.values).toEqual(deliveries[0]?.values);
    expect(deliveries[2]?.values).toEqual(deliveries[0]?.values);
    expect((deliveries[1]?.atMs ?? 0) - (deliveries[0]?.atMs ?? 0)).toBeGreaterThanOrEqual(90);
  });

  it('gives each group every message; whenIdle waits for all of them', async () => {
    const bus = new MemoryBus();
    const counts = { a: 0, b: 0 };
    const subA = await bus.subscribe(TOPICS.events, { group: 'a', maxBatchMessages: 7, maxBatchWaitMs: 1 }, async (b) => {
      counts.a += b.messages.length;
    });
    const subB = await bus.subscribe(TOPICS.events, { group: 'b', maxBatchMessages: 100, maxBatchWaitMs: 1 }, async (b) => {
      await new Promise((r) => setTimeout(r, 20));
      counts.b += b.messages.length;
    });
    await bus.publish(TOPICS.events, messages(0, 50));
    await bus.whenIdle();
    expect(counts).toEqual({ a: 50, b: 50 });
    await expect(bus.subscribe(TOPICS.events, { group: 'a', maxBatchMessages: 1, maxBatchWaitMs: 1 }, async () => undefined)).rejects.toThrow(/already consumes/);
    await subA.close();
    await subB.close();
    await bus.close();
  });

  it('close waits for the batch in hand; afterwards publish and subscribe fail with ZTW_BUS_CLOSED', async () => {
    const bus = new MemoryBus();
    let finished = false;
    let started: () => void = () => undefined;
    const inHand = new Promise<void>((resolve) => (started = resolve));
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 5, maxBatchWaitMs: 1 }, async () => {
      started();
      // A slow handler: a close that did not wait for it would return before it finished.
      await new Promise((r) => setTimeout(r, 100));
      finished = true;
    });
    await bus.publish(TOPICS.events, messages(0, 5));
    await inHand;
    await sub.close();
    expect(finished).toBe(true);
    await bus.close();
    const err = await bus.publish(TOPICS.events, messages(0, 1)).catch((e: unknown) => e);
    expect(hasCode(err, 'ZTW_BUS_CLOSED')).toBe(true);
    const subErr = await bus.subscribe(TOPICS.events, { group: 'x', maxBatchMessages: 1, maxBatchWaitMs: 1 }, async () => undefined).catch((e: unknown) => e);
    expect(hasCode(subErr, 'ZTW_BUS_CLOSED')).toBe(true);
  });

  it('close releases a producer blocked on a full bus with ZTW_BUS_CLOSED instead of leaving it hanging', async () => {
    const bus = new MemoryBus({ maxInFlightMessages: 5 });
    await bus.publish(TOPICS.events, messages(0, 5));
    const blocked = bus.publish(TOPICS.events, messages(5, 1)).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    // The producer is held: it queued itself for room synchronously, before publish returned.
    expect(bus.isSaturated()).toBe(true);
    await bus.close();
    expect(hasCode(await blocked, 'ZTW_BUS_CLOSED')).toBe(true);
  });
});

describe('MemoryBus across runs and acknowledgement', () => {
  const drain = async (bus: MemoryBus, count: number) => {
    const tokens: string[] = [];
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 10, maxBatchWaitMs: 1 }, async (b) => {
      tokens.push(b.dedupToken);
    });
    await bus.publish(TOPICS.events, messages(0, count));
    await bus.whenIdle();
    await sub.close();
    await bus.close();
    return tokens;
  };

  it('gives the same offset range of two bus instances different dedup tokens', async () => {
    const first = await drain(new MemoryBus(), 25);
    const second = await drain(new MemoryBus(), 25);
    expect(first).toHaveLength(3);
    expect(second).toHaveLength(3);
    expect(first.filter((t) => second.includes(t))).toEqual([]);
  });

  it('with acknowledgeWhenHandled, resolves publish only after the group handled the messages', async () => {
    const bus = new MemoryBus({ acknowledgeWhenHandled: true });
    const handled: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 100, maxBatchWaitMs: 1 }, async (b) => {
      await gate;
      for (const m of b.messages) handled.push(m.value);
    });
    let acknowledged = false;
    const published = bus.publish(TOPICS.events, messages(0, 5)).then(() => {
      acknowledged = true;
      return [...handled];
    });
    // The handler is held: the publisher waits, whatever the event loop does meanwhile.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(acknowledged).toBe(false);
    release();
    expect(await published).toEqual(['0', '1', '2', '3', '4']);
    await sub.close();
    await bus.close();
  });

  it('with acknowledgeWhenHandled, rejects publishers with ZTW_BUS_CLOSED when the bus closes first', async () => {
    const bus = new MemoryBus({ acknowledgeWhenHandled: true });
    const published = bus.publish(TOPICS.events, messages(0, 3));
    await bus.close();
    await expect(published).rejects.toSatisfy((err: unknown) => hasCode(err, 'ZTW_BUS_CLOSED'));
  });

  it('drains every published message when its subscription closes', async () => {
    const bus = new MemoryBus();
    const seen: number[] = [];
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 7, maxBatchWaitMs: 10_000 }, async (b) => {
      for (const m of b.messages) seen.push(Number(m.value));
    });
    await bus.publish(TOPICS.events, messages(0, 30));
    await sub.close();
    await bus.close();
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});

describe('MemoryBus telemetry', () => {
  it('counts received, sent, dropped{reason} and errors{code} on the bus stage', async () => {
    const metrics = createMetrics();
    const bus = new MemoryBus({ stage: metrics.stage('bus'), retryBackoffMs: 10 });
    let failures = 1;
    const sub = await bus.subscribe(TOPICS.events, { group: 'g', maxBatchMessages: 100, maxBatchWaitMs: 1 }, async () => {
      if (failures-- > 0) throw createError('STORE_UNAVAILABLE', 'store down');
    });
    await bus.publish(TOPICS.events, messages(0, 10));
    await bus.whenIdle();
    await sub.close();
    // Left with no consumer, then closed: these are dropped.
    await bus.publish(TOPICS.deadLetters, messages(10, 3));
    await bus.close();
    await expect(bus.publish(TOPICS.events, messages(13, 2))).rejects.toSatisfy((err: unknown) => hasCode(err, 'ZTW_BUS_CLOSED'));

    const values = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values.filter((v) => v.labels.stage === 'bus') ?? [];
    expect((await values('ztwatch_stage_received_events_total')).map((v) => v.value)).toEqual([13]);
    expect((await values('ztwatch_stage_sent_events_total')).map((v) => v.value)).toEqual([10]);
    const dropped = Object.fromEntries((await values('ztwatch_stage_dropped_events_total')).map((v) => [v.labels.reason, v.value]));
    expect(dropped).toEqual({ bus_closed: 3 + 2 });
    const errors = Object.fromEntries((await values('ztwatch_stage_errors_total')).map((v) => [v.labels.code, v.value]));
    expect(errors).toEqual({ ZTW_STORE_UNAVAILABLE: 1, ZTW_BUS_CLOSED: 1 });
  });
});
