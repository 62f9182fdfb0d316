// Recorded history as posture reads it: flows aggregated in ClickHouse, turned into plain values.
import type { Store } from '../store/client.ts';
import { queryFlows, type FlowQuery, type FlowRow } from '../store/posture-queries.ts';
import type { Flow } from './flow.ts';

/** A flow from its store row. */
export function toFlow(row: FlowRow): Flow {
  return {
    srcIdentity: row.src_identity,
    srcWorkload: row.src_workload,
    srcNamespace: row.src_namespace,
    srcIp: row.src_ip,
    dstService: row.dst_service,
    dstNamespace: row.dst_namespace,
    dstPort: row.dst_port,
    method: row.method,
    route: row.route,
    decision: row.decision,
    observer: row.observer === 'network' ? 'network' : 'proxy',
    inbound: row.inbound === 1,
    mtls: row.mtls,
    count: row.requests,
    lastSeenMs: row.last_seen_ms,
  };
}

/** Flows of a window, aggregated by the store. */
export async function loadFlows(store: Store, query: FlowQuery): Promise<Flow[]> {
  return (await queryFlows(store, query)).map(toFlow);
}

/** Source of a flow as reports print it: the identity, else the IP. */
export function describeSource(flow: Flow): string {
  return flow.srcIdentity || flow.srcIp || '(unknown)';
}
