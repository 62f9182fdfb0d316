// Each registered detector's declaration (DetectorDeclaration) against the facts it cannot be the
// source of: the rollups the store migrations create and its SQL reads, the scenario generator's
// attack classes and their expected detector, its section and documented option defaults in
// docs/detectors.md. (Alert rules, runbooks and docs tables are generated from the declarations:
// test/alerts/generate.test.ts.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ATTACK_CLASSES, EXPECTED_DETECTOR } from '../../ingest/simulate/scenario.ts';
import { SCANNED_ROLLUPS } from '../../detectors/engine.ts';
import { DETECTORS, DETECTOR_NAMES } from '../../detectors/registry.ts';
import { DETECTOR_ROLLUPS, type RollupName } from '../../detectors/rollups.ts';
import { DETECTOR_MIGRATIONS } from '../../store/migrations/detectors.ts';
import { KIND_BY_DETECTOR, KIND_ORDER } from '../../incidents/correlator.ts';

const detectors = Object.values(DETECTORS);
const ROLLUP_NAMES = Object.keys(DETECTOR_ROLLUPS) as RollupName[];
const CTX = { database: 'd', cluster: '', retentionDays: 1, anomalyRetentionDays: 1, deadLetterRetentionDays: 1, auditRetentionDays: 1 };

describe('detector registry and declarations', () => {
  it('lists each detector once, under the name its module declares', () => {
    expect(new Set(detectors.map((d) => d.name)).size).toBe(detectors.length);
    for (const [name, d] of Object.entries(DETECTORS)) expect(d.name).toBe(name);
    expect(DETECTOR_NAMES).toEqual(detectors.map((d) => d.name));
    for (const d of detectors) {
      expect(d.name).toMatch(/^[a-z][a-z_]*$/);
      for (const other of d.explains) expect(DETECTOR_NAMES, `${d.name} explains ${other}`).toContain(other);
    }
  });

  it('gives every registered detector, and only those, an incident kind and a place in the kind order', () => {
    expect(Object.keys(KIND_BY_DETECTOR).sort()).toEqual([...DETECTOR_NAMES].sort());
    expect([...KIND_ORDER].sort()).toEqual([...DETECTOR_NAMES].sort());
  });

  it('reads exactly the rollups it declares, each created by a detector migration', () => {
    const created = DETECTOR_MIGRATIONS.flatMap((m) => m.statements(CTX)).join('\n');
    for (const table of ROLLUP_NAMES) expect(created, table).toMatch(new RegExp(`CREATE TABLE IF NOT EXISTS d\\.${table}\\b`));
    for (const d of detectors) {
      const read = ROLLUP_NAMES.filter((table) => new RegExp(`\\bd\\.${table}\\b`).test(d.query('d')));
      expect(read, d.name).toEqual([...d.rollups].sort((a, b) => ROLLUP_NAMES.indexOf(a) - ROLLUP_NAMES.indexOf(b)));
    }
    // The engine scans what the declarations read: every rollup read by a registered detector.
    expect([...SCANNED_ROLLUPS].sort()).toEqual([...new Set(detectors.flatMap((d) => d.rollups))].sort());
  });

  it('claims the attack classes of the scenario generator, each by the detector the eval expects', () => {
    const claimed = detectors.flatMap((d) => d.attackClasses.map((cls) => [cls, d.name] as const));
    expect(claimed.map(([cls]) => cls).sort()).toEqual([...ATTACK_CLASSES].sort());
    expect(Object.fromEntries(claimed)).toEqual(EXPECTED_DETECTOR);
  });

  it('declares one alert each, with its own name and routing labels, never a severity', () => {
    expect(new Set(detectors.map((d) => d.alert.name)).size).toBe(detectors.length);
    for (const d of detectors) {
      expect(d.alert.name).toMatch(/^Ztwatch[A-Z][A-Za-z]+$/);
      expect(d.alert.for).toMatch(/^\d+[smh]$/);
      // The generated promtool tests look at 15s for a pending alert.
      expect(Number.parseInt(d.alert.for, 10) * { s: 1, m: 60, h: 3600 }[d.alert.for.slice(-1) as 's' | 'm' | 'h']).toBeGreaterThan(15);
      expect(d.alert.labels).not.toHaveProperty('severity');
      expect(d.alert.description).toContain('{{ $labels.detector }}');
      expect(d.alert.description).toContain('{{ $labels.subject }}');
      expect(d.runbook.confirm.length).toBeGreaterThan(0);
      expect(d.runbook.firstActions.length).toBeGreaterThan(0);
    }
  });

  it('has a section in docs/detectors.md listing every option with its default', () => {
    const docs = readFileSync(new URL('../../docs/detectors.md', import.meta.url), 'utf8');
    for (const d of detectors) {
      const start = docs.indexOf(`### \`${d.name}\`\n`);
      expect(start, `docs/detectors.md has no section ### \`${d.name}\``).toBeGreaterThan(-1);
      const end = docs.indexOf('\n#', start + 1);
      const section = docs.slice(start, end === -1 ? undefined : end);
      const documented = new Map([...section.matchAll(/^\| `detectors\.options\.[a-z_]+\.([A-Za-z0-9]+)`[^|]*\| (.+?) \|$/gm)].map((m) => [m[1] as string, m[2] as string]));
      for (const [key, schema] of Object.entries(d.optionsSchema.properties as Record<string, { default?: unknown }>)) {
        expect(documented.has(key), `docs/detectors.md: ${d.name}.${key} is not documented`).toBe(true);
        // A note may follow the default: `900 (0: off)`.
        const shown = (documented.get(key) ?? '').replace(/ \(.*\)$/, '').replace(/^`|`$/g, '');
        expect(shown, `docs/detectors.md: default of ${d.name}.${key}`).toBe(JSON.stringify(schema.default));
      }
      expect([...documented.keys()].sort(), d.name).toEqual(Object.keys(d.optionsSchema.properties).sort());
    }
  });
});
