// "ztwatch / Pipeline health": is data flowing? Events received/sent/dropped per stage, dead
// letters, consumer lag, sink batch latency and freshness, detector runs and active anomalies —
// all from the Prometheus metrics every stage exports (names from core/metrics.ts, never retyped).
import { DashboardBuilder, DashboardLinkBuilder, DashboardLinkType, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { BarGaugeDisplayMode, BigValueColorMode, BigValueGraphMode, ReduceDataOptionsBuilder, StackingConfigBuilder, StackingMode, VizOrientation } from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as BarGaugePanel } from '@grafana/grafana-foundation-sdk/bargauge';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeSeriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { METRIC_NAMES as M } from '../../core/metrics.ts';
import { DASHBOARD_TAGS, PROMETHEUS_DATASOURCE, createGridLayout, createPanelIds, createThresholds } from './common.ts';

/** Stable uid of the pipeline health dashboard. */
export const PIPELINE_HEALTH_UID = 'ztwatch-pipeline';

/** Exact title of the pipeline health dashboard. */
export const PIPELINE_HEALTH_TITLE = 'ztwatch / Pipeline health';

const rate = (metric: string): string => `rate(${metric}[$__rate_interval])`;
const quantile = (q: number, histogram: string, by: string): string => `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (${rate(`${histogram}_bucket`)}))`;

/** Every PromQL expression of the pipeline health dashboard, one per series. */
export const PIPELINE_HEALTH_PROMQL = {
  received: `sum by (stage) (${rate(M.received)})`,
  sent: `sum by (stage) (${rate(M.sent)})`,
  dropped: `sum by (stage, reason) (${rate(M.dropped)})`,
  errors: `sum by (stage, code) (${rate(M.errors)})`,
  deadLetters: `sum by (source, reason) (${rate(M.deadLetters)})`,
  deadLettersInRange: `sum(increase(${M.deadLetters}[$__range]))`,
  consumerLag: `sum by (topic) (${M.consumerLag})`,
  maxPartitionLag: `max(${M.consumerLag})`,
  batchLatencyP50: quantile(0.5, M.batchLatency, 'stage'),
  batchLatencyP95: quantile(0.95, M.batchLatency, 'stage'),
  batchLatencyP99: quantile(0.99, M.batchLatency, 'stage'),
  batchRowsP50: quantile(0.5, M.batchRows, 'stage'),
  batchRowsP99: quantile(0.99, M.batchRows, 'stage'),
  freshnessP50: quantile(0.5, M.freshness, ''),
  freshnessP99: quantile(0.99, M.freshness, ''),
  busInFlight: `sum(${M.busInFlight})`,
  newestEventAge: `time() - max(${M.lastEventTime})`,
  detectorLastRunAge: `time() - max by (detector) (${M.detectorLastRun})`,
  detectorRunP95: quantile(0.95, M.detectorRunSeconds, 'detector'),
  detectorWatermarkLag: `time() - max(${M.detectorWatermark})`,
  activeAnomalies: `sum by (detector, severity) (${M.anomaliesActive})`,
  anomaliesOpenedInRange: `sum(increase(${M.anomaliesOpened}[$__range]))`,
} as const;

type PromQlName = keyof typeof PIPELINE_HEALTH_PROMQL;

/** A Prometheus target for one named expression. */
function createPromTarget(name: PromQlName, legend: string, refId = 'A'): DataqueryBuilder {
  return new DataqueryBuilder().datasource(PROMETHEUS_DATASOURCE).expr(PIPELINE_HEALTH_PROMQL[name]).legendFormat(legend).refId(refId).range();
}

/** Builds the pipeline health dashboard. */
export function buildPipelineHealthDashboard(): Dashboard {
  const id = createPanelIds();
  const grid = createGridLayout();
  const series = (title: string, unit: string, targets: DataqueryBuilder[], description = '') => {
    const panel = new TimeSeriesPanel().id(id()).title(title).datasource(PROMETHEUS_DATASOURCE).unit(unit).min(0);
    if (description) panel.description(description);
    for (const target of targets) panel.withTarget(target);
    return panel;
  };
  const stat = (title: string, unit: string, name: PromQlName, steps: ReadonlyArray<readonly [string, number | null]>, description: string) =>
    new StatPanel()
      .id(id())
      .title(title)
      .description(description)
      .datasource(PROMETHEUS_DATASOURCE)
      .withTarget(createPromTarget(name, title).instant())
      .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
      .unit(unit)
      .thresholds(createThresholds(steps))
      .colorMode(BigValueColorMode.Value)
      .graphMode(BigValueGraphMode.None);

  const builder = new DashboardBuilder(PIPELINE_HEALTH_TITLE)
    .uid(PIPELINE_HEALTH_UID)
    .description('Events through collector → bus → sink → detectors: throughput, drops, dead letters, lag, latency, freshness.')
    .tags(DASHBOARD_TAGS)
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .timezone('utc')
    .readonly()
    .link(new DashboardLinkBuilder('ztwatch').type(DashboardLinkType.Dashboards).tags(DASHBOARD_TAGS).asDropdown(true).keepTime(true).includeVars(false));

  builder.withRow(grid.row('Health at a glance', id()));
  builder
    .withPanel(stat('Newest stored event age', 's', 'newestEventAge', [['green', null], ['orange', 60], ['red', 300]], 'Now minus the newest event time in ClickHouse; grows when ingest stops.').gridPos(grid.place(4, 4)))
    .withPanel(stat('Max partition lag', 'short', 'maxPartitionLag', [['green', null], ['orange', 10_000], ['red', 100_000]], 'Largest consumer lag of any partition, in messages.').gridPos(grid.place(4, 4)))
    .withPanel(stat('Dead letters in range', 'short', 'deadLettersInRange', [['green', null], ['orange', 1]], 'Records that could not be parsed, over the dashboard time range.').gridPos(grid.place(4, 4)))
    .withPanel(stat('Detector watermark lag', 's', 'detectorWatermarkLag', [['green', null], ['orange', 120], ['red', 600]], 'Now minus the event time detectors have evaluated up to.').gridPos(grid.place(4, 4)))
    .withPanel(stat('Freshness p99', 's', 'freshnessP99', [['green', null], ['orange', 2], ['red', 10]], 'Received → queryable, 99th percentile over the rate window (target ≤ 2 s).').gridPos(grid.place(4, 4)))
    .withPanel(stat('Anomalies opened in range', 'short', 'anomaliesOpenedInRange', [['text', null]], 'New anomalies over the dashboard time range.').gridPos(grid.place(4, 4)));

  builder.withRow(grid.row('Events through the stages', id()));
  builder
    .withPanel(series('Events received per second by stage', 'short', [createPromTarget('received', '{{stage}}')]).gridPos(grid.place(12, 8)))
    .withPanel(series('Events sent per second by stage', 'short', [createPromTarget('sent', '{{stage}}')]).gridPos(grid.place(12, 8)))
    .withPanel(
      series('Events dropped per second by stage and reason', 'short', [createPromTarget('dropped', '{{stage}}: {{reason}}')], 'Events a stage did not pass on, with the reason.').gridPos(
        grid.place(12, 8),
      ),
    )
    .withPanel(series('Stage errors per second by code', 'short', [createPromTarget('errors', '{{stage}}: {{code}}')]).gridPos(grid.place(12, 8)));

  builder.withRow(grid.row('Dead letters', id()));
  builder.withPanel(
    series('Dead letters per second by source and reason', 'short', [createPromTarget('deadLetters', '{{source}}: {{reason}}')], 'Lines that could not be parsed; raw text is kept in the deadletters table.')
      .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
      .gridPos(grid.place(24, 8)),
  );

  builder.withRow(grid.row('Bus and sink', id()));
  builder
    .withPanel(series('Consumer lag by topic', 'short', [createPromTarget('consumerLag', '{{topic}}')], 'Messages behind the end of each topic, summed over partitions.').gridPos(grid.place(12, 8)))
    .withPanel(series('Messages in flight on the bus', 'short', [createPromTarget('busInFlight', 'in flight')]).gridPos(grid.place(12, 8)))
    .withPanel(
      series('Sink batch latency', 's', [
        createPromTarget('batchLatencyP50', 'p50 {{stage}}', 'A'),
        createPromTarget('batchLatencyP95', 'p95 {{stage}}', 'B'),
        createPromTarget('batchLatencyP99', 'p99 {{stage}}', 'C'),
      ]).gridPos(grid.place(8, 8)),
    )
    .withPanel(series('Rows per batch', 'short', [createPromTarget('batchRowsP50', 'p50 {{stage}}', 'A'), createPromTarget('batchRowsP99', 'p99 {{stage}}', 'B')]).gridPos(grid.place(8, 8)))
    .withPanel(
      series('Freshness: received → queryable', 's', [createPromTarget('freshnessP50', 'p50', 'A'), createPromTarget('freshnessP99', 'p99', 'B')], 'Target: p99 ≤ 2 s.').gridPos(
        grid.place(8, 8),
      ),
    );

  builder.withRow(grid.row('Detectors', id()));
  builder
    .withPanel(
      new BarGaugePanel()
        .id(id())
        .title('Time since last successful detector run')
        .description('Seconds since each detector last finished a run; detectors run every few seconds when healthy.')
        .datasource(PROMETHEUS_DATASOURCE)
        .withTarget(createPromTarget('detectorLastRunAge', '{{detector}}').instant())
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .orientation(VizOrientation.Horizontal)
        .displayMode(BarGaugeDisplayMode.Basic)
        .unit('s')
        .min(0)
        .thresholds(createThresholds([['green', null], ['orange', 120], ['red', 300]]))
        .gridPos(grid.place(8, 8)),
    )
    .withPanel(series('Detector run duration p95', 's', [createPromTarget('detectorRunP95', '{{detector}}')]).gridPos(grid.place(8, 8)))
    .withPanel(
      series('Active anomalies by detector and severity', 'short', [createPromTarget('activeAnomalies', '{{detector}} {{severity}}')])
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .gridPos(grid.place(8, 8)),
    );
  return builder.build();
}
