// Shared pieces of the ztwatch dashboards: the two provisioned datasources, the ClickHouse query
// model (the SDK has no builder for this third-party plugin), and a grid layout that wraps
// before a panel would overflow the 24-column row.
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { RowBuilder, ThresholdsConfigBuilder, ThresholdsMode, type DataSourceRef, type GridPos, type Threshold } from '@grafana/grafana-foundation-sdk/dashboard';

/** Grafana's ClickHouse datasource as provisioned by dashboards/provisioning/datasources/ztwatch.yml. */
export const CLICKHOUSE_DATASOURCE = { type: 'grafana-clickhouse-datasource', uid: 'ztwatch-clickhouse' } as const satisfies DataSourceRef;

/** Grafana's Prometheus datasource as provisioned by dashboards/provisioning/datasources/ztwatch.yml. */
export const PROMETHEUS_DATASOURCE = { type: 'prometheus', uid: 'ztwatch-prometheus' } as const satisfies DataSourceRef;

/** Tags every ztwatch dashboard carries, so they can be found and linked as a set. */
export const DASHBOARD_TAGS = ['ztwatch'];

/** How the plugin shapes the result: a table frame, or time series (long → wide by string columns). */
export type ClickHouseFormat = 'table' | 'timeseries';

/** A ClickHouse panel query as stored in dashboard JSON (plugin v4 SQL-editor model). */
export interface ClickHouseTarget extends Dataquery {
  refId: string;
  datasource: DataSourceRef;
  editorType: 'sql';
  pluginVersion: string;
  queryType: 'table' | 'timeseries';
  /** sqlds format: 0 = time series, 1 = table. */
  format: 0 | 1;
  rawSql: string;
}

/** Builds the JSON model of one ClickHouse SQL query. */
export function createClickHouseTarget(rawSql: string, format: ClickHouseFormat = 'table', refId = 'A'): Builder<Dataquery> {
  return {
    build: (): ClickHouseTarget => ({
      refId,
      datasource: { ...CLICKHOUSE_DATASOURCE },
      editorType: 'sql',
      // v4 marks its query model with pluginVersion; without it the editor migrates the query as v3.
      pluginVersion: '4.0.0',
      queryType: format,
      format: format === 'timeseries' ? 0 : 1,
      rawSql,
      _implementsDataqueryVariant() {},
    }),
  };
}

/** Hands out panel ids 1, 2, 3, … in creation order, so ids stay stable across regenerations. */
export function createPanelIds(): () => number {
  let next = 0;
  return () => ++next;
}

/** Places panels left to right on Grafana's 24-column grid, wrapping before a row would overflow. */
export interface GridLayout {
  /** The position of the next panel of width `w` and height `h`. */
  place(w: number, h: number): GridPos;
  /** A full-width row header below everything placed so far. */
  row(title: string, id: number): RowBuilder;
}

/** Creates a grid layout starting at the top-left corner. */
export function createGridLayout(): GridLayout {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const newLine = (): void => {
    y += rowHeight;
    x = 0;
    rowHeight = 0;
  };
  return {
    place(w, h) {
      if (x + w > 24) newLine();
      const pos = { x, y, w, h };
      x += w;
      rowHeight = Math.max(rowHeight, h);
      return pos;
    },
    row(title, id) {
      if (x > 0) newLine();
      const pos = { x: 0, y, w: 24, h: 1 };
      y += 1;
      return new RowBuilder(title).id(id).gridPos(pos);
    },
  };
}

/** Absolute thresholds from `[color, from]` steps; the first step starts at -Infinity. */
export function createThresholds(steps: ReadonlyArray<readonly [color: string, from: number | null]>): ThresholdsConfigBuilder {
  const list: Threshold[] = steps.map(([color, value]) => ({ color, value }));
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(list);
}
