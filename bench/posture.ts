// Policy replay benchmark (DESIGN §10: 10 policies over 20 M stored events ≤ 10 s, embedded).
// Fills the store inside ClickHouse (INSERT … SELECT FROM numbers(): 200 services in 20 namespaces,
// each calling six others with two methods and three routes, Envoy and Hubble records, some
// plaintext and denials, over 30 days; the insert feeds the flow_day rollup's materialized view as
// the sink's inserts do), then times what `ztwatch policy replay` does: the flow aggregation in
// ClickHouse (whole days from the rollup, the partial last day from events) plus the evaluation of
// 10 policies (Istio, Kubernetes, Cilium) on the flows. For scale, it also times a bare scan of the
// same rows (count by destination) and the same aggregation over the raw events alone.
// Run alone: `node bin/run-ts.js bench/posture.ts` (2 M events); `ZTWATCH_BENCH_POSTURE_ROWS=20000000`
// for the size of the target (the fill then takes minutes).
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { buildConfig } from '../core/config.ts';
import { createStore, type Store } from '../store/client.ts';
import { FLOW_DAY_TABLE } from '../store/migrations/posture.ts';
import { createConventionResolver } from '../posture/flow.ts';
import { loadFlows } from '../posture/history.ts';
import { parsePolicyYaml } from '../posture/policies.ts';
import { replayFlows } from '../posture/replay.ts';

const DEFAULT_ROWS = 2_000_000;
const TARGET_ROWS = 20_000_000;
const SERVICES = 200;
const NAMESPACES = 20;
const DAYS = 30;
const DAY_MS = 86_400_000;
const TARGET_SECONDS = 10;

function readRows(): number {
  const text = process.env.ZTWATCH_BENCH_POSTURE_ROWS;
  const rows = text === undefined ? DEFAULT_ROWS : Number(text);
  if (!Number.isSafeInteger(rows) || rows < 10_000) throw new Error(`ZTWATCH_BENCH_POSTURE_ROWS=${text}: a whole number ≥ 10000`);
  return rows;
}

function fillSql(store: Store, rows: number, endMs: number): string {
  const startMs = endMs - DAYS * DAY_MS;
  return `INSERT INTO ${store.database}.events (event_id, time, observed_time, source, reporter, src_identity, src_workload, src_namespace, src_ip,
      dst_service, dst_namespace, dst_port, method, path, route, status, decision, mtls, count)
    SELECT toString(number), t, t, src, if(src = 'hubble', 'network', 'inbound'),
      concat('spiffe://cluster.local/ns/', sns, '/sa/svc-', toString(s)), concat('svc-', toString(s)), sns, concat('10.', toString(s % 250), '.0.', toString(number % 250)),
      concat('svc-', toString(d)), concat('ns', toString(d % ${NAMESPACES})), 8080,
      if(src = 'hubble', '', m), if(src = 'hubble', '', concat(r, '/', toString(number % 1000))), if(src = 'hubble', '', concat(r, '/{id}')),
      if(deny, 403, 200), if(deny, 'deny', 'allow'), if(cityHash64(number, 5) % 100 = 0, 'no', 'yes'), 1
    FROM (
      SELECT number,
        fromUnixTimestamp64Milli(toInt64(${startMs} + intDiv(number * ${DAYS * DAY_MS}, ${rows})), 'UTC') AS t,
        toUInt32(cityHash64(number, 1) % ${SERVICES}) AS s,
        toUInt32((s * 7 + 1 + cityHash64(number, 2) % 6) % ${SERVICES}) AS d,
        concat('ns', toString(s % ${NAMESPACES})) AS sns,
        if(cityHash64(number, 3) % 5 = 0, 'hubble', 'envoy') AS src,
        if(cityHash64(number, 4) % 4 = 0, 'POST', 'GET') AS m,
        concat('/api/v1/', ['items', 'orders', 'users'][1 + cityHash64(number, 6) % 3]) AS r,
        cityHash64(number, 7) % 50 = 0 AS deny
      FROM numbers(${rows})
    )`;
}

/** Ten policies of every kind over the generated mesh. */
export function benchPolicies(): string {
  const sa = (n: number) => `cluster.local/ns/ns${n % NAMESPACES}/sa/svc-${n}`;
  const docs: string[] = [
    `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: ns0 }\nspec: { mtls: { mode: STRICT } }`,
  ];
  for (const n of [8, 15, 22, 29]) {
    const callers = Array.from({ length: SERVICES }, (_, s) => s).filter((s) => Array.from({ length: 6 }, (_, k) => (s * 7 + 1 + k) % SERVICES).includes(n));
    docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: svc-${n}, namespace: ns${n % NAMESPACES} }
spec:
  selector: { matchLabels: { app: svc-${n} } }
  rules:
  - from: [{ source: { principals: [${callers.slice(0, -1).map((c) => `"${sa(c)}"`).join(', ')}] } }]
    to: [{ operation: { methods: ["GET"], paths: ["/api/v1/items/*", "/api/v1/orders/*"] } }]`);
  }
  docs.push(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: default-deny, namespace: ns2 }
spec: { podSelector: {}, policyTypes: [Ingress] }`);
  docs.push(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: allow-from-ns1, namespace: ns2 }
spec:
  podSelector: {}
  ingress:
  - from: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: ns1 } } }]
    ports: [{ port: 8080 }]`);
  docs.push(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: egress-ns3, namespace: ns3 }
spec:
  podSelector: { matchLabels: { app: svc-3 } }
  policyTypes: [Egress]
  egress:
  - to: [{ namespaceSelector: {} }]
    ports: [{ port: 8080 }]`);
  docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: svc-45, namespace: ns5 }
spec:
  endpointSelector: { matchLabels: { app: svc-45 } }
  ingress:
  - fromEndpoints: [{ matchLabels: { "k8s:io.kubernetes.pod.namespace": ns6 } }]
    toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }]`);
  docs.push(`apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: no-world }
spec:
  endpointSelector: {}
  enableDefaultDeny: { ingress: false }
  ingressDeny:
  - fromEntities: [world]`);
  return docs.join('\n---\n');
}

async function dropDerivedData(store: Store): Promise<void> {
  // The detectors' rollups and the identity projection are not what replay reads; without them the
  // bulk load is several times faster. The flow rollup stays: replay reads it.
  const views = await store.query<{ name: string }>(
    "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView' AND name != {keep:String}",
    { db: store.database, keep: `${FLOW_DAY_TABLE}_mv` },
  );
  for (const v of views) await store.command(`DROP TABLE ${store.database}.${v.name}`);
  const projections = await store.query<{ name: string }>("SELECT name FROM system.projections WHERE database = {db:String} AND table = 'events'", { db: store.database });
  for (const p of projections) await store.command(`ALTER TABLE ${store.database}.events DROP PROJECTION ${p.name}`);
}

/** Runs the benchmark and prints the replay time against the 10 s target. */
export async function runPostureBench(): Promise<void> {
  const rows = readRows();
  const endMs = Date.now();
  const store = createStore(buildConfig({ dataDir: ':memory:', clickhouse: { database: `bench_posture_${process.pid}`, retentionDays: 400 }, log: { level: 'silent' } }));
  try {
    await store.migrate();
    await dropDerivedData(store);
    console.log(`generating ${rows.toLocaleString('en')} events over ${DAYS} days (${SERVICES} services, ${NAMESPACES} namespaces)…`);
    let started = performance.now();
    await store.command(fillSql(store, rows, endMs));
    console.log(`  filled in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const set = parsePolicyYaml(benchPolicies(), 'bench-policies.yaml');
    const window = { fromMs: endMs - (DAYS + 1) * DAY_MS, toMs: endMs + 1 };

    started = performance.now();
    await store.query(`SELECT dst_service, count() AS n FROM ${store.database}.events WHERE time >= fromUnixTimestamp64Milli({fromMs:Int64}) GROUP BY dst_service`, { fromMs: window.fromMs });
    const scanSeconds = (performance.now() - started) / 1000;

    started = performance.now();
    const rawFlows = await loadFlows(store, { ...window, from: 'events' });
    const rawSeconds = (performance.now() - started) / 1000;

    started = performance.now();
    const flows = await loadFlows(store, window);
    const aggregateSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const result = replayFlows(set.policies, flows, createConventionResolver());
    const evaluateSeconds = (performance.now() - started) / 1000;
    const total = aggregateSeconds + evaluateSeconds;
    const [rollup] = await store.query<{ n: string | number }>(`SELECT count() AS n FROM ${store.database}.${FLOW_DAY_TABLE}`);
    const sizeNote = rows === TARGET_ROWS ? '' : ` (at ${rows.toLocaleString('en')} rows, not 20 M: ZTWATCH_BENCH_POSTURE_ROWS=${TARGET_ROWS})`;
    console.log(`  ${set.policies.length} policies over ${rows.toLocaleString('en')} events → ${flows.length.toLocaleString('en')} flows (raw: ${rawFlows.length.toLocaleString('en')}), ${result.denied.length} would be denied; rollup ${Number(rollup?.n ?? 0).toLocaleString('en')} rows`);
    console.log(`  bare scan (count by destination):   ${scanSeconds.toFixed(2)} s (load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores)`);
    console.log(`  flow aggregation over raw events:   ${rawSeconds.toFixed(2)} s (${(rawSeconds / scanSeconds).toFixed(1)} × the bare scan)`);
    console.log(`  flow aggregation, rollup + edges:   ${aggregateSeconds.toFixed(2)} s (${(aggregateSeconds / scanSeconds).toFixed(2)} × the bare scan)`);
    console.log(`  policy evaluation on the flows:     ${evaluateSeconds.toFixed(3)} s`);
    console.log(`  replay total:                       ${total.toFixed(2)} s — ${(total / TARGET_SECONDS).toFixed(2)} × the ${TARGET_SECONDS} s target${sizeNote}`);
  } finally {
    await store.command(`DROP DATABASE IF EXISTS ${store.database}`).catch(() => undefined);
    await store.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runPostureBench();
