// The ztwatch dashboards, listed once: dashboards/generate.ts writes each to generated/<uid>.json.
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { COMPLIANCE_TITLE, COMPLIANCE_UID, buildComplianceDashboard } from './compliance.ts';
import { PIPELINE_HEALTH_TITLE, PIPELINE_HEALTH_UID, buildPipelineHealthDashboard } from './pipeline-health.ts';
import { SERVICE_GRAPH_TITLE, SERVICE_GRAPH_UID, buildServiceGraphDashboard } from './service-graph.ts';
import { SOC_OVERVIEW_TITLE, SOC_OVERVIEW_UID, buildSocOverviewDashboard } from './soc-overview.ts';

/** One dashboard: its stable uid, exact title and builder. */
export interface DashboardDefinition {
  readonly uid: string;
  readonly title: string;
  build(): Dashboard;
}

/** Every ztwatch dashboard, in the order they are documented. */
export const DASHBOARDS: readonly DashboardDefinition[] = [
  { uid: SOC_OVERVIEW_UID, title: SOC_OVERVIEW_TITLE, build: buildSocOverviewDashboard },
  { uid: SERVICE_GRAPH_UID, title: SERVICE_GRAPH_TITLE, build: buildServiceGraphDashboard },
  { uid: COMPLIANCE_UID, title: COMPLIANCE_TITLE, build: buildComplianceDashboard },
  { uid: PIPELINE_HEALTH_UID, title: PIPELINE_HEALTH_TITLE, build: buildPipelineHealthDashboard },
];
