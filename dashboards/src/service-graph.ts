// "ztwatch / Service graph": the live mesh as Grafana's node graph, built from the per-minute edge
// rollup. Callers are identities (SPIFFE IDs, users); callees are services. Where traffic shows
// which service an identity belongs to (events whose dst_identity is that identity), the caller
// is drawn as that service, so one workload is one node whether it calls or is called.
import { DashboardBuilder, DashboardLinkBuilder, DashboardLinkType, QueryVariableBuilder, VariableRefresh, VariableSort, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { TableCellDisplayMode } from '@grafana/grafana-foundation-sdk/common';
import { ArcOptionBuilder, EdgeOptionsBuilder, NodeOptionsBuilder, PanelBuilder as NodeGraphPanel, ZoomMode } from '@grafana/grafana-foundation-sdk/nodegraph';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { CLICKHOUSE_DATASOURCE, DASHBOARD_TAGS, createClickHouseTarget, createGridLayout, createPanelIds } from './common.ts';

/** Stable uid of the service graph dashboard. */
export const SERVICE_GRAPH_UID = 'ztwatch-graph';

/** Exact title of the service graph dashboard. */
export const SERVICE_GRAPH_TITLE = 'ztwatch / Service graph';

/** An edge is red at or above this deny ratio. */
export const EDGE_DENY_RATIO_RED = 0.05;
/** An edge is orange when its mTLS share (mTLS / requests with known transport) is below this. */
export const EDGE_MTLS_SHARE_ORANGE = 0.9;

/** Edge and arc colours (Grafana palette hex, so the node graph and the legend agree). */
export const GRAPH_COLORS = { denied: '#E02F44', plaintext: '#FF9830', tlsFailure: '#FADE2A', healthy: '#56A64B', outboundOnly: '#8E8E8E' } as const;

// Edges over the time range, aggregated to caller → callee with the caller mapped to its service
// when known. The CTE is shared text so every panel draws the same graph.
const EDGES_CTE = `identity_service AS (
    SELECT identity, argMax(service, identity_requests) AS mapped_service
    FROM (
      SELECT dst_identity AS identity, dst_service AS service, sum(count) AS identity_requests
      FROM events
      WHERE $__timeFilter(time) AND dst_identity != '' AND dst_service != ''
      GROUP BY identity, service
    )
    GROUP BY identity
  ),
  graph_edges AS (
    SELECT
      if(m.mapped_service != '', m.mapped_service, if(e.src_identity = '', '(no identity)', e.src_identity)) AS src_node,
      if(e.dst_service = '', '(unknown)', e.dst_service) AS dst_node,
      any(e.src_namespace) AS src_node_namespace,
      any(e.dst_namespace) AS dst_node_namespace,
      sum(e.requests) AS edge_requests,
      sum(e.denies) AS edge_denies,
      sum(e.tls_failures) AS edge_tls_failures,
      sum(e.plaintext) AS edge_plaintext,
      sum(e.mtls_requests) AS edge_mtls
    FROM edge_minute AS e
    LEFT JOIN identity_service AS m ON m.identity = e.src_identity
    WHERE $__timeFilter(e.minute)
      AND $__conditionalAll((e.dst_namespace IN (\${namespace:sqlstring}) OR e.src_namespace IN (\${namespace:sqlstring})), $namespace)
    GROUP BY src_node, dst_node
  )`;

/** Short node title: `sa.namespace` for Kubernetes SPIFFE IDs, the id itself otherwise. */
const NODE_TITLE = `if(match(node, '^spiffe://[^/]+/ns/[^/]+/sa/[^/]+$'),
    concat(extract(node, '/sa/([^/]+)$'), '.', extract(node, '/ns/([^/]+)/')),
    node)`;

/** Every ClickHouse query of the service graph dashboard, one per panel plus the variable. */
export const SERVICE_GRAPH_SQL = {
  namespaceVariable: `SELECT DISTINCT dst_namespace
FROM edge_minute
WHERE $__timeFilter(minute) AND dst_namespace != ''
ORDER BY dst_namespace`,

  nodes: `WITH
  ${EDGES_CTE},
  node_sides AS (
    SELECT dst_node AS node, dst_node_namespace AS namespace, edge_requests AS inbound_requests, edge_denies AS inbound_denies,
           edge_tls_failures AS inbound_tls_failures, toUInt64(0) AS outbound_requests
    FROM graph_edges
    UNION ALL
    SELECT src_node, src_node_namespace, toUInt64(0), toUInt64(0), toUInt64(0), edge_requests
    FROM graph_edges
  )
SELECT
  node AS id,
  ${NODE_TITLE} AS title,
  any(namespace) AS subtitle,
  sum(inbound_requests) AS mainstat,
  if(sum(inbound_requests) = 0, 0, sum(inbound_denies) / sum(inbound_requests)) AS secondarystat,
  if(sum(inbound_requests) = 0, 0, 1 - sum(inbound_denies) / sum(inbound_requests)) AS arc__allowed,
  if(sum(inbound_requests) = 0, 0, sum(inbound_denies) / sum(inbound_requests)) AS arc__denied,
  if(sum(inbound_requests) = 0, 1, 0) AS arc__outbound_only,
  sum(outbound_requests) AS detail__outbound_requests,
  sum(inbound_tls_failures) AS detail__inbound_tls_failures
FROM node_sides
GROUP BY node
ORDER BY node
LIMIT 1000`,

  edges: `WITH
  ${EDGES_CTE}
SELECT
  concat(src_node, ' -> ', dst_node) AS id,
  src_node AS source,
  dst_node AS target,
  edge_requests AS mainstat,
  edge_denies / edge_requests AS secondarystat,
  multiIf(
    edge_denies / edge_requests >= ${EDGE_DENY_RATIO_RED}, '${GRAPH_COLORS.denied}',
    edge_plaintext + edge_mtls > 0 AND edge_mtls / (edge_plaintext + edge_mtls) < ${EDGE_MTLS_SHARE_ORANGE}, '${GRAPH_COLORS.plaintext}',
    edge_tls_failures > 0, '${GRAPH_COLORS.tlsFailure}',
    '${GRAPH_COLORS.healthy}') AS color,
  if(edge_plaintext > 0, '6 3', '') AS strokeDasharray,
  edge_denies AS detail__denied,
  edge_tls_failures AS detail__tls_failures,
  if(edge_plaintext + edge_mtls = 0, NULL, edge_mtls / (edge_plaintext + edge_mtls)) AS detail__mtls_share
FROM graph_edges
ORDER BY edge_requests DESC
LIMIT 2000`,

  edgeTable: `WITH
  ${EDGES_CTE}
SELECT
  src_node AS caller,
  dst_node AS callee,
  edge_requests AS requests,
  edge_denies AS denied,
  edge_denies / edge_requests AS deny_ratio,
  edge_tls_failures AS tls_failures,
  edge_plaintext AS plaintext,
  if(edge_plaintext + edge_mtls = 0, NULL, edge_mtls / (edge_plaintext + edge_mtls)) AS mtls_share
FROM graph_edges
ORDER BY edge_requests DESC
LIMIT 500`,

  newEdges: `SELECT
  if(src_identity = '', '(no identity)', src_identity) AS source_identity,
  dst_service AS destination,
  min(first_seen) AS first_seen_at,
  max(last_seen) AS last_seen_at,
  sum(requests) AS total_requests
FROM edge_seen
GROUP BY source_identity, destination
HAVING first_seen_at >= $__fromTime AND first_seen_at <= $__toTime
ORDER BY first_seen_at DESC
LIMIT 200`,
} as const;

/** Builds the service graph dashboard. */
export function buildServiceGraphDashboard(): Dashboard {
  const id = createPanelIds();
  const grid = createGridLayout();
  const sql = SERVICE_GRAPH_SQL;
  return new DashboardBuilder(SERVICE_GRAPH_TITLE)
    .uid(SERVICE_GRAPH_UID)
    .description('Who talks to whom: requests, denials, TLS failures and mTLS share per edge.')
    .tags(DASHBOARD_TAGS)
    .time({ from: 'now-1h', to: 'now' })
    .refresh('1m')
    .timezone('utc')
    .readonly()
    .link(new DashboardLinkBuilder('ztwatch').type(DashboardLinkType.Dashboards).tags(DASHBOARD_TAGS).asDropdown(true).keepTime(true).includeVars(false))
    .withVariable(
      new QueryVariableBuilder('namespace')
        .label('Namespace')
        .description('Keep edges whose caller or callee is in these namespaces.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .query(sql.namespaceVariable)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .current({ selected: true, text: ['All'], value: ['$__all'] }),
    )
    .withPanel(
      new NodeGraphPanel()
        .id(id())
        .title('Service graph')
        .description(
          `Nodes: requests received (main), deny ratio (secondary); arc green = allowed, red = denied, grey = only calls out. ` +
            `Edges: red when deny ratio ≥ ${EDGE_DENY_RATIO_RED * 100}%, orange when mTLS share < ${EDGE_MTLS_SHARE_ORANGE * 100}%, ` +
            `yellow with TLS failures, green otherwise; dashed when any request was plaintext.`,
        )
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.nodes, 'table', 'nodes'))
        .withTarget(createClickHouseTarget(sql.edges, 'table', 'edges'))
        .nodes(
          new NodeOptionsBuilder()
            .mainStatUnit('short')
            .secondaryStatUnit('percentunit')
            .arcs([
              new ArcOptionBuilder().field('arc__allowed').color(GRAPH_COLORS.healthy),
              new ArcOptionBuilder().field('arc__denied').color(GRAPH_COLORS.denied),
              new ArcOptionBuilder().field('arc__outbound_only').color(GRAPH_COLORS.outboundOnly),
            ]),
        )
        .edges(new EdgeOptionsBuilder().mainStatUnit('short').secondaryStatUnit('percentunit'))
        .zoomMode(ZoomMode.Cooperative)
        .gridPos(grid.place(24, 18)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Edges')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.edgeTable))
        .filterable(true)
        .overrideByName('deny_ratio', [
          { id: 'unit', value: 'percentunit' },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorText } },
          { id: 'thresholds', value: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: EDGE_DENY_RATIO_RED }] } },
        ])
        .overrideByName('mtls_share', [
          { id: 'unit', value: 'percentunit' },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorText } },
          { id: 'thresholds', value: { mode: 'absolute', steps: [{ color: 'orange', value: null }, { color: 'green', value: EDGE_MTLS_SHARE_ORANGE }] } },
        ])
        .gridPos(grid.place(14, 10)),
    )
    .withPanel(
      new TablePanel()
        .id(id())
        .title('Edges first seen in this time range')
        .description('Identity → service pairs never seen before the start of the time range.')
        .datasource(CLICKHOUSE_DATASOURCE)
        .withTarget(createClickHouseTarget(sql.newEdges))
        .gridPos(grid.place(10, 10)),
    )
    .build();
}
