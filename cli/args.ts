// Small flag parser for subcommands, built on node:util parseArgs, with usage errors coded.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createError } from '../core/errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses `args` against `options`; unknown flags raise ZTW_CLI_USAGE with the usage text. */
export function parseCommandArgs<T extends Options>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw createError('CLI_USAGE', `${(err as Error).message}\n${usage}`);
  }
}
