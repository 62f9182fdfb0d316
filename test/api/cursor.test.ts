// Page cursors are signed: a cursor the API issued pages on; one a client built or altered is
// refused with 400 ZTW_API_BAD_CURSOR. The key is the installation's (config secret, or generated
// once under the data dir). Also: the configured header timeout is the one Node enforces.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configureCursorKey, CURSOR_KEY_FILE, decodeCursor, encodeCursor, fingerprintQuery, resolveCursorKey } from '../../api/cursor.ts';
import { buildConfig } from '../../core/config.ts';
import { hasCode } from '../../core/errors.ts';
import { createTestApi } from './helpers.ts';

const shape = { t: 'number', id: 'string' } as const;
const fingerprint = fingerprintQuery({ service: 'payments' });
const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return hasCode(err, 'ZTW_API_BAD_CURSOR');
  }
  return false;
};

describe('signed cursors', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('decodes what it issued and refuses client-built, altered and re-signed cursors', () => {
    const cursor = encodeCursor(fingerprint, { t: 1_700_000_000_000, id: 'abc' });
    expect(decodeCursor(cursor, fingerprint, shape)).toEqual({ t: 1_700_000_000_000, id: 'abc' });
    const [payload, signature] = cursor.split('.') as [string, string];
    const built = Buffer.from(JSON.stringify({ v: 1, q: fingerprint, p: { t: 0, id: 'zzz' } })).toString('base64url');
    expect(refused(() => decodeCursor(built, fingerprint, shape))).toBe(true);
    expect(refused(() => decodeCursor(`${built}.${signature}`, fingerprint, shape))).toBe(true);
    const altered = Buffer.from(Buffer.from(payload, 'base64url').toString('utf8').replace('abc', 'abd')).toString('base64url');
    expect(refused(() => decodeCursor(`${altered}.${signature}`, fingerprint, shape))).toBe(true);
    expect(refused(() => decodeCursor(`${payload}.${signature.slice(0, -2)}AA`, fingerprint, shape))).toBe(true);
    // Another installation's key: its cursors are not ours.
    configureCursorKey(Buffer.alloc(32, 7));
    expect(refused(() => decodeCursor(cursor, fingerprint, shape))).toBe(true);
  });

  it('keeps a generated key in the data dir (0600) across restarts, and prefers the configured secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwatch-cursor-'));
    dirs.push(dir);
    const first = resolveCursorKey(buildConfig({ dataDir: dir }));
    const again = resolveCursorKey(buildConfig({ dataDir: dir }));
    expect(first?.length).toBe(32);
    expect(again?.equals(first as Buffer)).toBe(true);
    expect(readFileSync(join(dir, CURSOR_KEY_FILE), 'utf8').trim()).toBe((first as Buffer).toString('hex'));
    expect(statSync(join(dir, CURSOR_KEY_FILE)).mode & 0o777).toBe(0o600);
    const configured = resolveCursorKey(buildConfig({ dataDir: dir, http: { cursorSecret: 'shared by every api process' } }));
    expect(configured?.equals(first as Buffer)).toBe(false);
    expect(resolveCursorKey(buildConfig({ dataDir: ':memory:' }))).toBeUndefined();
  });

  it('answers 400 ZTW_API_BAD_CURSOR to a client-built cursor on the API', async () => {
    const api = await createTestApi();
    try {
      const built = Buffer.from(JSON.stringify({ v: 1, q: fingerprintQuery({}), p: { t: 0, id: 'x' } })).toString('base64url');
      const res = await api.app.inject({ method: 'GET', url: `/v1/access?cursor=${built}`, headers: api.auth('auditor') });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'ZTW_API_BAD_CURSOR' } });
    } finally {
      await api.close();
    }
  });
});

describe('header timeout', () => {
  it('closes a connection whose headers do not arrive within http.requestTimeoutMs with 408', { timeout: 20_000 }, async () => {
    const api = await createTestApi({ withStore: false, withIngest: false, overrides: { http: { requestTimeoutMs: 500 } } });
    try {
      const url = new URL(await api.app.listen({ host: '127.0.0.1', port: 0 }));
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString('utf8')));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
      // Node's default check interval alone (30 s) would outlast this test's 20 s.
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await api.close();
    }
  });
});
