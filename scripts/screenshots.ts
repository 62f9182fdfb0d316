// `npm run screenshots`: regenerates the console screenshots in docs/img/ (shown in README.md) from
// a running console: a real ztwatch on the embedded store with the demo scenario, in headless
// chromium. Run it after changing the console.
import { mkdir } from 'node:fs/promises';
import { groupByFormat } from '../ingest/simulate/index.ts';
import { getJson, launchBrowser, signIn, startConsoleRuntime, TOKENS, waitFor } from '../test/console/harness.ts';
import type { Incident } from '../core/incident.ts';

const OUT = new URL('../docs/img/', import.meta.url);
const rank = ['info', 'low', 'medium', 'high', 'critical'];

const zt = await startConsoleRuntime();
const browser = await launchBrowser({ width: 1440, height: 900 });
let liveTimer: ReturnType<typeof setInterval> | undefined;
try {
  await mkdir(OUT, { recursive: true });
  const incidents = await waitFor(
    async () => {
      const page = await getJson<{ items: Incident[] }>(`${zt.url}/v1/incidents?limit=100`, TOKENS.admin);
      return page.items.length >= 2 ? page.items : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1000, what: 'two incidents' },
  );
  // Live traffic for the health page's rates, as the demo streams it.
  let cursor = Date.now();
  liveTimer = setInterval(() => {
    const until = Date.now();
    const lines = zt.scenario.generate(cursor, until);
    cursor = until;
    for (const [format, records] of groupByFormat(lines)) void zt.runtime.ingestor?.ingest(format, records);
  }, 1000);

  const page = await browser.newPage();
  const shot = async (name: string, fullPage = false) => {
    await page.screenshot({ path: new URL(name, OUT).pathname, fullPage });
    console.log(`wrote docs/img/${name}`);
  };

  await signIn(page, zt.url, TOKENS.admin, '#/graph');
  await page.locator('[data-testid="page-graph"][data-ready="true"]').waitFor({ timeout: 60_000 });
  // The most denied workload-to-workload edge with real traffic, selected, with its panel open.
  const picked = await page.evaluate(() => {
    interface Edge {
      data(k: string): unknown;
      select(): void;
      emit(e: string): void;
    }
    const cy = (globalThis as unknown as { ztwatchGraph?: { edges(): { toArray(): Edge[] } } }).ztwatchGraph;
    const edges = (cy?.edges().toArray() ?? []).filter((e) => Number(e.data('requests')) >= 50 && String(e.data('src_identity')).startsWith('spiffe://'));
    edges.sort((a, b) => Number(b.data('deny_ratio')) - Number(a.data('deny_ratio')));
    const edge = edges[0];
    edge?.select();
    edge?.emit('tap');
    return edge !== undefined;
  });
  if (picked) await page.getByTestId('edge-chart').locator('canvas').first().waitFor();
  await shot('console-graph.png');

  await page.goto(`${zt.url}/#/incidents`);
  await page.getByTestId('incident-row').first().waitFor();
  await shot('console-incidents.png');

  const worst = [...incidents].sort((a, b) => rank.indexOf(b.severity) - rank.indexOf(a.severity) || b.members.length - a.members.length)[0] as Incident;
  await page.goto(`${zt.url}/#/incidents/${encodeURIComponent(worst.id)}`);
  await page.locator('[data-testid="incident-chart"][data-ready="true"]').waitFor({ timeout: 30_000 });
  await shot('console-incident.png');

  await page.goto(`${zt.url}/#/access?decision=deny`);
  await page.getByTestId('access-row').first().waitFor();
  await shot('console-access.png');

  await page.goto(`${zt.url}/#/posture`);
  await page.getByTestId('posture-row').first().waitFor();
  await shot('console-posture.png');

  await page.goto(`${zt.url}/#/health`);
  await page.locator('[data-testid="health-chart"] canvas').first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(12_000);
  await shot('console-health.png');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${zt.url}/#/graph?window=15m&compare=previous`);
  await page.locator('[data-testid="page-graph"][data-ready="true"]').waitFor({ timeout: 60_000 });
  await shot('console-graph-dark.png');
} finally {
  clearInterval(liveTimer);
  await browser.close();
  await zt.close();
}
