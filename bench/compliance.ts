// Compliance query benchmark (DESIGN §10: one identity, 30 days, 20 M rows — p50 ≤ 300 ms, p99 ≤ 1 s,
// embedded). Generates events over 30 days straight inside ClickHouse (INSERT … SELECT FROM numbers(),
// ~2000 identities with a skew, ~300 services, ~3 % denials), then times the API's own queries
// (store/access-queries.ts) on the schema the migrations create — events ordered by
// (dst_service, time) plus the identity projection — and, for comparison, on the same table with a
// lighter index-only projection, with no projection at all, and on a layout without projection
// ordered by (src_identity, time) with a skip index on dst_service (one copy of each row, the
// service queries served by the index). The load time of each layout is printed too: it is what a
// projection costs the insert path.
// Run alone: `node bin/run-ts.js bench/compliance.ts`; `ZTWATCH_BENCH_ROWS=2000000` for a quick run.
import { pathToFileURL } from 'node:url';
import { buildConfig } from '../core/config.ts';
import { createStore, type Store } from '../store/client.ts';
import { countAccess, queryAccessPage, type AccessFilters } from '../store/access-queries.ts';
import { IDENTITY_PROJECTION } from '../store/migrations/compliance.ts';
import { EVENT_COLUMNS } from '../store/schema.ts';

const DEFAULT_ROWS = 20_000_000;
const IDENTITIES = 2000;
const SERVICES = 300;
const DAYS = 30;
const DAY_MS = 86_400_000;
/** Timed queries per measurement (each with another identity or service). */
const SAMPLES = 100;
const WARMUP = 5;
const TARGET_P50_MS = 300;
const TARGET_P99_MS = 1000;

function readRows(): number {
  const text = process.env.ZTWATCH_BENCH_ROWS;
  const rows = text === undefined ? DEFAULT_ROWS : Number(text);
  if (!Number.isSafeInteger(rows) || rows < 10_000) throw new Error(`ZTWATCH_BENCH_ROWS=${text}: a whole number ≥ 10000`);
  return rows;
}

/**
 * Rows generated in SQL (exported for ad-hoc schema experiments). `u` is uniform in [0,1); identities
 * follow u^1.5 (a few busy callers, a long tail); 80 % of an identity's calls go to its own eight
 * services, 20 % to any of the 300 (shared services); event time runs over 30 days to now.
 */
export function generateSql(table: string, rows: number, endMs: number): string {
  const startMs = endMs - DAYS * DAY_MS;
  return `INSERT INTO ${table} (event_id, time, observed_time, source, reporter, src_identity, src_workload, src_namespace, src_ip, src_port,
      dst_identity, dst_service, dst_namespace, dst_ip, dst_port, method, path, route, authority, protocol, status, decision,
      decision_reason, response_flags, mtls, tls_version, bytes_in, bytes_out, duration_ms, request_id, count, raw)
    SELECT
      toString(generateUUIDv4(number)), t, t, 'envoy', 'inbound',
      concat('spiffe://cluster.local/ns/', ns, '/sa/sa', toString(id)), concat('sa', toString(id)), ns,
      concat('10.', toString(id % 250), '.', toString(number % 250), '.', toString(cityHash64(number, 2) % 250)), toUInt16(30000 + number % 30000),
      '', svc, concat('ns', toString(svc_n % 40)), '10.200.0.1', 8080,
      m, p, concat('/api/v1/', svc, '/items/{id}'), svc, 'HTTP/1.1',
      st, if(st = 403, 'deny', 'allow'),
      if(st = 403, concat('rbac_access_denied_matched_policy[ns[', ns, ']-policy[deny-', svc, ']-rule[0]]'), ''),
      if(st = 403, [], ['-']), 'yes', 'TLSv1.3', cityHash64(number, 7) % 2000, cityHash64(number, 8) % 20000, toUInt32(number % 500),
      toString(generateUUIDv4(number + ${rows})), 1,
      concat('{"start_time":"', toString(t), '","method":"', m, '","path":"', p, '","response_code":', toString(st),
             ',"downstream_peer_uri_san":"spiffe://cluster.local/ns/', ns, '/sa/sa', toString(id),
             '","authority":"', svc, '","upstream_cluster":"inbound|8080||', svc, '.svc.cluster.local","bytes_sent":', toString(number % 9999), '}')
    FROM (
      SELECT number,
        fromUnixTimestamp64Milli(toInt64(${startMs} + intDiv(number * ${DAYS * DAY_MS}, ${rows}) + (cityHash64(number, 9) % 1000)), 'UTC') AS t,
        toUInt32(floor(pow((cityHash64(number, 1) % 1000000) / 1000000, 1.5) * ${IDENTITIES})) AS id,
        concat('ns', toString(id % 40)) AS ns,
        toUInt32(if(cityHash64(number, 10) % 5 = 0, cityHash64(number, 3) % ${SERVICES}, (id * 37 + cityHash64(number, 3) % 8) % ${SERVICES})) AS svc_n,
        concat('svc-', toString(svc_n)) AS svc,
        if(cityHash64(number, 4) % 5 = 0, 'POST', 'GET') AS m,
        concat('/api/v1/', svc, '/items/', toString(cityHash64(number, 5) % 100000)) AS p,
        toUInt16(if(cityHash64(number, 6) % 33 = 0, 403, 200)) AS st
      FROM numbers(${rows})
    )`;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Measurement {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function summarize(name: string, ms: number[]): Measurement {
  ms.sort((a, b) => a - b);
  return { name, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms[ms.length - 1] as number };
}

/**
 * Times one query shape on every schema. Runs are interleaved (subject by subject, rotating which
 * schema goes first), so a neighbour's load on the machine weighs on every schema alike.
 */
async function timeInterleaved(name: string, subjects: readonly string[], runs: ReadonlyArray<(subject: string) => Promise<unknown>>): Promise<Measurement[]> {
  for (const subject of subjects.slice(0, WARMUP)) for (const run of runs) await run(subject);
  const ms: number[][] = runs.map(() => []);
  for (let i = 0; i < subjects.length; i++) {
    for (let k = 0; k < runs.length; k++) {
      const j = (i + k) % runs.length;
      const started = performance.now();
      await (runs[j] as (subject: string) => Promise<unknown>)(subjects[i] as string);
      (ms[j] as number[]).push(performance.now() - started);
    }
  }
  return ms.map((values) => summarize(name, values));
}

async function dropMaterializedViews(store: Store): Promise<void> {
  // The rollups are not what is measured here; without them the bulk load is several times faster.
  const views = await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'", { db: store.database });
  for (const v of views) await store.command(`DROP TABLE ${store.database}.${v.name}`);
}

/** Waits (up to two minutes) until no background merge runs in the benchmark databases. */
async function waitForMerges(...stores: Store[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  const names = stores.map((s) => s.database);
  while (Date.now() < deadline) {
    const [row] = await stores[0]!.query<{ n: string }>('SELECT toString(count()) AS n FROM system.merges WHERE database IN {dbs:Array(String)}', { dbs: names });
    if (Number(row?.n ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function tableSize(store: Store): Promise<{ bytes: number; parts: number }> {
  const [row] = await store.query<{ bytes: string; parts: string }>(
    "SELECT toString(sum(bytes_on_disk)) AS bytes, toString(count()) AS parts FROM system.parts WHERE database = {db:String} AND table = 'events' AND active",
    { db: store.database },
  );
  return { bytes: Number(row?.bytes ?? 0), parts: Number(row?.parts ?? 0) };
}

/** Runs the benchmark and prints p50/p99 per query and schema. */
export async function runComplianceBench(): Promise<void> {
  const rows = readRows();
  const endMs = Date.now();
  const base = `bench_compliance_${process.pid}`;
  const config = (suffix: string) => buildConfig({ dataDir: ':memory:', clickhouse: { database: `${base}_${suffix}`, retentionDays: 400 }, log: { level: 'silent' } });
  const withProjection = createStore(config('proj'));
  const without = createStore(config('plain'));
  const withIndex = createStore(config('index'));
  const byIdentity = createStore(config('byid'));
  const stores = [withProjection, withIndex, without, byIdentity];
  try {
    for (const store of stores) {
      await store.migrate();
      await dropMaterializedViews(store);
    }
    await without.command(`ALTER TABLE ${without.database}.events DROP PROJECTION ${IDENTITY_PROJECTION}`);
    // The lighter alternative: a projection holding only the sort key and each row's position in
    // its part (used as an index into the base table), instead of a second copy of every row.
    await withIndex.command(`ALTER TABLE ${withIndex.database}.events DROP PROJECTION ${IDENTITY_PROJECTION}`);
    await withIndex.command(`ALTER TABLE ${withIndex.database}.events ADD PROJECTION p_identity_offset (SELECT _part_offset ORDER BY src_identity, time)`);
    // The layout without projection: rows ordered for compliance; detectors read their rollups.
    await byIdentity.command(`DROP TABLE ${byIdentity.database}.events`);
    await byIdentity.command(
      `CREATE TABLE ${byIdentity.database}.events (${EVENT_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')},
         INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 4, INDEX idx_dst_service dst_service TYPE set(1000) GRANULARITY 4)
       ENGINE = MergeTree PARTITION BY toYYYYMMDD(time) ORDER BY (src_identity, time, event_id)`,
    );

    console.log(`generating ${rows.toLocaleString('en')} events over ${DAYS} days (${IDENTITIES} identities, ${SERVICES} services)…`);
    let started = performance.now();
    await withProjection.command(generateSql(`${withProjection.database}.events`, rows, endMs), {});
    const loadWith = (performance.now() - started) / 1000;
    started = performance.now();
    await without.command(`INSERT INTO ${without.database}.events SELECT * FROM ${withProjection.database}.events`);
    const loadWithout = (performance.now() - started) / 1000;
    started = performance.now();
    await withIndex.command(`INSERT INTO ${withIndex.database}.events SELECT * FROM ${withProjection.database}.events`);
    const loadIndex = (performance.now() - started) / 1000;
    started = performance.now();
    await byIdentity.command(`INSERT INTO ${byIdentity.database}.events SELECT * FROM ${withProjection.database}.events`);
    const loadByIdentity = (performance.now() - started) / 1000;
    console.log(
      `loaded: full projection ${loadWith.toFixed(1)} s (generated); copies of the same rows: without projection ${loadWithout.toFixed(1)} s, index projection ${loadIndex.toFixed(1)} s, ordered by identity ${loadByIdentity.toFixed(1)} s`,
    );

    // A live store is measured in its steady state, not while the bulk load is still being merged.
    await waitForMerges(...stores);

    // Query subjects drawn from the data itself, so busy identities come up as often as they occur.
    const subjects = await withProjection.query<{ id: string; svc: string }>(
      `SELECT src_identity AS id, dst_service AS svc FROM ${withProjection.database}.events ORDER BY cityHash64(event_id) LIMIT ${SAMPLES}`,
    );
    const identities = subjects.map((s) => s.id);
    const services = subjects.map((s) => s.svc);
    if (identities.length < SAMPLES) throw new Error('not enough rows to sample query subjects');
    const { count: busiest } = (
      await withProjection.query<{ count: string }>(`SELECT toString(count()) AS count FROM ${withProjection.database}.events GROUP BY src_identity ORDER BY count() DESC LIMIT 1`)
    )[0] ?? { count: '0' };

    const from30 = endMs - 30 * DAY_MS;
    const from7 = endMs - 7 * DAY_MS;
    const variants = [
      ['events + identity projection, whole rows (migrations)', withProjection],
      ['events + index projection (_part_offset only)', withIndex],
      ['events ordered by (src_identity, time), set index on dst_service, no projection', byIdentity],
      ['events without projection', without],
    ] as const;
    const page = (store: Store, filters: AccessFilters) => queryAccessPage(store, filters, { limit: 100, order: 'desc', includeRaw: false });
    const shapes = [
      await timeInterleaved('one identity, 30 days, first page (100 rows)', identities, variants.map(([, store]) => (identity: string) => page(store, { identity, fromMs: from30 }))),
      await timeInterleaved('one identity, 30 days, count', identities, variants.map(([, store]) => (identity: string) => countAccess(store, { identity, fromMs: from30 }))),
      await timeInterleaved('one service, denied only, 7 days, first page', services, variants.map(([, store]) => (service: string) => page(store, { service, decision: 'deny', fromMs: from7 }))),
      await timeInterleaved(
        'identity prefix (namespace), 30 days, first page',
        identities.map((identity) => identity.slice(0, identity.indexOf('/sa/') + 1)),
        variants.map(([, store]) => (identityPrefix: string) => page(store, { identityPrefix, fromMs: from30 })),
      ),
    ];
    const results: Array<{ schema: string; size: { bytes: number; parts: number }; measurements: Measurement[] }> = [];
    for (const [index, [schema, store]] of variants.entries()) {
      results.push({ schema, size: await tableSize(store), measurements: shapes.map((shape) => shape[index] as Measurement) });
    }

    console.log(`\nrows ${rows.toLocaleString('en')}; busiest identity ${Number(busiest).toLocaleString('en')} rows; ${SAMPLES} timed queries each (after ${WARMUP} warm-up)`);
    for (const r of results) {
      console.log(`\n${r.schema}: ${(r.size.bytes / 2 ** 20).toFixed(0)} MiB on disk, ${r.size.parts} parts`);
      for (const m of r.measurements) {
        const ok = m.p50 <= TARGET_P50_MS && m.p99 <= TARGET_P99_MS;
        console.log(`  ${m.name.padEnd(52)} p50 ${m.p50.toFixed(0).padStart(5)} ms  p99 ${m.p99.toFixed(0).padStart(5)} ms  max ${m.max.toFixed(0).padStart(5)} ms  ${ok ? 'meets' : 'MISSES'} target`);
      }
    }
    const plain = results[results.length - 1];
    if (plain) {
      for (const r of results.slice(0, -1)) {
        console.log(`\n${r.schema}: speed-up over no projection (p50)`);
        r.measurements.forEach((m, i) => {
          const other = plain.measurements[i] as Measurement;
          console.log(`  ${m.name.padEnd(52)} ×${(other.p50 / Math.max(m.p50, 0.01)).toFixed(1)}`);
        });
        console.log(`  storage: ×${(r.size.bytes / Math.max(plain.size.bytes, 1)).toFixed(2)} bytes on disk`);
      }
    }
    console.log(`targets: p50 ≤ ${TARGET_P50_MS} ms, p99 ≤ ${TARGET_P99_MS} ms (DESIGN §10)`);
  } finally {
    for (const store of stores) {
      await store.command(`DROP DATABASE IF EXISTS ${store.database}`).catch(() => undefined);
      await store.close();
    }
  }
}

// `node bin/run-ts.js bench/compliance.ts`
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runComplianceBench();
