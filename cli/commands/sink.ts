// `ztwatch sink`: the sink role alone (distributed deployment).
import { runRoles } from '../roles.ts';

/** Runs the sink role until SIGINT/SIGTERM. */
export function run(args: string[]): Promise<number> {
  return runRoles('sink', ['sink'], args);
}
