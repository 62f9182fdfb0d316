import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildConfig } from '../../core/config.ts';
import { hasCode } from '../../core/errors.ts';
import { hashToken } from '../../api/auth.ts';
import { runToken } from '../../cli/commands/token.ts';
import { captureIo } from './io.ts';

describe('ztwatch token', () => {
  it('prints a new token once and a config entry that accepts it', () => {
    const io = captureIo();
    expect(runToken(['--name', 'fluent-bit', '--role', 'ingest'], io)).toBe(0);
    const [first, ...rest] = io.out().split('\n');
    const token = first!.replace('token: ', '');
    expect(token).toMatch(/^ztw_[A-Za-z0-9_-]{43}$/);
    const yaml = parseYaml(rest.join('\n')) as { auth: { tokens: Array<{ name: string; role: string; sha256: string }> } };
    expect(yaml.auth.tokens).toEqual([{ name: 'fluent-bit', role: 'ingest', sha256: hashToken(token) }]);
    // The entry is valid configuration as printed.
    expect(buildConfig(yaml).auth.tokens[0]?.sha256).toBe(hashToken(token));
    expect(io.err()).toContain('shown once');
    const again = captureIo();
    runToken(['--name', 'fluent-bit', '--role', 'ingest'], again);
    expect(again.out()).not.toContain(token);
  });

  it('refuses unknown roles and bad names', () => {
    for (const args of [['--name', 'x', '--role', 'root'], ['--role', 'admin'], ['--name', 'a b', '--role', 'admin'], ['--name', 'x']]) {
      expect(() => runToken(args, captureIo()), args.join(' ')).toThrow(expect.objectContaining({ code: 'ZTW_CLI_USAGE' }));
    }
    try {
      runToken(['--name', 'x', '--role', 'root'], captureIo());
    } catch (err) {
      expect(hasCode(err, 'ZTW_CLI_USAGE')).toBe(true);
    }
  });

  it('runs through the ztwatch command', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const out = execFileSync('node', ['bin/ztwatch.js', 'token', '--name', 'grafana', '--role', 'analyst'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/^token: ztw_/);
    expect(out).toContain('role: analyst');
  });
});
