// The files derived from the detector declarations (alerts/generate.ts) must be exactly what is
// committed (the CI diff); the rules must read back to the declared text; --check must name every
// stale file. promtool itself runs the generated rules and tests in promtool.test.ts.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DOC_BLOCKS,
  ROOT,
  RULES_FILE,
  RULE_TESTS_FILE,
  expectedAlertLabels,
  findStaleDetectorFiles,
  generateDetectorFiles,
  renderAlertTemplate,
  renderDetectorRules,
  replaceBlock,
  runbookUrl,
  wrapWords,
} from '../../alerts/generate.ts';
import { DETECTORS } from '../../detectors/registry.ts';

const scratch = mkdtempSync(join(tmpdir(), 'ztwatch-alerts-generate-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const detectors = Object.values(DETECTORS);

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A copy of the generated files and the docs they live in, under a fresh root. */
function copyCheckout(name: string): string {
  const root = join(scratch, name);
  for (const file of [RULES_FILE, RULE_TESTS_FILE, ...Object.keys(DOC_BLOCKS)]) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    cpSync(join(ROOT, file), join(root, file));
  }
  return root;
}

describe('files generated from the detector declarations', () => {
  it('match a fresh generation byte for byte (run `npm run alerts` and commit)', () => {
    for (const [file, content] of generateDetectorFiles()) expect(readFileSync(join(ROOT, file), 'utf8'), file).toBe(content);
    expect(findStaleDetectorFiles()).toEqual([]);
  });

  it('give each declared alert one rule that reads back to the declaration', () => {
    const doc = parseYaml(renderDetectorRules(detectors)) as { groups: Array<{ name: string; rules: Rule[] }> };
    expect(doc.groups.map((g) => g.name)).toEqual(['ztwatch-detectors']);
    const rules = doc.groups[0]?.rules ?? [];
    expect(rules.map((r) => r.alert)).toEqual(detectors.map((d) => d.alert.name));
    for (const [i, d] of detectors.entries()) {
      const rule = rules[i] as Rule;
      expect(rule.expr).toContain(`ztwatch_anomaly_firing{detector="${d.name}", severity!="info"}`);
      expect(rule.for).toBe(d.alert.for);
      expect(rule.labels).toEqual(d.alert.labels);
      expect(rule.annotations).toEqual({ summary: d.alert.summary, description: d.alert.description, runbook_url: runbookUrl(d.alert) });
    }
  });

  it('replace only what lies between the markers, and fail without them', () => {
    const begin = '<!-- generated:x (alerts/generate.ts, from the detector declarations) -->';
    const text = `before\n${begin}\nold\n<!-- end generated:x -->\nafter\n`;
    expect(replaceBlock(text, 'x', 'new\nlines')).toBe(`before\n${begin}\nnew\nlines\n<!-- end generated:x -->\nafter\n`);
    expect(() => replaceBlock('no markers', 'x', 'new')).toThrow(/no block/);
  });

  it('wrap prose without breaking a template or starting a line with a Markdown marker', () => {
    expect(wrapWords('aaa bbb ccc', 7)).toEqual(['aaa bbb', 'ccc']);
    expect(wrapWords('score {{ printf "%.2f" $value }}, severity', 10)).toEqual(['score', '{{ printf "%.2f" $value }},', 'severity']);
    // "- x" or "2. x" at the start of a line would become a list item.
    expect(wrapWords('one two - three', 7)).toEqual(['one', 'two -', 'three']);
    expect(wrapWords('one two 2. three', 7)).toEqual(['one', 'two 2.', 'three']);
    for (const d of detectors) {
      for (const text of [d.runbook.meaning, ...d.runbook.confirm, ...d.runbook.firstActions]) {
        const lines = wrapWords(text, 100);
        expect(lines.join(' ')).toBe(text.replace(/\s+/g, ' '));
        expect(lines.slice(1).every((l) => !/^([-*+>]|#+|\d+[.)]) /.test(l)), text).toBe(true);
      }
    }
  });

  it('render the alert templates as Prometheus does for the ones declared, and refuse any other', () => {
    const labels = { subject: 'a -> b', severity: 'high', detector: 'x' };
    expect(renderAlertTemplate('{{ $labels.subject }} (score {{ printf "%.2f" $value }})', labels, 3.5)).toBe('a -> b (score 3.50)');
    expect(() => renderAlertTemplate('{{ $labels.nope }}', labels, 1)).toThrow(/label/);
    expect(() => renderAlertTemplate('{{ humanize $value }}', labels, 1)).toThrow(/not one/);
    for (const d of detectors) {
      const rendered = expectedAlertLabels(d, 'a -> b', 'high');
      expect(() => renderAlertTemplate(d.alert.summary + d.alert.description, rendered, 1), d.name).not.toThrow();
    }
    expect(expectedAlertLabels(DETECTORS.deny_spike!, 'a -> b', 'low')).toMatchObject({ src: 'a', dst: 'b' });
    expect(expectedAlertLabels(DETECTORS.fanout!, 'a', 'low')).toMatchObject({ src: 'a' });
    expect(expectedAlertLabels(DETECTORS.fanout!, 'a -> *', 'low')).not.toHaveProperty('dst');
  });

  it('--check exits 0 on the committed files, 1 naming each stale one; writing repairs them', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/run-ts.js', 'alerts/generate.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
    const current = cli('--check');
    expect([current.status, current.stdout]).toEqual([0, expect.stringContaining('up to date')]);
    const root = copyCheckout('cli');
    expect(cli('--check', '--root', root).status).toBe(0);
    writeFileSync(join(root, RULES_FILE), 'groups: []\n');
    const runbooks = join(root, 'docs/runbooks.md');
    writeFileSync(runbooks, readFileSync(runbooks, 'utf8').replace('### ZtwatchDenySpike', '### ZtwatchDenySpikes'));
    const stale = cli('--check', '--root', root);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain(`${RULES_FILE} (differs)`);
    expect(stale.stderr).toContain('docs/runbooks.md (differs)');
    expect(stale.stderr).not.toContain('README.md');
    expect(cli('--root', root).status).toBe(0);
    expect(cli('--check', '--root', root).status).toBe(0);
    expect(readFileSync(join(root, RULES_FILE), 'utf8')).toBe(readFileSync(join(ROOT, RULES_FILE), 'utf8'));
  });
});
