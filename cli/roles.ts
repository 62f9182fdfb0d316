// Shared entry for `run` and the single-role commands: flags, config, start, wait for a signal.
import { loadConfig } from '../core/config.ts';
import { createError } from '../core/errors.ts';
import { parseCommandArgs } from './args.ts';
import { parseRoles, startRuntime, waitForShutdown, type Role } from './runtime.ts';

/** Starts `defaultRoles` (or `--roles`) with config from `--config`/env and runs until a signal. */
export async function runRoles(command: string, defaultRoles: readonly Role[], args: string[]): Promise<number> {
  const usage = `usage: ztwatch ${command} [--config FILE] [--port N] [--host H]${command === 'run' ? ' [--roles collector,sink,detector,api]' : ''}${
    defaultRoles.includes('collector') ? ' [--follow PATH[:FORMAT]]...' : ''
  }`;
  const { values } = parseCommandArgs(
    args,
    {
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      roles: { type: 'string' },
      follow: { type: 'string', multiple: true },
    },
    usage,
  );
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  let roles: Set<Role>;
  try {
    roles = values.roles ? parseRoles(values.roles) : new Set(defaultRoles);
  } catch (err) {
    throw createError('CLI_USAGE', (err as Error).message);
  }
  if (values.roles && command !== 'run') throw createError('CLI_USAGE', `--roles is only for 'ztwatch run'\n${usage}`);
  const http: Record<string, unknown> = {};
  if (values.port !== undefined) http.port = values.port;
  if (values.host !== undefined) http.host = values.host;
  const config = loadConfig({ file: values.config, overrides: Object.keys(http).length ? { http } : {} });
  const follow = (values.follow ?? []).map((spec) => {
    const at = spec.lastIndexOf(':');
    return at > 0 ? { path: spec.slice(0, at), format: spec.slice(at + 1) } : { path: spec, format: 'auto' };
  });
  if (follow.length > 0 && !roles.has('collector')) throw createError('CLI_USAGE', '--follow needs the collector role');
  const runtime = await startRuntime({ config, roles, follow });
  const label = command === 'run' ? [...roles].join('+') : command;
  process.stdout.write(`ztwatch ${label} ready on ${runtime.url}\n`);
  return waitForShutdown(runtime);
}
