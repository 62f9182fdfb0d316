// Shared entry of the commands that read the local store directly (access, verify, retention):
// --help, config, a migrated store for the duration of the command, closed afterwards.
import type { Writable } from 'node:stream';
import { loadConfig, type FrozenConfig } from '../core/config.ts';
import { createStore, type Store } from '../store/client.ts';

/** Where a command writes its output and its messages (tests pass their own streams). */
export interface CommandIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Prints `usage` for --help, else runs `command` on a migrated store and closes it. */
export async function runWithLocalStore(
  args: string[],
  usage: string,
  command: (io: CommandIo, store: Store, config: FrozenConfig) => Promise<number>,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const config = loadConfig();
  const store = createStore(config);
  try {
    await store.migrate();
    return await command({ stdout: process.stdout, stderr: process.stderr }, store, config);
  } finally {
    await store.close();
  }
}
