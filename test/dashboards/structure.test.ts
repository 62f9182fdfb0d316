// Each dashboard is a valid Grafana model: the agreed uid and title, panels with unique ids and
// grid positions that fit and do not overlap, datasources that provisioning creates, and every
// template variable it references defined on the dashboard.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS } from '../../dashboards/src/index.ts';
import { listPanels, listQueries, listStrings, listVariableReferences, type DashboardModel } from './walk.ts';

const PROVISIONING = new URL('../../dashboards/provisioning/', import.meta.url);

interface ProvisionedDatasource {
  uid: string;
  type: string;
  url?: string;
  jsonData?: Record<string, unknown>;
}

const datasources = (parse(readFileSync(new URL('datasources/ztwatch.yml', PROVISIONING), 'utf8')) as { datasources: ProvisionedDatasource[] }).datasources;
const providers = (parse(readFileSync(new URL('dashboards/ztwatch.yml', PROVISIONING), 'utf8')) as { providers: Array<{ type: string; options: { path: string } }> }).providers;

const EXPECTED = [
  ['ztwatch-soc', 'ztwatch / SOC overview'],
  ['ztwatch-graph', 'ztwatch / Service graph'],
  ['ztwatch-compliance', 'ztwatch / Compliance access history'],
  ['ztwatch-pipeline', 'ztwatch / Pipeline health'],
];

describe('provisioning', () => {
  it('creates the ClickHouse and Prometheus datasources the dashboards use', () => {
    const clickhouse = datasources.find((d) => d.uid === 'ztwatch-clickhouse');
    expect(clickhouse).toMatchObject({ type: 'grafana-clickhouse-datasource', jsonData: { host: 'clickhouse', port: 9000, protocol: 'native', defaultDatabase: 'ztwatch' } });
    expect(datasources.find((d) => d.uid === 'ztwatch-prometheus')).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  });

  it('loads dashboards from the directory the generated JSON is mounted at', () => {
    expect(providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) })]);
  });
});

describe.each(DASHBOARDS.map((d) => [d.uid, d] as const))('%s', (_uid, definition) => {
  const dashboard = definition.build() as unknown as DashboardModel;
  const panels = listPanels(dashboard);

  it('has the agreed uid and title', () => {
    expect(EXPECTED).toContainEqual([dashboard.uid, dashboard.title]);
    expect([dashboard.uid, dashboard.title]).toEqual([definition.uid, definition.title]);
  });

  it('has panels with unique ids and grid positions inside the 24-column grid', () => {
    expect(panels.length).toBeGreaterThan(0);
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && (id as number) > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.gridPos, `gridPos of ${panel.title}`).toBeDefined();
      const { x, y, w, h } = panel.gridPos as { x: number; y: number; w: number; h: number };
      expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, `${panel.title} at ${JSON.stringify(panel.gridPos)}`).toBe(true);
    }
  });

  it('has no overlapping panels', () => {
    const boxes = panels.map((p) => ({ title: p.title, ...(p.gridPos as { x: number; y: number; w: number; h: number }) }));
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${a.title} overlaps ${b.title}`).toBe(false);
      }
    }
  });

  it('queries only provisioned datasources, with matching types', () => {
    const byUid = new Map(datasources.map((d) => [d.uid, d.type]));
    const refs = [
      ...panels.filter((p) => p.type !== 'row').map((p) => p.datasource),
      ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.datasource as { type?: string; uid?: string } | undefined)),
      ...(dashboard.templating?.list ?? []).filter((v) => v.type === 'query').map((v) => v.datasource),
    ];
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref?.uid && byUid.has(ref.uid), `datasource ${JSON.stringify(ref)}`).toBe(true);
      expect(ref?.type).toBe(byUid.get(ref?.uid ?? ''));
    }
  });

  it('gives every query text, and every panel target a unique refId', () => {
    const queries = listQueries(dashboard);
    expect(queries.length).toBeGreaterThan(0);
    for (const query of queries) expect(query.text.trim(), query.where).not.toBe('');
    for (const panel of panels) {
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, `refIds of ${panel.title}`).toBe(refIds.length);
    }
  });

  it('defines every template variable it references', () => {
    const defined = new Set((dashboard.templating?.list ?? []).map((v) => v.name));
    const referenced = new Set(listStrings({ panels: dashboard.panels, templating: dashboard.templating }).flatMap(listVariableReferences));
    for (const name of referenced) expect(defined.has(name), `variable $${name}`).toBe(true);
    // A defined variable nobody uses is a dead filter on screen.
    for (const name of defined) expect(referenced.has(name), `unused variable ${name}`).toBe(true);
  });
});

describe('variable reference scanner', () => {
  it('finds $x, ${x}, ${x:fmt}, [[x]] and skips Grafana built-ins', () => {
    expect(listVariableReferences("a = $one AND b IN (${two:sqlstring}) AND [[three]] AND $__timeFilter(t) ${__value.raw}").sort()).toEqual(['one', 'three', 'two']);
  });
});
