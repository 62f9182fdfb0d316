// Migrations owned by the compliance stage (see store/schema.ts for the id ranges).
import type { Migration } from '../schema.ts';

export const COMPLIANCE_MIGRATIONS: readonly Migration[] = [];
