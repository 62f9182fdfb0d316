// The committed dashboards/generated/*.json must be exactly what the code generates (the CI diff),
// generation must be deterministic, and --check must name every stale file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED_DIR, findStaleDashboardFiles, generateDashboardFiles, renderDashboardJson, writeDashboardFiles } from '../../dashboards/generate.ts';
import { DASHBOARDS } from '../../dashboards/src/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'ztwatch-dashboards-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('generated dashboards', () => {
  it('match a fresh generation byte for byte (run `node bin/run-ts.js dashboards/generate.ts` and commit)', () => {
    const committed = readdirSync(GENERATED_DIR).filter((name) => name.endsWith('.json')).sort();
    const fresh = generateDashboardFiles();
    expect(committed).toEqual([...fresh.keys()].sort());
    for (const [name, content] of fresh) expect(readFileSync(join(GENERATED_DIR, name), 'utf8'), name).toBe(content);
    expect(findStaleDashboardFiles()).toEqual([]);
  });

  it('are one file per dashboard, named by uid', () => {
    expect([...generateDashboardFiles().keys()]).toEqual(DASHBOARDS.map((d) => `${d.uid}.json`));
  });

  it('render deterministically: sorted keys, two-space indent, trailing newline', () => {
    expect(renderDashboardJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: () => 1 } })).toBe('{\n  "a": {\n    "d": [\n      2,\n      {\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n');
    const first = generateDashboardFiles();
    const second = generateDashboardFiles();
    expect([...second]).toEqual([...first]);
    for (const content of first.values()) {
      expect(content.endsWith('}\n')).toBe(true);
      expect(content).not.toMatch(/"(created|updated|timestamp)"/);
    }
  });

  it('--check names missing, changed and leftover files', () => {
    writeDashboardFiles(scratch);
    expect(findStaleDashboardFiles(scratch)).toEqual([]);
    const [first, second] = DASHBOARDS;
    writeFileSync(join(scratch, `${first?.uid}.json`), '{}\n');
    rmSync(join(scratch, `${second?.uid}.json`));
    writeFileSync(join(scratch, 'old-dashboard.json'), '{}\n');
    expect(findStaleDashboardFiles(scratch)).toEqual([`${first?.uid}.json (differs)`, `${second?.uid}.json (missing)`, 'old-dashboard.json (no longer generated)'].sort());
  });

  it('--check exits 0 from the command line when the committed files are current, 1 with the stale files listed', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/run-ts.js', 'dashboards/generate.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
    const current = cli('--check');
    expect([current.status, current.stdout]).toEqual([0, expect.stringContaining('up to date')]);
    const dir = join(scratch, 'cli');
    expect(cli('--dir', dir).status).toBe(0);
    writeFileSync(join(dir, `${DASHBOARDS[0]?.uid}.json`), '{}\n');
    const stale = cli('--check', '--dir', dir);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain(`${DASHBOARDS[0]?.uid}.json (differs)`);
  });
});
