// "ztwatch / Compliance access history": who (identity) accessed what (service, method, path),
// when, with which decision and why — filtered by identity, service, decision and path prefix over
// the dashboard time range. Reads the raw events table, where every request is kept.
import {
  CustomVariableBuilder,
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  MappingType,
  QueryVariableBuilder,
  TextBoxVariableBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { BigValueColorMode, BigValueGraphMode, BigValueTextMode, GraphDrawStyle, ReduceDataOptionsBuilder, StackingConfigBuilder, StackingMode } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { DECISIONS } from '../../core/event.ts';
import { CLICKHOUSE_DATASOURCE, DASHBOARD_TAGS, createClickHouseTarget, createGridLayout, createPanelIds, createThresholds } from './common.ts';

/** Stable uid of the compliance dashboard. */
export const COMPLIANCE_UID = 'ztwatch-compliance';

/** Exact title of the compliance dashboard. */
export const COMPLIANCE_TITLE = 'ztwatch / Compliance access history';

/** The filter every access panel applies: time range, identity, service, decision, path prefix. */
const ACCESS_FILTER = `$__timeFilter(time)
  AND $__conditionalAll(src_identity IN (\${identity:sqlstring}), $identity)
  AND $__conditionalAll(dst_service IN (\${service:sqlstring}), $service)
  AND $__conditionalAll(decision IN (\${decision:sqlstring}), $decision)
  AND startsWith(path, \${path_prefix:sqlstring})`;

/** Every ClickHouse query of the compliance dashboard, one per panel plus the variables. */
export const COMPLIANCE_SQL = {
  identityVariable: `SELECT DISTINCT src_identity
FROM edge_minute
WHERE $__timeFilter(minute) AND src_identity != ''
ORDER BY src_identity
LIMIT 10000`,

  serviceVariable: `SELECT DISTINCT dst_service
FROM edge_minute
WHERE $__timeFilter(minute) AND dst_service != ''
ORDER BY dst_service
LIMIT 10000`,

  summary: `SELECT
  sum(count) AS "Requests",
  sumIf(count, decision = 'deny') AS "Denied",
  uniqExact(src_identity) AS "Identities",
  uniqExact(dst_service) AS "Services"
FROM events
WHERE ${ACCESS_FILTER}`,

  decisionsOverTime: `SELECT
  $__timeInterval(time) AS bucket,
  decision,
  sum(count) AS requests
FROM events
WHERE ${ACCESS_FILTER}
GROUP BY bucket, decision
ORDER BY bucket`,

  accessSummary: `SELECT
  src_identity AS identity,
  dst_service AS service,
  method,
  route,
  sum(count) AS requests,
  sumIf(count, decision = 'allow') AS allowed,
  sumIf(count, decision = 'deny') AS denied,
  min(time) AS first_access,
  max(time) AS last_access
FROM events
WHERE ${ACCESS_FILTER}
GROUP BY identity, service, method, route
ORDER BY last_access DESC
LIMIT 1000`,

  accessHistory: `SELECT
  time,
  src_identity AS identity,
  src_namespace,
  src_ip,
  dst_service AS service,
  dst_namespace,
  method,
  path,
  status,
  decision,
  decision_reason,
  mtls,
  tls_failure,
  source,
  reporter,
  request_id,
  decision_id,
  trace_id
FROM events
WHERE ${ACCESS_FILTER}
ORDER BY time DESC
LIMIT 5000`,

  auditTrail: `SELECT time, actor, role, action, filters, rows, status, remote_addr
FROM audit_log
WHERE $__timeFilter(time)
ORDER BY time DESC
LIMIT 500`,
} as const;

const DECISION_COLORS = { allow: 'green', deny: 'red', error: 'orange', unknown: 'text' } as const;

/** Link from an identity cell to this dashboard filtered on that identity. */
const IDENTITY_LINK = {
  title: 'Only ${__value.raw}',
  url: '/d/ztwatch-compliance/?var-identity=${__value.raw:percentencode}&${__url_time_range}',
};

/** Builds the compliance access-history dashboard. */
export function buildComplianceDashboard(): Dashboard {
  const id = createPanelIds();
  const grid = createGridLayout();
  const sql = COMPLIANCE_SQL;
  const all = { selected: true, text: ['All'], value: ['$__all'] };
  const decisionMapping: ValueMapping[] = [
    {
      type: MappingType.ValueToText as const,
      options: Object.fromEntries(Object.entries(DECISION_COLORS).map(([decision, color], index) => [decision, { color, index }])),
    },
  ];
  const builder = new DashboardBuilder(COMPLIANCE_TITLE)
    .uid(COMPLIANCE_UID)
    .description('Access history: who accessed what, when, with which decision and why.')
    .tags(DASHBOARD_TAGS)
    .time({ from: 'now-24h', to: 'now' })
    .timezone('utc')
    .readonly()
    .link(new DashboardLinkBuilder('ztwatch').type(DashboardLinkType.Dashboards).tags(DASHBOARD_TAGS).asDropdown(true).keepTime(true).includeVars(false))
    .withVariable(
      new QueryVariableBuilder('identity')
        .label('Identity')
        .description('Caller identity: SPIFFE ID for workloads, e-mail or user name for people.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .query(sql.identityVariable)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .current(all),
    )
    .withVariable(
      new QueryVariableBuilder('service')
        .label('Service')
        .datasource(CLICKHOUSE_DATASOURCE)
        .query(sql.serviceVariable)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .current(all),
    )
    .withVariable(new CustomVariableBuilder('decision').label('Decision').values(DECISIONS.join(',')).multi(true).includeAll(true).current(all))
    .withVariable(
      new TextBoxVariableBuilder('path_prefix')
        .label('Path prefix')
        .description('Keep requests whose path starts with this text; empty keeps all.')
        .defaultValue('')
        .current({ selected: false, text: '', value: '' }),
    );

  builder
    .withPanel(
      new StatPanel()
        .id(id())
        .title('Matching access')
        .description('Requests matching the filters, how many were denied, and how many identities and services they involve.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.summary))
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false).fields(''))
        .textMode(BigValueTextMode.ValueAndName)
        .colorMode(BigValueColorMode.None)
        .graphMode(BigValueGraphMode.None)
        .thresholds(createThresholds([['text', null]]))
        .unit('short')
        .gridPos(grid.place(8, 7)),
    )
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('Requests by decision')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.decisionsOverTime, 'timeseries'))
        .interval('1m')
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(80)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .displayName('${__field.labels.decision}')
        .overrides(
          Object.entries(DECISION_COLORS).map(([decision, color]) => ({
            matcher: { id: 'byName', options: decision },
            properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
          })),
        )
        .unit('short')
        .gridPos(grid.place(16, 7)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Who accessed what')
        .description('One row per identity, service, method and route template.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.accessSummary))
        .filterable(true)
        .overrideByName('identity', [{ id: 'links', value: [IDENTITY_LINK] }])
        .gridPos(grid.place(24, 9)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Access history')
        .description('Newest first, up to 5000 rows; narrow the filters or the time range for more. Export with Inspect → Data → Download CSV.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.accessHistory))
        .filterable(true)
        .overrideByName('identity', [{ id: 'links', value: [IDENTITY_LINK] }])
        .overrideByName('decision', [
          { id: 'mappings', value: decisionMapping },
          { id: 'custom.cellOptions', value: { type: 'color-text' } },
        ])
        .gridPos(grid.place(24, 14)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Audit trail of access-history queries (ztwatch API)')
        .description('Every access-history query and export made through the ztwatch API: who asked, for what, how many rows.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.auditTrail))
        .gridPos(grid.place(24, 8)),
    );
  return builder.build();
}
