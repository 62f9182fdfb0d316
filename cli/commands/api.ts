// `ztwatch api`: the api role alone (distributed deployment).
import { runRoles } from '../roles.ts';

/** Runs the api role until SIGINT/SIGTERM. */
export function run(args: string[]): Promise<number> {
  return runRoles('api', ['api'], args);
}
