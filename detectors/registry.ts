// Every detector, listed once, in the order the engine runs them. Adding a detector = one module
// and one line here.
import type { AnyDetector } from './detector.ts';
import { authzDenyBurst } from './authz-deny-burst.ts';
import { denySpike } from './deny-spike.ts';
import { fanout } from './fanout.ts';
import { mtlsFailure } from './mtls-failure.ts';
import { newEdge } from './new-edge.ts';
import { plaintext } from './plaintext.ts';
import { volume } from './volume.ts';

/** The detectors of DESIGN §6, by name. */
export const DETECTORS: Readonly<Record<string, AnyDetector>> = {
  deny_spike: denySpike,
  mtls_failure: mtlsFailure,
  plaintext,
  new_edge: newEdge,
  fanout,
  volume,
  authz_deny_burst: authzDenyBurst,
};

/** Detector names, in run order. */
export const DETECTOR_NAMES = Object.keys(DETECTORS);
