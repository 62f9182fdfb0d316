// Errors with stable codes (ZTW_<AREA>_<WHAT>). Each code is declared once, below, with its
// message, the HTTP status the API answers with and whether a retry can help (like fastify's
// lib/errors.js): `createError` accepts only declared names, and a declaration without a status or
// retryability does not compile. api/errors.ts reads statuses from here.

/** What one declared error means. */
export interface ErrorDeclaration {
  readonly message: string;
  /** HTTP status the API answers with: 4xx for bad input, 5xx for a fault of ours or a dependency. */
  readonly status: number;
  /** True when the same call may succeed later (broker down, disk full), false for bad input. */
  readonly retryable: boolean;
}

const DECLARED = {
  CONFIG_INVALID: { message: 'invalid configuration', status: 500, retryable: false },
  CONFIG_UNREADABLE: { message: 'configuration file could not be read', status: 500, retryable: false },
  INGEST_UNKNOWN_SOURCE: { message: 'unknown source', status: 404, retryable: false },
  INGEST_BODY_TOO_LARGE: { message: 'request body too large', status: 413, retryable: false },
  INGEST_BAD_ENCODING: { message: 'request body could not be decoded', status: 400, retryable: false },
  INGEST_BAD_CONTENT_TYPE: { message: 'unsupported content type', status: 415, retryable: false },
  INGEST_BAD_BODY: { message: 'request body could not be read', status: 400, retryable: false },
  INGEST_EMPTY: { message: 'request body holds no records', status: 400, retryable: false },
  INGEST_OVERLOADED: { message: 'ingest is saturated, retry later', status: 503, retryable: true },
  INGEST_TOO_MANY_RECORDS: { message: 'request holds too many records', status: 413, retryable: false },
  INGEST_FILE_UNREADABLE: { message: 'input file could not be read', status: 500, retryable: false },
  INGEST_SCRAPE_FAILED: { message: 'metrics scrape failed', status: 502, retryable: true },
  INGEST_STATE_UNWRITABLE: { message: 'collector position could not be saved', status: 500, retryable: true },
  BUS_UNAVAILABLE: { message: 'message bus unavailable', status: 503, retryable: true },
  BUS_CLOSED: { message: 'message bus is closed', status: 503, retryable: false },
  STORE_UNAVAILABLE: { message: 'event store unavailable', status: 503, retryable: true },
  // The engine rejected the statement (syntax, types, limits): the same statement fails again.
  STORE_QUERY_FAILED: { message: 'event store query failed', status: 500, retryable: false },
  STORE_MIGRATION_FAILED: { message: 'event store migration failed', status: 500, retryable: false },
  API_UNAUTHENTICATED: { message: 'authentication required', status: 401, retryable: false },
  API_FORBIDDEN: { message: 'role not allowed on this route', status: 403, retryable: false },
  API_BAD_REQUEST: { message: 'invalid request', status: 400, retryable: false },
  API_NOT_FOUND: { message: 'not found', status: 404, retryable: false },
  API_BAD_CURSOR: { message: 'invalid cursor', status: 400, retryable: false },
  API_TIMEOUT: { message: 'request timed out', status: 408, retryable: true },
  CLI_USAGE: { message: 'invalid command line', status: 400, retryable: false },
  POSTURE_POLICY_INVALID: { message: 'policy document is malformed', status: 400, retryable: false },
  POSTURE_POLICY_UNSUPPORTED: { message: 'policy field cannot be evaluated', status: 422, retryable: false },
  POSTURE_INVENTORY_INVALID: { message: 'inventory is not a kubectl JSON dump', status: 400, retryable: false },
  POSTURE_OPA_FAILED: { message: 'opa evaluation failed', status: 500, retryable: false },
  API_INTERNAL: { message: 'internal error', status: 500, retryable: true },
} as const satisfies Record<string, ErrorDeclaration>;

/** Name of a declared error, as `createError` takes it: `'STORE_UNAVAILABLE'`. */
export type ErrorName = keyof typeof DECLARED;
/** Code of a declared error, as it leaves the process: `'ZTW_STORE_UNAVAILABLE'`. */
export type ErrorCode = `ZTW_${ErrorName}`;

/** One declared error with its code. */
export interface ZtwErrorSpec extends ErrorDeclaration {
  readonly code: ErrorCode;
}

/** Every error ztwatch raises, by name, each with its code, message, HTTP status and retryability. */
export const ERRORS = Object.freeze(
  Object.fromEntries(Object.entries(DECLARED).map(([name, d]) => [name, Object.freeze({ code: `ZTW_${name}`, ...d })])),
) as { readonly [N in ErrorName]: ZtwErrorSpec & { readonly code: `ZTW_${N}` } };

const SPEC_BY_CODE: ReadonlyMap<string, ZtwErrorSpec> = new Map(Object.values(ERRORS).map((spec) => [spec.code, spec]));

/** The declaration of `code`, or undefined for a code ztwatch does not declare. */
export function specOf(code: string): ZtwErrorSpec | undefined {
  return SPEC_BY_CODE.get(code);
}

/** Base class of every ztwatch error. */
export class ZtwError extends Error {
  readonly code: ErrorCode;
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

/** Creates a coded error: `createError('STORE_UNAVAILABLE', 'ping failed', { cause })`. */
export function createError(
  name: ErrorName,
  detail?: string,
  options?: { cause?: unknown; details?: Record<string, unknown> },
): ZtwError {
  return new ZtwError(ERRORS[name], detail, options);
}

/** The declared code of `err`, or `fallback` when `err` is not a ztwatch error: the code a stage counts a failure under. */
export function codeOf(err: unknown, fallback: ErrorCode): ErrorCode {
  return err instanceof ZtwError ? err.code : fallback;
}

/** True when `err` is a ztwatch error with `code`. */
export function hasCode(err: unknown, code: ErrorCode): err is ZtwError {
  return err instanceof ZtwError && err.code === code;
}
