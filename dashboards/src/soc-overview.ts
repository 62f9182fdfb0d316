// "ztwatch / SOC overview": what a SOC analyst watches — posture at a glance, the anomalies that
// are firing now with their evidence, where denials land and why, and TLS / plaintext posture.
// Rollups (edge_minute) answer the counters; raw events answer the "why" (reasons).
import { DashboardBuilder, DashboardLinkBuilder, DashboardLinkType, MappingType, type Dashboard, type ValueMapping } from '@grafana/grafana-foundation-sdk/dashboard';
import { BigValueColorMode, BigValueGraphMode, BigValueTextMode, ReduceDataOptionsBuilder, StackingConfigBuilder, StackingMode, TableCellDisplayMode, VizOrientation, BarGaugeDisplayMode, GraphDrawStyle } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as BarGaugePanel } from '@grafana/grafana-foundation-sdk/bargauge';
import { CLICKHOUSE_DATASOURCE, DASHBOARD_TAGS, createClickHouseTarget, createGridLayout, createPanelIds, createThresholds } from './common.ts';

/** Stable uid of the SOC overview dashboard. */
export const SOC_OVERVIEW_UID = 'ztwatch-soc';

/** Exact title of the SOC overview dashboard. */
export const SOC_OVERVIEW_TITLE = 'ztwatch / SOC overview';

const DESTINATION = "if(dst_service = '', '(unknown)', dst_service)";
const SOURCE_IDENTITY = "if(src_identity = '', '(no identity)', src_identity)";

/** Every ClickHouse query of the SOC overview, one per panel (the posture stats share one). */
export const SOC_OVERVIEW_SQL = {
  posture: `SELECT
  sum(requests) AS "Requests",
  sum(denies) AS "Denied",
  if(sum(requests) = 0, 0, sum(denies) / sum(requests)) AS "Deny ratio",
  sum(tls_failures) AS "TLS failures",
  if(sum(plaintext) + sum(mtls_requests) = 0, 0, sum(plaintext) / (sum(plaintext) + sum(mtls_requests))) AS "Plaintext share"
FROM edge_minute
WHERE $__timeFilter(minute)`,

  openAnomalyCount: `SELECT count() AS "Open anomalies"
FROM anomalies FINAL
WHERE status = 'firing'`,

  openAnomalies: `SELECT severity, detector, subject, src, dst, summary, score, first_seen, last_seen, id, evidence
FROM anomalies FINAL
WHERE status = 'firing'
ORDER BY indexOf(['critical', 'high', 'medium', 'low', 'info'], severity), last_seen DESC
LIMIT 500`,

  anomaliesOpened: `SELECT
  $__timeInterval(first_seen) AS bucket,
  detector,
  count() AS opened
FROM anomalies FINAL
WHERE $__timeFilter(first_seen)
GROUP BY bucket, detector
ORDER BY bucket`,

  denialsByDestination: `SELECT
  $__timeInterval(minute) AS bucket,
  ${DESTINATION} AS destination,
  sum(denies) * 60 / $__interval_s AS denials_per_minute
FROM edge_minute
WHERE $__timeFilter(minute)
  AND dst_service IN (
    SELECT dst_service
    FROM edge_minute
    WHERE $__timeFilter(minute)
    GROUP BY dst_service
    HAVING sum(denies) > 0
    ORDER BY sum(denies) DESC
    LIMIT 10
  )
GROUP BY bucket, destination
ORDER BY bucket`,

  denialsByReason: `SELECT
  $__timeInterval(time) AS bucket,
  if(decision_reason = '', '(none)', decision_reason) AS reason,
  sum(count) * 60 / $__interval_s AS denials_per_minute
FROM events
WHERE $__timeFilter(time)
  AND decision = 'deny'
  AND decision_reason IN (
    SELECT decision_reason
    FROM events
    WHERE $__timeFilter(time) AND decision = 'deny'
    GROUP BY decision_reason
    ORDER BY sum(count) DESC
    LIMIT 10
  )
GROUP BY bucket, reason
ORDER BY bucket`,

  topDeniedEdges: `SELECT
  ${SOURCE_IDENTITY} AS source_identity,
  ${DESTINATION} AS destination,
  sum(denies) AS denied,
  sum(requests) AS total_requests,
  denied / total_requests AS deny_ratio
FROM edge_minute
WHERE $__timeFilter(minute)
GROUP BY source_identity, destination
HAVING denied > 0
ORDER BY denied DESC
LIMIT 20`,

  denyReasons: `SELECT
  if(decision_reason = '', '(none)', decision_reason) AS reason,
  sum(count) AS denials
FROM events
WHERE $__timeFilter(time) AND decision = 'deny'
GROUP BY reason
ORDER BY denials DESC
LIMIT 10`,

  tlsFailuresByReason: `SELECT
  $__timeInterval(time) AS bucket,
  tls_failure AS reason,
  sum(count) * 60 / $__interval_s AS failures_per_minute
FROM events
WHERE $__timeFilter(time) AND tls_failure != ''
GROUP BY bucket, reason
ORDER BY bucket`,

  tlsFailuresByDestination: `SELECT
  ${DESTINATION} AS destination,
  tls_failure AS reason,
  sum(count) AS failures,
  uniqExact(src_identity) AS distinct_sources,
  max(time) AS last_seen
FROM events
WHERE $__timeFilter(time) AND tls_failure != ''
GROUP BY destination, reason
ORDER BY failures DESC
LIMIT 20`,

  plaintextShare: `SELECT
  $__timeInterval(minute) AS bucket,
  sum(plaintext) / (sum(plaintext) + sum(mtls_requests)) AS plaintext_share
FROM edge_minute
WHERE $__timeFilter(minute)
GROUP BY bucket
HAVING sum(plaintext) + sum(mtls_requests) > 0
ORDER BY bucket`,

  plaintextByDestination: `SELECT
  ${DESTINATION} AS destination,
  sum(plaintext) / (sum(plaintext) + sum(mtls_requests)) AS plaintext_share
FROM edge_minute
WHERE $__timeFilter(minute)
GROUP BY destination
HAVING sum(plaintext) > 0
ORDER BY plaintext_share DESC
LIMIT 15`,
} as const;

const SEVERITY_COLORS: ValueMapping[] = [
  {
    type: MappingType.ValueToText,
    options: {
      critical: { color: 'dark-red', index: 0 },
      high: { color: 'red', index: 1 },
      medium: { color: 'orange', index: 2 },
      low: { color: 'yellow', index: 3 },
      info: { color: 'blue', index: 4 },
    },
  },
];

/** Link from an identity cell to its access history. */
const ACCESS_HISTORY_LINK = {
  title: 'Access history of ${__value.raw}',
  url: '/d/ztwatch-compliance/?var-identity=${__value.raw:percentencode}&${__url_time_range}',
};

/** Builds the SOC overview dashboard. */
export function buildSocOverviewDashboard(): Dashboard {
  const id = createPanelIds();
  const grid = createGridLayout();
  const sql = SOC_OVERVIEW_SQL;
  const builder = new DashboardBuilder(SOC_OVERVIEW_TITLE)
    .uid(SOC_OVERVIEW_UID)
    .description('Posture, firing anomalies, denials and TLS/plaintext posture across the mesh.')
    .tags(DASHBOARD_TAGS)
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .timezone('utc')
    .readonly()
    .link(new DashboardLinkBuilder('ztwatch').type(DashboardLinkType.Dashboards).tags(DASHBOARD_TAGS).asDropdown(true).keepTime(true).includeVars(false));

  builder.withRow(grid.row('Posture', id()));
  const postureStat = (title: string, field: string, unit: string, description: string, steps: ReadonlyArray<readonly [string, number | null]>) =>
    new StatPanel()
      .id(id())
      .title(title)
      .description(description)
      .datasource(CLICKHOUSE_DATASOURCE)
      .withTarget(createClickHouseTarget(sql.posture))
      .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false).fields(`/^${field}$/`))
      .unit(unit)
      .thresholds(createThresholds(steps))
      .colorMode(BigValueColorMode.Value)
      .graphMode(BigValueGraphMode.None)
      .textMode(BigValueTextMode.Value)
      .gridPos(grid.place(4, 4));
  builder
    .withPanel(postureStat('Requests', 'Requests', 'short', 'Requests seen in the time range, every source.', [['text', null]]))
    .withPanel(postureStat('Denied', 'Denied', 'short', 'Requests denied by RBAC, ext_authz, OPA, Hubble policy or Linkerd authorization.', [['green', null], ['orange', 1]]))
    .withPanel(postureStat('Deny ratio', 'Deny ratio', 'percentunit', 'Denied / all requests.', [['green', null], ['orange', 0.01], ['red', 0.05]]))
    .withPanel(postureStat('TLS failures', 'TLS failures', 'short', 'Failed TLS handshakes (expired, unknown CA, verify failed, no client cert…).', [['green', null], ['red', 1]]))
    .withPanel(
      postureStat('Plaintext share', 'Plaintext share', 'percentunit', 'Requests without mTLS among requests whose transport is known.', [
        ['green', null],
        ['orange', 0.001],
        ['red', 0.05],
      ]),
    )
    .withPanel(
      new StatPanel()
        .id(id())
        .title('Open anomalies')
        .description('Anomalies firing now (latest lifecycle row per anomaly), whatever the time range.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.openAnomalyCount))
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .thresholds(createThresholds([['green', null], ['red', 1]]))
        .colorMode(BigValueColorMode.Background)
        .graphMode(BigValueGraphMode.None)
        .gridPos(grid.place(4, 4)),
    );

  builder.withRow(grid.row('Open anomalies', id()));
  builder
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Firing anomalies')
        .description('One row per firing anomaly, most severe first. Evidence holds baseline vs observed, counts, sample request ids and policy names.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.openAnomalies))
        .filterable(true)
        .overrideByName('severity', [
          { id: 'mappings', value: SEVERITY_COLORS },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorBackground } },
          { id: 'custom.width', value: 90 },
        ])
        .overrideByName('evidence', [{ id: 'custom.cellOptions', value: { type: TableCellDisplayMode.JSONView } }, { id: 'custom.inspect', value: true }])
        .overrideByName('src', [{ id: 'links', value: [ACCESS_HISTORY_LINK] }])
        .overrideByName('score', [{ id: 'decimals', value: 2 }])
        .gridPos(grid.place(24, 10)),
    )
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('Anomalies opened by detector')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.anomaliesOpened, 'timeseries'))
        .interval('1m')
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(80)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .displayName('${__field.labels.detector}')
        .unit('short')
        .gridPos(grid.place(24, 6)),
    );

  builder.withRow(grid.row('Denials', id()));
  builder
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('Denials per minute by destination (top 10)')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.denialsByDestination, 'timeseries'))
        .interval('1m')
        .displayName('${__field.labels.destination}')
        .unit('short')
        .min(0)
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('Denials per minute by reason (top 10)')
        .description('Policy name, RBAC policy id, response flag or drop reason behind each denial.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.denialsByReason, 'timeseries'))
        .interval('1m')
        .displayName('${__field.labels.reason}')
        .unit('short')
        .min(0)
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Most denied edges')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.topDeniedEdges))
        .overrideByName('deny_ratio', [
          { id: 'unit', value: 'percentunit' },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.GradientGauge } },
          { id: 'max', value: 1 },
        ])
        .overrideByName('source_identity', [{ id: 'links', value: [ACCESS_HISTORY_LINK] }])
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new BarGaugePanel()
        .id(id())
        .title('Deny reasons')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.denyReasons))
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(true).fields('/^denials$/'))
        .orientation(VizOrientation.Horizontal)
        .displayMode(BarGaugeDisplayMode.Basic)
        .unit('short')
        .gridPos(grid.place(12, 8)),
    );

  builder.withRow(grid.row('Transport security', id()));
  builder
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('TLS handshake failures per minute by reason')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.tlsFailuresByReason, 'timeseries'))
        .interval('1m')
        .displayName('${__field.labels.reason}')
        .unit('short')
        .min(0)
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('TLS failures by destination and reason')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.tlsFailuresByDestination))
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new TimeSeriesPanel()
        .id(id())
        .title('Plaintext share')
        .description('Requests without mTLS among requests whose transport is known.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.plaintextShare, 'timeseries'))
        .interval('1m')
        .displayName('plaintext share')
        .unit('percentunit')
        .min(0)
        .max(1)
        .gridPos(grid.place(12, 8)),
    )
    .withPanel(
      new BarGaugePanel()
        .id(id())
        .title('Plaintext share by destination')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.plaintextByDestination))
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(true).fields('/^plaintext_share$/'))
        .orientation(VizOrientation.Horizontal)
        .displayMode(BarGaugeDisplayMode.Basic)
        .unit('percentunit')
        .min(0)
        .max(1)
        .thresholds(createThresholds([['green', null], ['orange', 0.001], ['red', 0.05]]))
        .gridPos(grid.place(12, 8)),
    );

  return builder.build();
}
