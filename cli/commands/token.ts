// `ztwatch token --name N --role R`: creates a random API token, prints it once, and prints the
// `auth.tokens` entry (its SHA-256) to add to ztwatch.yaml. The token itself is stored nowhere.
import { randomBytes } from 'node:crypto';
import { API_ROLES, type ApiRole } from '../../core/config.ts';
import { createError } from '../../core/errors.ts';
import { hashToken } from '../../api/auth.ts';
import { parseCommandArgs } from '../args.ts';
import type { CommandIo } from '../local-store.ts';

const USAGE = `usage: ztwatch token --name NAME --role ROLE

Roles: ${API_ROLES.join(', ')}
  ingest    POST /v1/ingest/*, /v1/opa/logs (collectors, OPA, the Kubernetes audit webhook)
  analyst   anomalies, service graph, access history without raw lines
  auditor   access history with raw lines, export, chain verification
  admin     everything, including the audit log
Prints the token once (keep it in a secret store) and the entry for ztwatch.yaml.`;

/** Bytes of randomness in a token (256 bits). */
const TOKEN_BYTES = 32;

/** A new token: `ztw_` and 43 base64url characters. */
export function createToken(): string {
  return `ztw_${randomBytes(TOKEN_BYTES).toString('base64url')}`;
}

/** Runs `ztwatch token`; returns the exit code. */
export function runToken(args: string[], io: CommandIo): number {
  const { values } = parseCommandArgs(args, { name: { type: 'string' }, role: { type: 'string' } }, USAGE);
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const name = values.name?.trim();
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(name)) throw createError('CLI_USAGE', `--name: letters, digits, . _ @ - (1–128 characters)\n${USAGE}`);
  if (!values.role || !(API_ROLES as readonly string[]).includes(values.role)) throw createError('CLI_USAGE', `--role: one of ${API_ROLES.join(', ')}\n${USAGE}`);
  const role = values.role as ApiRole;
  const token = createToken();
  io.stderr.write('The token is shown once; store it in a secret manager now.\n');
  io.stdout.write(
    `token: ${token}\n\n# ztwatch.yaml\nauth:\n  tokens:\n    - name: ${name}\n      role: ${role}\n      sha256: ${hashToken(token)}\n`,
  );
  return 0;
}

/** `ztwatch token …` */
export async function run(args: string[]): Promise<number> {
  return runToken(args, { stdout: process.stdout, stderr: process.stderr });
}
