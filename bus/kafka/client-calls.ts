// Calls into the Kafka client: errors wrapped once at the edge as ZTW_BUS_UNAVAILABLE, a deadline
// on every call, and a sleep that close() can cut short.
import { createError, type ZtwError } from '../../core/errors.ts';

/** Wraps a Kafka client error once, at the edge, as a retryable ZTW_BUS_UNAVAILABLE. */
export function wrapError(what: string, cause: unknown): ZtwError {
  return createError('BUS_UNAVAILABLE', `${what}: ${describeError(cause)}`, { cause });
}

/** The client's errors nest (MultipleErrors of ResponseErrors); the innermost messages say most. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested) && nested.length > 0) {
    const inner = [...new Set(nested.map((e) => describeError(e)))].slice(0, 3).join('; ');
    return `${err.message} (${inner})`.slice(0, 500);
  }
  return err.message.slice(0, 500);
}

/** True when any error in the chain carries the Kafka error name `apiId` (e.g. OFFSET_OUT_OF_RANGE). */
export function hasApiError(err: unknown, apiId: string): boolean {
  const found = (err as { findBy?: (property: string, value: unknown) => unknown }).findBy?.('apiId', apiId);
  return found !== null && found !== undefined;
}

/**
 * Rejects with ZTW_BUS_UNAVAILABLE when `promise` has not settled within `ms`. A client call whose
 * connection died at the wrong moment may never call back; the loops must not wait on it forever.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(createError('BUS_UNAVAILABLE', `${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** An interruptible pause: `close()` wakes every sleeper at once. */
export function createSleeper(): { sleep(ms: number): Promise<void>; wakeAll(): void } {
  const wakers = new Set<() => void>();
  return {
    sleep(ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wakers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms));
        wakers.add(done);
      });
    },
    wakeAll() {
      for (const wake of [...wakers]) wake();
    },
  };
}
