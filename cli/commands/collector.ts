// `ztwatch collector`: the collector role alone (distributed deployment).
import { runRoles } from '../roles.ts';

/** Runs the collector role until SIGINT/SIGTERM. */
export function run(args: string[]): Promise<number> {
  return runRoles('collector', ['collector'], args);
}
