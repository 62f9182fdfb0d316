// Every detector, listed once, in the order the engine runs them. Adding a detector = one module
// (its definition declares everything about it, see DetectorDeclaration) and one line here, then
// `npm run alerts` to regenerate the alert rules and docs tables derived from the declarations.
import type { AnyDetector } from './detector.ts';
import { authzDenyBurst } from './authz-deny-burst.ts';
import { denySpike } from './deny-spike.ts';
import { fanout } from './fanout.ts';
import { mtlsFailure } from './mtls-failure.ts';
import { newEdge } from './new-edge.ts';
import { plaintext } from './plaintext.ts';
import { volume } from './volume.ts';

/** The detectors of DESIGN §6, in run order. */
const REGISTERED: readonly AnyDetector[] = [denySpike, mtlsFailure, plaintext, newEdge, fanout, volume, authzDenyBurst];

/** The detectors by name (each module declares its own name). */
export const DETECTORS: Readonly<Record<string, AnyDetector>> = Object.freeze(Object.fromEntries(REGISTERED.map((d) => [d.name, d])));

/** Detector names, in run order. */
export const DETECTOR_NAMES = Object.keys(DETECTORS);
