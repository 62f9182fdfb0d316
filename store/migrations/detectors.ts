// Migrations owned by the detectors stage (see store/schema.ts for the id ranges).
import type { Migration } from '../schema.ts';

export const DETECTOR_MIGRATIONS: readonly Migration[] = [];
