// The console's only way to data: the ztwatch API on the same origin, with the token the user gave
// at login (kept in sessionStorage, so it is gone when the tab closes). Same roles, same audit log
// as any other client.

const TOKEN_KEY = 'ztwatch.token';

export type Role = 'ingest' | 'analyst' | 'auditor' | 'admin';

export interface Session {
  readonly name: string;
  readonly role: Role;
}

/** An API refusal, with the API's machine-readable code. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called when the API refuses the token (401): the console returns to the login page. */
let onUnauthenticated: (message: string) => void = () => undefined;

export function setUnauthenticatedHandler(handler: (message: string) => void): void {
  onUnauthenticated = handler;
}

export function readToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export type Params = Record<string, string | number | boolean | readonly string[] | undefined | null>;

/** `path?query` with empty parameters left out; arrays become repeated parameters. */
export function buildUrl(path: string, params: Params = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) for (const v of value) search.append(key, v);
    else search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

async function readError(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not our error body (a proxy's page): keep the status line.
  }
  return new ApiError(res.status, code, message);
}

/** Fetches with the session's token; a 401 ends the session. */
export async function apiFetch(path: string, params: Params = {}, token: string | null = readToken()): Promise<Response> {
  const res = await fetch(buildUrl(path, params), { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
  if (res.ok) return res;
  const err = await readError(res);
  if (res.status === 401) onUnauthenticated(err.message);
  throw err;
}

/** GETs JSON. */
export async function apiGet<T>(path: string, params: Params = {}): Promise<T> {
  return (await apiFetch(path, params)).json() as Promise<T>;
}

/** Checks a token and returns who it is. */
export async function checkToken(token: string): Promise<Session> {
  const res = await fetch('/v1/session', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) throw await readError(res);
  return (await res.json()) as Session;
}
