// Console benchmark (DESIGN §10: 300 services / 3 000 edges rendered and interactive ≤ 2 s in
// headless Chromium; the console's API calls p50 ≤ 300 ms on the embedded store with 10 M events).
// Part 1 writes a one-minute service graph of 300 services in 15 namespaces and 3 000 edges into
// the per-minute edge rollup, opens the console's graph page in headless Debian chromium and times
// navigation → laid out on screen, then a click on a node → its panel shown. Part 2 generates
// events inside ClickHouse (bench/compliance.ts's generator, rollups kept) and times every API
// call the console makes, through HTTP, as the console makes them.
// Run alone: `node bin/run-ts.js bench/console.ts`; `ZTWATCH_BENCH_CONSOLE_ROWS=1000000` for a quick run;
// `ZTWATCH_BENCH_CONSOLE_PARTS=render` (or `api`) for one part only;
// `ZTWATCH_BENCH_CONSOLE_RENDER_RUNS=15` times 15 page loads instead of 5;
// `ZTWATCH_BENCH_CONSOLE_BUSY=2` keeps 2 processes spinning while the pages load (a busy machine);
// `ZTWATCH_BENCH_CONSOLE_SCREENSHOT=<file.png>` saves the rendered graph after the last click;
// `ZTWATCH_BENCH_CONSOLE_PROFILE=<file.cpuprofile>` saves the page's CPU profile of the last load and click;
// `ZTWATCH_BENCH_CONSOLE_DATA_DIR=<dir>` keeps the generated events of part 2 in that data directory
// and reuses them on the next run when they hold as many rows (the windows then end at the newest
// stored event); pending migrations are applied to the kept data as at any start.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { quantile } from 'simple-statistics';
import { buildConfig } from '../core/config.ts';
import { startRuntime, type Runtime } from '../cli/runtime.ts';
import { createRandom } from '../ingest/simulate/prng.ts';
import { launchBrowser } from '../test/console/harness.ts';
import { generateSql } from './compliance.ts';

const SERVICES = 300;
const NAMESPACES = 15;
const EDGES = 3000;
const DEFAULT_RENDER_RUNS = 5;
const TARGET_RENDER_MS = 2000;
const MAX_BUSY = 8;
const BUSY_MAX_MS = 10 * 60_000;
const DEFAULT_ROWS = 10_000_000;
const API_SAMPLES = 30;
const TARGET_API_P50_MS = 300;
const TOKEN = 'console-bench-token';

function readRows(): number {
  const text = process.env.ZTWATCH_BENCH_CONSOLE_ROWS;
  const rows = text === undefined ? DEFAULT_ROWS : Number(text);
  if (!Number.isSafeInteger(rows) || rows < 10_000) throw new Error(`ZTWATCH_BENCH_CONSOLE_ROWS=${text}: a whole number ≥ 10000`);
  return rows;
}

/** Page loads timed by part 1 (`ZTWATCH_BENCH_CONSOLE_RENDER_RUNS`): more of them steady the medians. */
function readRenderRuns(): number {
  const text = process.env.ZTWATCH_BENCH_CONSOLE_RENDER_RUNS;
  const runs = text === undefined || text === '' ? DEFAULT_RENDER_RUNS : Number(text);
  if (!Number.isSafeInteger(runs) || runs < 1 || runs > 100) throw new Error(`ZTWATCH_BENCH_CONSOLE_RENDER_RUNS=${text}: a whole number from 1 to 100`);
  return runs;
}

/** Processes kept spinning while part 1 loads its pages (`ZTWATCH_BENCH_CONSOLE_BUSY`), default none. */
function readBusy(): number {
  const text = process.env.ZTWATCH_BENCH_CONSOLE_BUSY;
  const busy = text === undefined || text === '' ? 0 : Number(text);
  if (!Number.isSafeInteger(busy) || busy < 0 || busy > MAX_BUSY) throw new Error(`ZTWATCH_BENCH_CONSOLE_BUSY=${text}: a whole number from 0 to ${MAX_BUSY}`);
  return busy;
}

/**
 * Other work on the machine: `count` processes spinning on the CPU, each stopping by itself after
 * BUSY_MAX_MS if it is not stopped first.
 */
function startBusy(count: number): ChildProcess[] {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', `const end = Date.now() + ${BUSY_MAX_MS}; while (Date.now() < end);`], { stdio: 'ignore' }));
}

/** Where part 2 keeps its events across runs (`ZTWATCH_BENCH_CONSOLE_DATA_DIR`), or none. */
function readDataDir(): string | undefined {
  const dir = process.env.ZTWATCH_BENCH_CONSOLE_DATA_DIR;
  return dir === undefined || dir === '' ? undefined : dir;
}

async function startApi(database: string, dataDir = ':memory:'): Promise<Runtime> {
  const config = buildConfig({ dataDir, clickhouse: { database, retentionDays: 400 }, http: { port: 0, host: '127.0.0.1' }, log: { level: 'silent' } });
  return startRuntime({ config, roles: new Set(['api'] as const), extraTokens: [{ name: 'bench', role: 'admin', token: TOKEN }], log: () => undefined });
}

/** 3 000 distinct edges among 300 services, most within a namespace, with varied denials. */
function buildRollupRows(minuteSeconds: number): Array<Record<string, unknown>> {
  const random = createRandom(42);
  const ns = (i: number) => `ns${i % NAMESPACES}`;
  const edges = new Set<string>();
  const rows: Array<Record<string, unknown>> = [];
  while (rows.length < EDGES) {
    const src = random.int(0, SERVICES - 1);
    const dst = random.chance(0.6) ? (src + NAMESPACES * random.int(1, 5)) % SERVICES : random.int(0, SERVICES - 1);
    if (src === dst || edges.has(`${src}>${dst}`)) continue;
    edges.add(`${src}>${dst}`);
    const requests = random.int(10, 5000);
    const denyShare = random.chance(0.8) ? 0 : random.pick([0.005, 0.05, 0.3]);
    rows.push({
      minute: minuteSeconds,
      src_identity: `spiffe://cluster.local/ns/${ns(src)}/sa/svc-${src}`,
      src_namespace: ns(src),
      dst_service: `svc-${dst}`,
      dst_namespace: ns(dst),
      source: 'envoy',
      requests,
      denies: Math.round(requests * denyShare),
      errors: 0,
      tls_failures: random.chance(0.05) ? random.int(1, 50) : 0,
      plaintext: random.chance(0.05) ? random.int(1, requests) : 0,
      mtls_requests: requests,
      bytes_in: requests * 200,
      bytes_out: requests * 2000,
    });
  }
  return rows;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/**
 * CPU seconds used so far by every process descending from this one (the chromium processes) but
 * those in `exclude` (the spinning ones): on a machine shared with other work, the wall time of a
 * page load includes waiting for a core; its CPU time is what the page costs.
 */
function readBrowserCpuSeconds(exclude: ReadonlySet<number> = new Set()): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The process ended while the list was read.
    }
  }
  const mine = new Set([process.pid]);
  let ticks = 0;
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, stat] of stats) {
      if (!mine.has(pid) && !exclude.has(pid) && mine.has(stat.ppid)) {
        mine.add(pid);
        ticks += stat.ticks;
        grew = true;
      }
    }
  }
  return ticks / CLOCK_TICKS;
}

async function benchRender(): Promise<void> {
  const renderRuns = readRenderRuns();
  const busyCount = readBusy();
  const runtime = await startApi(`bench_console_graph_${process.pid}`);
  const browser = await launchBrowser({ width: 1600, height: 1000 });
  let busy: ChildProcess[] = [];
  try {
    const store = runtime.store;
    if (!store) throw new Error('no store');
    await store.insertRows('edge_minute', buildRollupRows(Math.floor((Date.now() - 10 * 60_000) / 60_000) * 60));
    const page = await browser.newPage();
    // Signed in once: the token lives in the tab's sessionStorage across navigations.
    await page.goto(`${runtime.url}/`);
    await page.getByTestId('login-token').fill(TOKEN);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('who').waitFor();
    // The page's main-thread CPU time, from chromium's own counter (reset with each document).
    const metrics = await page.context().newCDPSession(page);
    await metrics.send('Performance.enable');
    const readMainThreadMs = async () => {
      const { metrics: values } = await metrics.send('Performance.getMetrics');
      return (values.find((m) => m.name === 'ThreadTime')?.value ?? NaN) * 1000;
    };
    busy = startBusy(busyCount);
    const busyPids = new Set(busy.flatMap((p) => (p.pid === undefined ? [] : [p.pid])));
    const results: Array<{ readyMs: number; clickMs: number; cpuMs: number; mainMs: number; nodes: number; edges: number; phases: Record<string, number> }> = [];
    // `ZTWATCH_BENCH_CONSOLE_PROFILE=<file.cpuprofile>`: the page's CPU profile over the last load
    // and its click (open it in the browser's DevTools, Performance panel).
    const profileFile = process.env.ZTWATCH_BENCH_CONSOLE_PROFILE;
    const cdp = profileFile ? metrics : undefined;
    for (let run = 0; run < renderRuns; run++) {
      const profiled = cdp !== undefined && run === renderRuns - 1;
      if (profiled) {
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.start');
      }
      const cpuBefore = readBrowserCpuSeconds(busyPids);
      await page.goto(`${runtime.url}/?run=${run}#/graph?window=1h`);
      await page.locator('[data-testid="page-graph"][data-ready="true"]').waitFor({ timeout: 60_000 });
      const marks = await page.evaluate(() => Object.fromEntries(['data', 'created', 'layout-start', 'layout-end', 'ready'].map((m) => [m, performance.getEntriesByName(`ztwatch-graph-${m}`)[0]?.startTime ?? NaN])));
      const readyMs = marks.ready ?? NaN;
      // Where the time went, from one mark to the next in the order the page reached them (large
      // graphs are laid out before the graph is built, small ones after): data fetched, layout,
      // graph built, first frame drawn.
      const reached = Object.entries(marks).sort(([, a], [, b]) => a - b);
      const phases: Record<string, number> = { 'navigation → data': marks.data ?? NaN };
      for (let i = 1; i < reached.length; i++) {
        const [from, fromMs] = reached[i - 1] as [string, number];
        const [to, toMs] = reached[i] as [string, number];
        phases[`${from} → ${to}`] = toMs - fromMs;
      }
      const canvas = page.getByTestId('graph-canvas');
      const counts = { nodes: Number(await canvas.getAttribute('data-nodes')), edges: Number(await canvas.getAttribute('data-edges')) };
      // A real click on a node where it is drawn, until its panel shows.
      const target = await page.evaluate(() => {
        interface Node {
          renderedPosition(): { x: number; y: number };
        }
        const cy = (globalThis as unknown as { ztwatchGraph?: { nodes(s: string): { toArray(): Node[] } } }).ztwatchGraph;
        const node = cy?.nodes('[kind]').toArray()[7];
        return node ? node.renderedPosition() : null;
      });
      if (!target) throw new Error('no node to click');
      const box = await canvas.boundingBox();
      if (!box) throw new Error('graph canvas not on screen');
      const started = performance.now();
      await page.mouse.click(box.x + target.x, box.y + target.y);
      // Nodes may overlap where it was clicked: any node's panel is the page answering the click.
      await page.getByTestId('node-title').waitFor({ timeout: 10_000 });
      const clickMs = performance.now() - started;
      if (profiled && profileFile) writeFileSync(profileFile, JSON.stringify((await cdp.send('Profiler.stop')).profile));
      results.push({ readyMs, clickMs, cpuMs: (readBrowserCpuSeconds(busyPids) - cpuBefore) * 1000, mainMs: await readMainThreadMs(), ...counts, phases });
    }
    const screenshot = process.env.ZTWATCH_BENCH_CONSOLE_SCREENSHOT;
    if (screenshot) await page.screenshot({ path: screenshot });
    const first = results[0];
    const ready = results.map((r) => r.readyMs).sort((a, b) => a - b);
    const click = results.map((r) => r.clickMs).sort((a, b) => a - b);
    const total = results.map((r) => r.readyMs + r.clickMs).sort((a, b) => a - b);
    for (const p of busy) p.kill();
    console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores${busyCount ? `, ${busyCount} other process${busyCount > 1 ? 'es' : ''} spinning` : ''} (the render time is wall time)`);
    console.log(`graph of ${first?.nodes} nodes / ${first?.edges} edges (${SERVICES} services, ${EDGES} edges), ${renderRuns} page loads in headless chromium:`);
    console.log(`  navigation → laid out on screen: median ${quantile(ready, 0.5).toFixed(0)} ms (min ${ready[0]?.toFixed(0)}, max ${ready[ready.length - 1]?.toFixed(0)})`);
    for (const phase of Object.keys(first?.phases ?? {})) {
      const ms = results.map((r) => r.phases[phase] ?? NaN).sort((a, b) => a - b);
      console.log(`    ${phase.padEnd(28)} median ${quantile(ms, 0.5).toFixed(0)} ms`);
    }
    console.log(`  click on a node → its panel: median ${quantile(click, 0.5).toFixed(0)} ms`);
    const cpu = results.map((r) => r.cpuMs).sort((a, b) => a - b);
    console.log(`  chromium CPU time for load + layout + click (all its processes): median ${quantile(cpu, 0.5).toFixed(0)} ms`);
    // The rest of chromium's CPU is mostly V8 compiling the page's hot code on other threads, the
    // compositor and the GPU process: on 2 cores they take turns with the main thread.
    const main = results.map((r) => r.mainMs).sort((a, b) => a - b);
    console.log(`    of which the page's main thread: median ${quantile(main, 0.5).toFixed(0)} ms`);
    const median = quantile(total, 0.5);
    console.log(`  rendered and interactive: median ${median.toFixed(0)} ms, worst ${total[total.length - 1]?.toFixed(0)} ms — ${(median / TARGET_RENDER_MS).toFixed(2)}× the ${TARGET_RENDER_MS} ms target (≤ 1 passes)`);
  } finally {
    for (const p of busy) p.kill();
    await browser.close();
    await runtime.close();
  }
}

async function benchApi(): Promise<void> {
  const rows = readRows();
  const dataDir = readDataDir();
  const runtime = await startApi(dataDir === undefined ? `bench_console_api_${process.pid}` : `bench_console_api_${rows}`, dataDir);
  try {
    const store = runtime.store;
    if (!store) throw new Error('no store');
    const [kept] = await store.query<{ n: string; newest: string }>(`SELECT count() AS n, toString(toUnixTimestamp64Milli(max(time))) AS newest FROM ${store.database}.events`);
    let endMs = Date.now();
    if (dataDir !== undefined && Number(kept?.n) === rows) {
      endMs = Number(kept?.newest) + 1;
      console.log(`reusing ${rows.toLocaleString('en')} events kept under ${dataDir} (newest ${new Date(endMs).toISOString()})`);
      // Migrations added since the events were generated may build projections in the background.
      for (;;) {
        const [pending] = await store.query<{ n: string }>('SELECT toString(count()) AS n FROM system.mutations WHERE database = {db:String} AND NOT is_done', { db: store.database });
        if (Number(pending?.n ?? 0) === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    } else {
      if (Number(kept?.n) > 0) throw new Error(`${dataDir ?? ''} holds ${kept?.n} events, not ${rows}: remove it or choose another directory`);
      console.log(`generating ${rows.toLocaleString('en')} events over 30 days (rollups kept)…`);
      const started = performance.now();
      await store.command(generateSql(`${store.database}.events`, rows, endMs));
      console.log(`loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    const subjects = await store.query<{ id: string; svc: string }>(`SELECT src_identity AS id, dst_service AS svc FROM ${store.database}.events ORDER BY cityHash64(event_id) LIMIT ${API_SAMPLES}`);
    const iso = (ms: number) => new Date(ms).toISOString();
    const hour = { from: iso(endMs - 3_600_000), to: iso(endMs) };
    const day = { from: iso(endMs - 86_400_000), to: iso(endMs) };
    const calls: Array<[string, (i: number) => string]> = [
      ['session (sign-in)', () => '/v1/session'],
      ['graph, last hour', () => `/v1/graph?from=${hour.from}&to=${hour.to}&limit=5000`],
      ['graph, last 24 h', () => `/v1/graph?from=${day.from}&to=${day.to}&limit=5000`],
      ['edge series, last hour', (i) => `/v1/graph/series?from=${hour.from}&to=${hour.to}&src=${encodeURIComponent(subjects[i]?.id ?? '')}&dst=${subjects[i]?.svc ?? ''}`],
      ['incidents list', () => '/v1/incidents?limit=200'],
      ['anomalies list', () => '/v1/anomalies?status=firing&limit=500'],
      ['access, newest page of the last hour (page default)', () => `/v1/access?from=${hour.from}&limit=100`],
      ['access, newest page of all history', () => '/v1/access?limit=100'],
      ['access, one identity + service, 24 h', (i) => `/v1/access?identity=${encodeURIComponent(subjects[i]?.id ?? '')}&service=${subjects[i]?.svc ?? ''}&from=${day.from}&to=${day.to}&limit=100`],
      ['access, denials of one service', (i) => `/v1/access?service=${subjects[i]?.svc ?? ''}&decision=deny&limit=100`],
    ];
    console.log(`console API calls over HTTP on ${rows.toLocaleString('en')} events (${API_SAMPLES} each, after 3 warm-up):`);
    console.log(`  (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores; cpu: this process's CPU time per call, the embedded engine's threads included)`);
    for (const [name, url] of calls) {
      const ms: number[] = [];
      const cpuMs: number[] = [];
      for (let i = -3; i < API_SAMPLES; i++) {
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const res = await fetch(`${runtime.url}${url(Math.max(0, i))}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${name}: ${res.status}`);
        const cpu = process.cpuUsage(cpu0);
        if (i >= 0) {
          ms.push(performance.now() - t0);
          cpuMs.push((cpu.user + cpu.system) / 1000);
        }
      }
      ms.sort((a, b) => a - b);
      cpuMs.sort((a, b) => a - b);
      const p50 = quantile(ms, 0.5);
      console.log(
        `  ${name.padEnd(52)} p50 ${p50.toFixed(0).padStart(5)} ms  p99 ${quantile(ms, 0.99).toFixed(0).padStart(5)} ms  cpu p50 ${quantile(cpuMs, 0.5).toFixed(0).padStart(5)} ms  — ${(p50 / TARGET_API_P50_MS).toFixed(2)}× the ${TARGET_API_P50_MS} ms target`,
      );
    }
  } finally {
    if (dataDir === undefined) await dropDatabase(runtime);
    await runtime.close();
  }
}

async function dropDatabase(runtime: Runtime): Promise<void> {
  await runtime.store?.command(`DROP DATABASE IF EXISTS ${runtime.store.database}`).catch(() => undefined);
}

/** Both parts. */
export async function runConsoleBench(): Promise<void> {
  const parts = new Set((process.env.ZTWATCH_BENCH_CONSOLE_PARTS ?? 'render,api').split(','));
  if (parts.has('render')) await benchRender();
  if (parts.has('api')) await benchApi();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runConsoleBench();
