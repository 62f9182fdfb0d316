// Each format's declaration (FormatDeclaration) against what is written about it elsewhere: the
// registry is built from the declarations, and the README's formats table, the formats table of
// docs/ingest-formats.md and the skip reasons of docs/ingest-sources.md must say what they declare.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SOURCES } from '../../../core/event.ts';
import { renderFormatRows } from '../../../ingest/parsers/format.ts';
import { FORMATS, PARSERS, SKIP_REASONS } from '../../../ingest/parsers/index.ts';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/** The lines between `<!-- checked:NAME … -->` and `<!-- end checked:NAME -->`. */
function checkedBlock(text: string, name: string): string[] {
  const start = text.indexOf(`<!-- checked:${name} `);
  const end = text.indexOf(`<!-- end checked:${name} -->`);
  expect(start, `no block checked:${name}`).toBeGreaterThan(-1);
  expect(end).toBeGreaterThan(start);
  return text.slice(text.indexOf('\n', start) + 1, end).trimEnd().split('\n');
}

describe('format declarations', () => {
  it('build the registry: each format once, under its own name, with a known source', () => {
    expect(new Set(FORMATS.map((f) => f.name)).size).toBe(FORMATS.length);
    expect(Object.keys(PARSERS)).toEqual(FORMATS.map((f) => f.name));
    for (const f of FORMATS) {
      expect(PARSERS[f.name]).toBe(f);
      expect(SOURCES).toContain(f.source);
      expect(f.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(f.docs).toMatch(/^docs\/[a-z-]+\.md(#[a-z0-9-]+)?$/);
      expect(read(f.docs.split('#')[0] as string).length).toBeGreaterThan(0);
    }
  });

  it('give the pipeline every skip reason, each named after its format and declared once', () => {
    const all = FORMATS.flatMap((f) => f.skipReasons);
    expect(new Set(all).size).toBe(all.length);
    expect([...SKIP_REASONS].sort()).toEqual([...all].sort());
    for (const f of FORMATS) for (const reason of f.skipReasons) expect(reason.startsWith(`${f.source}_`), `${f.name}: ${reason}`).toBe(true);
  });

  it('split a Kubernetes audit webhook body only for formats declaring that envelope', () => {
    expect(FORMATS.filter((f) => f.envelope === 'k8s_event_list').map((f) => f.source)).toEqual(['k8s_audit']);
  });

  it('are what the README formats table says, row for row', () => {
    const rows = checkedBlock(read('README.md'), 'formats');
    const expected = renderFormatRows(FORMATS);
    // Header, separator, one row per format in registry order, then rows for what is not a format.
    expect(rows.slice(2, 2 + expected.length), `README.md formats table; expected rows:\n${expected.join('\n')}`).toEqual(expected);
    expect(rows.slice(2 + expected.length).every((r) => !/^\| `[a-z0-9-]+` \|/.test(r) || r.startsWith('| `auto` |'))).toBe(true);
  });

  it('carry the source docs/ingest-formats.md gives each format it lists', () => {
    const docs = read('docs/ingest-formats.md');
    const start = docs.indexOf('| format | `source` of the events |');
    expect(start).toBeGreaterThan(-1);
    const tableText = docs.slice(start, docs.indexOf('\n\n', start));
    const table = [...tableText.matchAll(/^\| `([a-z0-9-]+)` \| `([a-z0-9_]+)` \|/gm)];
    expect(table.length).toBeGreaterThan(0);
    for (const [, format, source] of table) expect(PARSERS[format as string]?.source, `docs/ingest-formats.md: ${format}`).toBe(source);
  });

  it('have every skip reason documented in docs/ingest-sources.md', () => {
    const docs = read('docs/ingest-sources.md');
    for (const reason of SKIP_REASONS) expect(docs, reason).toContain(`\`${reason}\``);
  });
});
