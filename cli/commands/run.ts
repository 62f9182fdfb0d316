// `ztwatch run`: every role in one process (or the ones named by --roles).
import { ROLES } from '../runtime.ts';
import { runRoles } from '../roles.ts';

/** Runs all roles (embedded default: memory bus + chDB) until SIGINT/SIGTERM. */
export function run(args: string[]): Promise<number> {
  return runRoles('run', ROLES, args);
}
