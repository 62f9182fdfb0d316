// Time parameters of query routes: ISO-8601 date-times, validated into the range ClickHouse's
// DateTime64 holds, so an absurd year is a 400 and never an engine error.
import { createError } from '../core/errors.ts';

/** Latest instant DateTime64(3) holds: 2299-12-31T23:59:59.999Z. */
export const MAX_TIME_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

/** Milliseconds of an ISO-8601 date-time, or undefined when absent; 400 when out of range. */
export function parseTimeMs(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw createError('API_BAD_REQUEST', `${name} is not a date-time`);
  if (ms < 0 || ms > MAX_TIME_MS) throw createError('API_BAD_REQUEST', `${name} must lie between 1970 and 2299`);
  return ms;
}
