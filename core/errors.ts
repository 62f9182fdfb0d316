// Errors with stable codes (ZTW_<AREA>_<WHAT>), each saying whether a retry can help. The API maps
// codes to HTTP statuses in one place (api/errors.ts); a test checks every code is mapped.

export interface ZtwErrorSpec {
  readonly code: string;
  readonly message: string;
  /** True when the same call may succeed later (broker down, disk full), false for bad input. */
  readonly retryable: boolean;
}

/** Base class of every ztwatch error. */
export class ZtwError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(spec: ZtwErrorSpec, detail?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(detail ? `${spec.message}: ${detail}` : spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ZtwError';
    this.code = spec.code;
    this.retryable = spec.retryable;
    this.details = options?.details;
  }
}

const spec = (code: string, message: string, retryable = false): ZtwErrorSpec => ({ code, message, retryable });

/** Every error code ztwatch raises, in one list. */
export const ERRORS = {
  CONFIG_INVALID: spec('ZTW_CONFIG_INVALID', 'invalid configuration'),
  CONFIG_UNREADABLE: spec('ZTW_CONFIG_UNREADABLE', 'configuration file could not be read'),
  INGEST_UNKNOWN_SOURCE: spec('ZTW_INGEST_UNKNOWN_SOURCE', 'unknown source'),
  INGEST_BODY_TOO_LARGE: spec('ZTW_INGEST_BODY_TOO_LARGE', 'request body too large'),
  INGEST_BAD_ENCODING: spec('ZTW_INGEST_BAD_ENCODING', 'request body could not be decoded'),
  INGEST_BAD_CONTENT_TYPE: spec('ZTW_INGEST_BAD_CONTENT_TYPE', 'unsupported content type'),
  INGEST_BAD_BODY: spec('ZTW_INGEST_BAD_BODY', 'request body could not be read'),
  INGEST_EMPTY: spec('ZTW_INGEST_EMPTY', 'request body holds no records'),
  INGEST_OVERLOADED: spec('ZTW_INGEST_OVERLOADED', 'ingest is saturated, retry later', true),
  INGEST_FILE_UNREADABLE: spec('ZTW_INGEST_FILE_UNREADABLE', 'input file could not be read'),
  INGEST_SCRAPE_FAILED: spec('ZTW_INGEST_SCRAPE_FAILED', 'metrics scrape failed', true),
  INGEST_STATE_UNWRITABLE: spec('ZTW_INGEST_STATE_UNWRITABLE', 'collector position could not be saved', true),
  BUS_UNAVAILABLE: spec('ZTW_BUS_UNAVAILABLE', 'message bus unavailable', true),
  BUS_CLOSED: spec('ZTW_BUS_CLOSED', 'message bus is closed'),
  STORE_UNAVAILABLE: spec('ZTW_STORE_UNAVAILABLE', 'event store unavailable', true),
  STORE_QUERY_FAILED: spec('ZTW_STORE_QUERY_FAILED', 'event store query failed', true),
  STORE_MIGRATION_FAILED: spec('ZTW_STORE_MIGRATION_FAILED', 'event store migration failed'),
  API_UNAUTHENTICATED: spec('ZTW_API_UNAUTHENTICATED', 'authentication required'),
  API_FORBIDDEN: spec('ZTW_API_FORBIDDEN', 'role not allowed on this route'),
  API_BAD_REQUEST: spec('ZTW_API_BAD_REQUEST', 'invalid request'),
  API_NOT_FOUND: spec('ZTW_API_NOT_FOUND', 'not found'),
  API_BAD_CURSOR: spec('ZTW_API_BAD_CURSOR', 'invalid cursor'),
  API_TIMEOUT: spec('ZTW_API_TIMEOUT', 'request timed out', true),
  CLI_USAGE: spec('ZTW_CLI_USAGE', 'invalid command line'),
  API_INTERNAL: spec('ZTW_API_INTERNAL', 'internal error', true),
} as const satisfies Record<string, ZtwErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

/** Creates a coded error: `createError('STORE_UNAVAILABLE', 'ping failed', { cause })`. */
export function createError(
  name: ErrorName,
  detail?: string,
  options?: { cause?: unknown; details?: Record<string, unknown> },
): ZtwError {
  return new ZtwError(ERRORS[name], detail, options);
}

/** True when `err` is a ztwatch error with `code`. */
export function hasCode(err: unknown, code: string): err is ZtwError {
  return err instanceof ZtwError && err.code === code;
}
