// Writes every dashboard to dashboards/generated/<uid>.json, byte-for-byte deterministic (keys
// sorted, two-space indent, trailing newline, no timestamps), so CI can regenerate and diff.
//   node bin/run-ts.js dashboards/generate.ts           write the files
//   node bin/run-ts.js dashboards/generate.ts --check   exit 1 when committed files differ
//   --dir DIR                                           another output directory (default generated/)
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DASHBOARDS } from './src/index.ts';

/** Where generated dashboards live (mounted into Grafana as /var/lib/grafana/dashboards). */
export const GENERATED_DIR = fileURLToPath(new URL('./generated/', import.meta.url));

/** A JSON value with object keys sorted recursively; functions and undefined dropped like JSON does. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined || typeof item === 'function' ? null : sortKeys(item)));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined || typeof item === 'function') continue;
      out[key] = sortKeys(item);
    }
    return out;
  }
  return value;
}

/** Serializes a dashboard model deterministically. */
export function renderDashboardJson(dashboard: unknown): string {
  return `${JSON.stringify(sortKeys(dashboard), null, 2)}\n`;
}

/** File name → content of every dashboard, freshly built. */
export function generateDashboardFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const definition of DASHBOARDS) files.set(`${definition.uid}.json`, renderDashboardJson(definition.build()));
  return files;
}

/** Names of files in `dir` that are missing, stale or not generated any more. */
export function findStaleDashboardFiles(dir: string = GENERATED_DIR): string[] {
  const fresh = generateDashboardFiles();
  const present = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.json')) : [];
  const stale: string[] = [];
  for (const [name, content] of fresh) {
    const path = join(dir, name);
    if (!existsSync(path)) stale.push(`${name} (missing)`);
    else if (readFileSync(path, 'utf8') !== content) stale.push(`${name} (differs)`);
  }
  for (const name of present) if (!fresh.has(name)) stale.push(`${name} (no longer generated)`);
  return stale.sort();
}

/** Writes every dashboard into `dir`; returns the names written. */
export function writeDashboardFiles(dir: string = GENERATED_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const files = generateDashboardFiles();
  for (const [name, content] of files) writeFileSync(join(dir, name), content);
  return [...files.keys()];
}

function main(args: readonly string[]): number {
  const dirIndex = args.indexOf('--dir');
  const dirArg = dirIndex === -1 ? undefined : args[dirIndex + 1];
  if (dirIndex !== -1 && dirArg === undefined) {
    console.error('usage: generate.ts [--check] [--dir DIR]');
    return 2;
  }
  const dir = dirArg === undefined ? GENERATED_DIR : resolve(dirArg);
  if (args.includes('--check')) {
    const stale = findStaleDashboardFiles(dir);
    if (stale.length === 0) {
      console.log(`dashboards: ${DASHBOARDS.length} generated files in ${dir} are up to date`);
      return 0;
    }
    console.error(`dashboards: generated JSON in ${dir} is out of date; run \`node bin/run-ts.js dashboards/generate.ts\` and commit:\n  ${stale.join('\n  ')}`);
    return 1;
  }
  const written = writeDashboardFiles(dir);
  console.log(`dashboards: wrote ${written.length} files to ${dir}: ${written.join(', ')}`);
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) process.exitCode = main(process.argv.slice(2));
