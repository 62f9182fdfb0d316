// Every PromQL expression the dashboards ship parses in Prometheus (promtool check rules on each
// expression wrapped as a recording rule, with Grafana's variables expanded) and names only
// metrics ztwatch exports: a name from core/metrics.ts METRIC_NAMES, or a histogram's
// _bucket/_sum/_count series of one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createMetrics, METRIC_NAMES } from '../../core/metrics.ts';
import { expandPromQuery } from '../../dashboards/macros.ts';
import { DASHBOARDS } from '../../dashboards/src/index.ts';
import { PIPELINE_HEALTH_PROMQL } from '../../dashboards/src/pipeline-health.ts';
import { listQueries, type DashboardModel, type DashboardQuery } from './walk.ts';

const PROMETHEUS_UID = 'ztwatch-prometheus';
/** Series every Prometheus has without ztwatch exporting them. */
const PROMETHEUS_BUILTINS = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);
/** PromQL keywords that look like metric names. */
const PROMQL_KEYWORDS = new Set(['by', 'without', 'and', 'or', 'unless', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);

const scratch = mkdtempSync(join(tmpdir(), 'ztwatch-promql-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const promQueries: DashboardQuery[] = DASHBOARDS.flatMap((d) => listQueries(d.build() as unknown as DashboardModel).filter((q) => q.datasourceUid === PROMETHEUS_UID));

/** Metric types by name, read from the registry ztwatch actually creates. */
async function readMetricTypes(): Promise<Map<string, string>> {
  const metrics = await createMetrics().registry.getMetricsAsJSON();
  return new Map(metrics.map((m) => [m.name, String(m.type)]));
}

/** Identifiers in a PromQL expression that name series (not functions, keywords, labels or durations). */
function listMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\()(?![a-zA-Z0-9_:])/g)) if (!PROMQL_KEYWORDS.has(m[0])) names.add(m[0]);
  return [...names];
}

function runPromtool(args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`promtool is needed (Debian package prometheus; scripts/deps/prometheus.sh installs it): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('PromQL in the dashboards', () => {
  it('covers exactly the exported expressions', () => {
    expect(new Set(promQueries.map((q) => q.text))).toEqual(new Set(Object.values(PIPELINE_HEALTH_PROMQL)));
  });

  it('every expression parses in promtool (check rules)', () => {
    const ctx = { fromMs: 0, toMs: 3_600_000, intervalMs: 30_000 };
    const rules = promQueries.map((q, i) => {
      const expanded = expandPromQuery(q.text, ctx);
      if (!expanded.ok) throw new Error(`${q.where}: ${expanded.reason}`);
      return { record: `ztwatch:dashboard_query_${i}`, expr: expanded.query };
    });
    const file = join(scratch, 'dashboard-queries.rules.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules }] }));
    const { status, output } = runPromtool(['check', 'rules', file]);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status).toBe(0);
  });

  it('promtool rejects a broken expression (the check can fail)', () => {
    const file = join(scratch, 'broken.rules.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'broken', rules: [{ record: 'ztwatch:broken', expr: `sum by (stage (rate(${METRIC_NAMES.received}[1m]))` }] }] }));
    expect(runPromtool(['check', 'rules', file]).status).not.toBe(0);
  });

  it.each(promQueries.map((q) => [q.where, q] as const))('%s references only metrics in METRIC_NAMES', async (_where, query) => {
    const types = await readMetricTypes();
    const exported = new Set<string>(Object.values(METRIC_NAMES));
    const names = listMetricNames(query.text);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      if (PROMETHEUS_BUILTINS.has(name)) continue;
      const histogramBase = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
      const known = exported.has(name) || (histogramBase !== undefined && exported.has(histogramBase) && types.get(histogramBase) === 'histogram');
      expect(known, `${name} in ${query.text}`).toBe(true);
    }
    expect(names.some((n) => n.startsWith('ztwatch_'))).toBe(true);
  });

  it('the metric-name scanner finds series names and skips functions, labels and durations', () => {
    expect(listMetricNames('histogram_quantile(0.9, sum by (le, stage) (rate(a_bucket{stage="x y"}[$__rate_interval]))) + time() - max(b)')).toEqual(['a_bucket', 'b']);
  });
});
