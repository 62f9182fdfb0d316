// Stages talk through data, never by importing a later stage (DESIGN §1). This reads every import
// in the stage folders and checks it against the allowed table.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What each stage may import from the project (itself always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  bus: ['core'],
  ingest: ['core', 'bus'],
  store: ['core', 'bus'],
  detectors: ['core', 'store'],
  posture: ['core', 'store'],
  incidents: ['core', 'store'],
  api: ['core', 'bus', 'ingest', 'store', 'detectors', 'posture', 'incidents'],
  dashboards: ['core'],
  console: [],
};

/**
 * Stage folders that must exist: a missing one fails the test instead of passing it silently.
 * incidents/, posture/ and console/ (DESIGN §1) are checked like the others once they exist, and
 * are not required before; dashboards/ is checked when present.
 */
const REQUIRED_STAGES = ['core', 'ingest', 'bus', 'store', 'detectors', 'api'] as const;

/** Only the Kafka adapter (bus/kafka.ts and bus/kafka/) may import the Kafka client; only store/ may build a ClickHouse client. */
const LIBRARY_OWNERS: Record<string, (file: string) => boolean> = {
  '@platformatic/kafka': (file) => file === 'bus/kafka.ts' || file.startsWith('bus/kafka/'),
  '@clickhouse/client': (file) => file.startsWith('store/'),
  chdb: (file) => file.startsWith('store/'),
};

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (name === 'node_modules' || name === 'generated') continue;
    if (statSync(full).isDirectory()) out.push(...listTs(full));
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every module specifier a file imports or re-exports. */
export function readImports(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(IMPORT)) specs.push((m[1] ?? m[2]) as string);
  return specs;
}

describe('architecture', () => {
  it('reads imports, including type-only and dynamic ones (self-check of the scanner)', () => {
    expect(readImports("import type { A } from '../store/x.ts';\nconst m = await import('../api/y.ts');\nexport { b } from './b.ts';")).toEqual([
      '../store/x.ts',
      '../api/y.ts',
      './b.ts',
    ]);
  });

  const violations: string[] = [];
  const checked: string[] = [];
  for (const [stage, allowed] of Object.entries(ALLOWED)) {
    if (!existsSync(join(ROOT, stage))) {
      if ((REQUIRED_STAGES as readonly string[]).includes(stage)) violations.push(`stage folder ${stage}/ is missing`);
      continue;
    }
    const files = listTs(join(ROOT, stage));
    if (files.length > 0) checked.push(stage);
    for (const file of files) {
      const rel = relative(ROOT, file);
      for (const spec of readImports(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.')) {
          const target = relative(ROOT, resolve(dirname(file), spec)).split('/')[0] as string;
          if (target !== stage && !allowed.includes(target)) violations.push(`${rel} imports ${spec} (${stage} may import: ${allowed.join(', ') || 'nothing of ours'})`);
        } else {
          for (const [lib, mayImport] of Object.entries(LIBRARY_OWNERS)) {
            if ((spec === lib || spec.startsWith(`${lib}/`)) && !mayImport(rel)) violations.push(`${rel} imports ${spec}, which only its owning adapter may import`);
          }
        }
      }
    }
  }

  it('no stage imports a later stage or another stage’s library', () => {
    expect(violations).toEqual([]);
  });

  it('found source files in every required stage folder', () => {
    expect(REQUIRED_STAGES.filter((stage) => !checked.includes(stage))).toEqual([]);
  });
});
