// `ztwatch detector`: the detector role alone (distributed deployment).
import { runRoles } from '../roles.ts';

/** Runs the detector role until SIGINT/SIGTERM. */
export function run(args: string[]): Promise<number> {
  return runRoles('detector', ['detector'], args);
}
