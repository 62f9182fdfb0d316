// Reads dashboard JSON models the way Grafana does: panels (also inside rows), their targets and
// datasources, and the template variables — so tests check what is actually shipped.

/** A panel as far as the tests care. */
export interface PanelModel {
  id?: number;
  type: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Array<Record<string, unknown>>;
  panels?: PanelModel[];
}

/** A template variable as far as the tests care. */
export interface VariableModel {
  name: string;
  type: string;
  query?: unknown;
  datasource?: { type?: string; uid?: string };
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
}

/** A dashboard as far as the tests care. */
export interface DashboardModel {
  uid: string;
  title: string;
  panels?: PanelModel[];
  templating?: { list?: VariableModel[] };
}

/** One query a dashboard sends: where it lives and its text. */
export interface DashboardQuery {
  readonly where: string;
  readonly datasourceUid: string;
  readonly text: string;
  /** 'table' or 'timeseries' for ClickHouse targets; undefined for variables and PromQL. */
  readonly format?: string;
  readonly refId?: string;
}

/** Every panel, rows' nested panels included, in document order. */
export function listPanels(dashboard: DashboardModel): PanelModel[] {
  const out: PanelModel[] = [];
  for (const panel of dashboard.panels ?? []) {
    out.push(panel);
    for (const nested of panel.panels ?? []) out.push(nested);
  }
  return out;
}

/** Every panel target and datasource-backed variable query of a dashboard. */
export function listQueries(dashboard: DashboardModel): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const panel of listPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      const ds = (target.datasource as { uid?: string } | undefined)?.uid ?? panel.datasource?.uid ?? '';
      const text = typeof target.rawSql === 'string' ? target.rawSql : typeof target.expr === 'string' ? target.expr : '';
      const format = typeof target.queryType === 'string' ? target.queryType : undefined;
      out.push({ where: `panel ${panel.id} "${panel.title}" ${String(target.refId)}`, datasourceUid: ds, text, format, refId: String(target.refId) });
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const text = typeof variable.query === 'string' ? variable.query : String((variable.query as { rawSql?: string } | undefined)?.rawSql ?? '');
    out.push({ where: `variable ${variable.name}`, datasourceUid: variable.datasource?.uid ?? '', text });
  }
  return out;
}

/** Every string anywhere in a JSON value. */
export function listStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(listStrings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(listStrings);
  return [];
}

// Grafana's variable syntax: $name, [[name]] / [[name:format]], ${name} / ${name.path} / ${name:format}.
const VARIABLE_PATTERN = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

/** Names of template variables referenced in `text`, Grafana built-ins (`__…`) excluded. */
export function listVariableReferences(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(VARIABLE_PATTERN)) {
    const name = m[1] ?? m[2] ?? m[4] ?? '';
    if (!name.startsWith('__')) names.add(name);
  }
  return [...names];
}
