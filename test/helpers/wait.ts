// The one polling helper of the tests: for conditions that come true asynchronously (a write seen
// by a query, a broker that delivers, an alert that fires). Never used to show that nothing happened.

/** How long `waitFor` polls, and what it says when the condition never comes true. */
export interface WaitOptions {
  /** Fail after this long, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
  /** Pause between two probes, in milliseconds. @default 50 */
  readonly intervalMs?: number;
  /** What is awaited, for the timeout message (a function is asked only then). @default 'the condition' */
  readonly what?: string | (() => string);
  /** Extra text for the timeout message (e.g. a server's log). */
  readonly details?: () => string;
}

function describe(what: WaitOptions['what']): string {
  return typeof what === 'function' ? what() : (what ?? 'the condition');
}

/**
 * Probes until `probe` returns a value other than undefined, null or false, and returns it. A
 * probe that throws is retried; its last error is named if time runs out.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const details = options.details ? `\n${options.details()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(options.what)}${cause}${details}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
