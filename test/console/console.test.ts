// The console in a real headless chromium against a real ztwatch: every role in one process on the
// embedded store, fed the demo scenario (40 minutes of mesh history with a policy misconfiguration
// and an expired certificate), with the live detectors and incidents raising what they find.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Incident } from '../../core/incident.ts';
import { insertIncidents } from '../../store/incident-queries.ts';
import { getJson, launchBrowser, signIn, startConsoleRuntime, TOKENS, waitFor, type ConsoleBrowser, type ConsoleRuntime } from './harness.ts';

interface ApiGraph {
  nodes: Array<{ id: string; kind: string; name: string; namespace: string }>;
  edges: Array<{ source: string; target: string; requests: number }>;
}

/** The parts of the page's cytoscape instance (window.ztwatchGraph) the tests read. */
interface CyElement {
  id(): string;
  data(key: string): unknown;
}
interface CyCollection {
  map<T>(fn: (element: CyElement) => T): T[];
  filter(fn: (element: CyElement) => boolean): CyCollection;
  emit(event: string): void;
}
interface PageGlobals {
  ztwatchGraph?: { nodes(selector?: string): CyCollection; edges(): CyCollection };
  sessionStorage: { getItem(key: string): string | null };
}

/**
 * Counts the frames the page's cytoscape draws, from the moment the page hands its graph to the
 * window (before the first frame); call before the page loads.
 */
async function countGraphFrames(page: Page): Promise<() => Promise<number>> {
  await page.addInitScript(() => {
    const scope = globalThis as unknown as { ztwatchGraph?: { on(event: string, fn: () => void): void }; graphFrames: number };
    scope.graphFrames = 0;
    let graph: typeof scope.ztwatchGraph;
    Object.defineProperty(scope, 'ztwatchGraph', {
      configurable: true,
      get: () => graph,
      set: (value: typeof scope.ztwatchGraph) => {
        graph = value;
        scope.graphFrames = 0;
        value?.on('render', () => scope.graphFrames++);
      },
    });
  });
  return () => page.evaluate(() => (globalThis as unknown as { graphFrames: number }).graphFrames);
}

/** Reads the graph on screen: node and namespace data, and each edge's identity → service. */
function readScreenGraph(page: Page) {
  return page.evaluate(() => {
    const cy = (globalThis as unknown as PageGlobals).ztwatchGraph;
    if (!cy) return null;
    return {
      // Namespaces are compound parents, or boxes on large graphs; workloads are the nodes with a kind.
      namespaces: cy.nodes(':parent, .namespace').map((n) => n.data('label') as string),
      nodes: cy.nodes('[kind]').map((n) => ({ service: n.data('service') as string, identity: n.data('identity') as string, findings: (n.data('findings') as string[]).length })),
      edges: cy.edges().map((e) => ({ id: e.id(), src: e.data('src_identity') as string, dst: e.data('dst_service') as string })),
    };
  });
}

describe('web console in headless chromium', () => {
  let zt: ConsoleRuntime;
  let browser: ConsoleBrowser;
  let incidents: Incident[];

  beforeAll(async () => {
    zt = await startConsoleRuntime();
    browser = await launchBrowser();
    // The live detectors and the incidents stage raise the scripted attacks from the stored history.
    incidents = await waitFor(
      async () => {
        const page = await getJson<{ items: Incident[] }>(`${zt.url}/v1/incidents?limit=100`, TOKENS.analyst);
        return page.items.length > 0 ? page.items : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'the first incident' },
    );
  });
  afterAll(async () => {
    await browser?.close();
    await zt?.close();
  });

  it('shows only the login page without a token, and stays there with a wrong one', async () => {
    const page = await browser.newPage();
    const apiCalls: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/')) apiCalls.push(r.url());
    });
    try {
      for (const hash of ['', '#/graph', '#/access?service=billing', '#/incidents/x', '#/health']) {
        await page.goto(`${zt.url}/${hash}`);
        await page.getByTestId('login-page').waitFor();
        expect(await page.getByTestId('who').count()).toBe(0);
        expect(await page.locator('nav').count()).toBe(0);
      }
      expect(apiCalls).toEqual([]);
      await page.getByTestId('login-token').fill('not-a-token');
      await page.getByTestId('login-submit').click();
      await expect.poll(() => page.getByTestId('login-error').textContent()).toContain('not valid');
      expect(await page.getByTestId('login-page').isVisible()).toBe(true);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.getItem('ztwatch.token'))).toBeNull();
      // Only the token check was sent, and it was refused.
      expect(apiCalls.map((u) => new URL(u).pathname)).toEqual(['/v1/session']);
    } finally {
      await page.close();
    }
  });

  it('draws every workload and edge of the window, grouped by namespace, with incidents badged; an edge opens its requests', async () => {
    const to = new Date().toISOString();
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const expected = await getJson<ApiGraph>(`${zt.url}/v1/graph?from=${from}&to=${to}&limit=5000`, TOKENS.analyst);
    expect(expected.edges.length).toBeGreaterThan(10);
    const page = await browser.newPage();
    try {
      await signIn(page, zt.url, TOKENS.analyst, `#/graph?from=${from}&to=${to}`);
      await page.locator('[data-testid="page-graph"][data-ready="true"]').waitFor({ timeout: 30_000 });
      const screen = await readScreenGraph(page);
      if (!screen) throw new Error('no graph on screen');

      const screenEdges = new Set(screen.edges.map((e) => `${e.src} -> ${e.dst}`));
      const apiEdges = new Set(expected.edges.map((e) => `${e.source.replace(/^identity:/, '')} -> ${e.target.replace(/^service:/, '')}`));
      expect(screenEdges).toEqual(apiEdges);
      const services = new Set(screen.nodes.map((n) => n.service).filter(Boolean));
      for (const n of expected.nodes.filter((n) => n.kind === 'service' && n.name)) expect(services, n.name).toContain(n.name);
      // Every mesh workload is drawn once, its identity merged into its service node.
      for (const w of zt.scenario.mesh.services) {
        const node = screen.nodes.find((n) => n.service === w.name);
        expect(node, w.name).toBeDefined();
        if (expected.nodes.some((n) => n.name === w.identity)) expect(node?.identity).toBe(w.identity);
      }
      for (const ns of new Set(zt.scenario.mesh.services.map((w) => w.namespace))) expect(screen.namespaces).toContain(ns);
      // Open incidents badge the workloads they name. The demo keeps running, so the incidents are
      // read again after the page drew its badges: every incident the page can have seen is listed
      // (one that resolved since then included).
      const current = (await getJson<{ items: Incident[] }>(`${zt.url}/v1/incidents?limit=100`, TOKENS.analyst)).items;
      const named = new Set(current.flatMap((i) => [...i.actors, ...i.targets]));
      const badged = screen.nodes.filter((n) => n.findings > 0);
      expect(badged.length).toBeGreaterThan(0);
      for (const n of badged) expect(named.has(n.service) || named.has(n.identity), JSON.stringify(n)).toBe(true);

      // The busiest service-to-service edge: tap it, read its panel, follow "Requests".
      const busiest = expected.edges.filter((e) => e.source.startsWith('identity:spiffe://')).sort((a, b) => b.requests - a.requests)[0];
      if (!busiest) throw new Error('no service-to-service edge');
      const srcIdentity = busiest.source.replace(/^identity:/, '');
      const dstService = busiest.target.replace(/^service:/, '');
      await page.evaluate(({ src, dst }) => {
        const cy = (globalThis as unknown as PageGlobals).ztwatchGraph;
        cy?.edges().filter((e) => e.data('src_identity') === src && e.data('dst_service') === dst).emit('tap');
      }, { src: srcIdentity, dst: dstService });
      await expect.poll(() => page.getByTestId('edge-title').textContent()).toBe(`${srcIdentity} → ${dstService}`);
      expect(await page.getByTestId('edge-tls').textContent()).toContain('mTLS');
      await page.getByTestId('edge-requests').click();
      await page.getByTestId('page-access').waitFor();
      await page.getByTestId('access-row').first().waitFor();
      const rows = await page.getByTestId('access-row').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      expect(rows.length).toBeGreaterThan(0);
      for (const cells of rows) {
        expect(cells[2]).toBe(srcIdentity);
        expect(cells[3]).toBe(dstService);
      }
    } finally {
      await page.close();
    }
  });

  it('draws a large graph (over 150 nodes) whole: every service and edge, each node inside its own namespace\'s box (boxes, not compound parents) and no other, none on top of another, every namespace named; a click opens a node\'s panel without redrawing the graph, the selection marked over it', async () => {
    // 200 services in 8 namespaces, 4 calls each, stored two days ago so no other window sees them.
    const minute = Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60;
    const services = 200;
    const rows = [];
    for (let i = 0; i < services; i++) {
      for (const step of [1, 8, 9, 57]) {
        const j = (i + step) % services;
        rows.push({
          minute,
          src_identity: `spiffe://cluster.local/ns/big${i % 8}/sa/big-${i}`,
          src_namespace: `big${i % 8}`,
          dst_service: `big-${j}`,
          dst_namespace: `big${j % 8}`,
          source: 'envoy',
          requests: 10 + i,
          denies: step === 57 ? 5 : 0,
          errors: 0,
          tls_failures: 0,
          plaintext: 0,
          mtls_requests: 10 + i,
          bytes_in: 100,
          bytes_out: 100,
        });
      }
    }
    await zt.runtime.store?.insertRows('edge_minute', rows);
    const from = new Date(minute * 1000 - 60_000).toISOString();
    const to = new Date(minute * 1000 + 120_000).toISOString();
    const page = await browser.newPage();
    try {
      const framesDrawn = await countGraphFrames(page);
      await signIn(page, zt.url, TOKENS.analyst, `#/graph?from=${from}&to=${to}`);
      await page.locator('[data-testid="page-graph"][data-ready="true"]').waitFor({ timeout: 60_000 });
      const countingSince = Date.now();
      const screen = await readScreenGraph(page);
      if (!screen) throw new Error('no graph on screen');
      expect(new Set(screen.nodes.map((n) => n.service))).toEqual(new Set(Array.from({ length: services }, (_, i) => `big-${i}`)));
      expect(new Set(screen.edges.map((e) => `${e.src} -> ${e.dst}`))).toEqual(new Set(rows.map((r) => `${r.src_identity} -> ${r.dst_service}`)));
      const placed = await page.evaluate(() => {
        interface Box {
          x1: number;
          x2: number;
          y1: number;
          y2: number;
        }
        interface Node {
          id(): string;
          position(): { x: number; y: number };
          boundingBox(o: object): Box;
          data(k: string): unknown;
        }
        interface Nodes {
          length: number;
          map<T>(fn: (n: Node) => T): T[];
        }
        const cy = (globalThis as unknown as { ztwatchGraph: { nodes(s: string): Nodes; edges(): { style(k: string): string } } }).ztwatchGraph;
        return {
          curve: cy.edges().style('curve-style'),
          parents: cy.nodes(':parent').length,
          boxes: cy.nodes('.namespace').map((ns) => ({ name: ns.data('label') as string, box: ns.boundingBox({ includeLabels: false }) })),
          labels: cy.nodes('.namespace-label').map((l) => ({ name: l.data('label') as string, at: l.position() })),
          nodes: cy.nodes('[kind]').map((n) => ({ namespace: n.data('namespace') as string, at: n.position() })),
        };
      });
      expect(placed.curve).toBe('haystack');
      // Namespaces are boxes under their nodes, not compound parents.
      expect(placed.parents).toBe(0);
      expect(placed.boxes.map((b) => b.name).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `big${i}`));
      const inside = (p: { x: number; y: number }, b: { x1: number; x2: number; y1: number; y2: number }) => p.x > b.x1 && p.x < b.x2 && p.y > b.y1 && p.y < b.y2;
      // Every node inside its own namespace's box and no other; no two nodes on the same spot.
      const seen = new Set<string>();
      for (const n of placed.nodes) {
        const holders = placed.boxes.filter((b) => inside(n.at, b.box)).map((b) => b.name);
        expect(holders, JSON.stringify(n)).toEqual([n.namespace]);
        const key = `${Math.round(n.at.x)},${Math.round(n.at.y)}`;
        expect(seen.has(key), key).toBe(false);
        seen.add(key);
      }
      // Boxes side by side, not overlapping; each namespace's name on the top edge of its box.
      for (const [i, a] of placed.boxes.entries()) {
        for (const b of placed.boxes.slice(i + 1)) expect(a.box.x2 <= b.box.x1 || b.box.x2 <= a.box.x1 || a.box.y2 <= b.box.y1 || b.box.y2 <= a.box.y1).toBe(true);
        const label = placed.labels.find((l) => l.name === a.name);
        expect(label, a.name).toBeDefined();
        expect(label && label.at.x > a.box.x1 && label.at.x < a.box.x2 && Math.abs(label.at.y - a.box.y1) < 2, JSON.stringify({ label, box: a.box })).toBe(true);
      }
      // Drawn once, and not again while nothing changes: cytoscape's resize observer calls back
      // after the first frame with the size unchanged (its observers wait 100 ms to call back).
      await page.waitForTimeout(Math.max(0, countingSince + 1000 - Date.now()));
      expect(await framesDrawn()).toBe(1);
      // On screen: where a node is, the graph's canvas holds that node's fill colour; a real click
      // there opens its panel.
      const readNodeOnCanvas = (service: string) =>
        page.evaluate((wanted) => {
          interface Node {
            id(): string;
            data(k: string): unknown;
            renderedPosition(): { x: number; y: number };
            style(k: string): string;
          }
          interface Canvas {
            width: number;
            clientWidth: number;
            getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
          }
          const page = globalThis as unknown as { ztwatchGraph: { nodes(s: string): { filter(fn: (n: Node) => boolean): Node[] }; width(): number }; document: { querySelector(s: string): Canvas | null } };
          const cy = page.ztwatchGraph;
          const node = cy.nodes('[kind]').filter((n) => n.data('service') === wanted)[0];
          // cytoscape's canvas that holds the nodes and edges.
          const layer = page.document.querySelector('[data-testid="graph-canvas"] canvas[data-id="layer2-node"]');
          const context = layer?.getContext('2d');
          if (!node || !layer || !context) return null;
          const at = node.renderedPosition();
          const scale = layer.width / layer.clientWidth;
          const pixel = [...context.getImageData(Math.round(at.x * scale), Math.round(at.y * scale), 1, 1).data].slice(0, 3);
          return { id: node.id(), at, pixel, fill: node.style('background-color'), graphWidth: cy.width() };
        }, service);
      const rgb = (css: string) => (css.match(/\d+/g) ?? []).slice(0, 3).map(Number);
      const drawnAsFilled = (seen: { pixel: number[]; fill: string }) => rgb(seen.fill).every((channel, i) => Math.abs((seen.pixel[i] ?? -1) - channel) <= 8);
      const pressed = await readNodeOnCanvas('big-7');
      if (!pressed) throw new Error('big-7 not on the canvas');
      expect(drawnAsFilled(pressed), JSON.stringify(pressed)).toBe(true);
      const canvasBox = await page.getByTestId('graph-canvas').boundingBox();
      if (!canvasBox) throw new Error('graph canvas not on screen');
      await page.mouse.click(canvasBox.x + pressed.at.x, canvasBox.y + pressed.at.y);
      await expect.poll(() => page.getByTestId('node-title').textContent()).toBe('big-7');
      // The click redrew nothing (neither pressing nor selecting restyles the node): its selection
      // is marked over the graph, centred on the node.
      const readMark = () =>
        page.getByTestId('graph-mark').evaluate((svg) => {
          const rect = svg.querySelector('rect');
          const number = (name: string) => Number(rect?.getAttribute(name));
          return { marked: svg.getAttribute('data-marked'), centre: rect ? { x: number('x') + number('width') / 2, y: number('y') + number('height') / 2 } : null };
        });
      const markedAt = async (service: string) => {
        const [mark, node] = [await readMark(), await readNodeOnCanvas(service)];
        return node !== null && mark.marked === node.id && mark.centre !== null && Math.abs(mark.centre.x - node.at.x) < 1.5 && Math.abs(mark.centre.y - node.at.y) < 1.5;
      };
      await expect.poll(() => markedAt('big-7')).toBe(true);
      await page.waitForTimeout(300);
      expect(await framesDrawn()).toBe(1);
      // A narrower window resizes and redraws the graph (only unchanged sizes are skipped), and the
      // mark follows its node.
      const before = await page.getByTestId('graph-canvas').evaluate((el) => el.clientWidth);
      await page.setViewportSize({ width: 1100, height: 800 });
      await expect.poll(async () => (await readNodeOnCanvas('big-7'))?.graphWidth).toBe(await page.getByTestId('graph-canvas').evaluate((el) => el.clientWidth));
      expect(await page.getByTestId('graph-canvas').evaluate((el) => el.clientWidth)).toBeLessThan(before);
      await page.evaluate(() => {
        (globalThis as unknown as { ztwatchGraph: { fit(): void } }).ztwatchGraph.fit();
      });
      await expect.poll(() => markedAt('big-7')).toBe(true);
      await expect.poll(async () => {
        const after = await readNodeOnCanvas('big-12');
        return after !== null && drawnAsFilled(after);
      }).toBe(true);
      await page.evaluate(() => {
        const cy = (globalThis as unknown as PageGlobals).ztwatchGraph;
        cy?.nodes('[kind]').filter((n) => n.data('service') === 'big-12').emit('tap');
      });
      await expect.poll(() => page.getByTestId('node-title').textContent()).toBe('big-12');
      await expect.poll(() => markedAt('big-12')).toBe(true);
      // An edge is marked by the line between its nodes; a tap on the background clears the mark.
      const edgeMark = () =>
        page.evaluate(() => {
          interface Point {
            x: number;
            y: number;
          }
          interface Edge {
            id(): string;
            source(): { renderedPosition(): Point };
            target(): { renderedPosition(): Point };
            emit(event: string): void;
          }
          const scope = globalThis as unknown as { ztwatchGraph: { edges(): { toArray(): Edge[] } }; document: { querySelector(s: string): { getAttribute(name: string): string | null } | null } };
          const edge = scope.ztwatchGraph.edges().toArray()[5];
          if (!edge) return null;
          edge.emit('tap');
          return { id: edge.id(), from: edge.source().renderedPosition(), to: edge.target().renderedPosition() };
        });
      const tapped = await edgeMark();
      if (!tapped) throw new Error('no edge to tap');
      await expect
        .poll(() =>
          page.getByTestId('graph-mark').evaluate((svg) => {
            const line = svg.querySelector('line');
            return { marked: svg.getAttribute('data-marked'), ends: ['x1', 'y1', 'x2', 'y2'].map((a) => Math.round(Number(line?.getAttribute(a)))) };
          }),
        )
        .toEqual({ marked: tapped.id, ends: [tapped.from.x, tapped.from.y, tapped.to.x, tapped.to.y].map(Math.round) });
      await page.evaluate(() => {
        (globalThis as unknown as { ztwatchGraph: { emit(event: string): void } }).ztwatchGraph.emit('tap');
      });
      await expect.poll(() => page.getByTestId('graph-mark').evaluate((svg) => [svg.getAttribute('data-marked'), svg.childElementCount])).toEqual(['', 0]);
    } finally {
      await page.close();
    }
  });

  it('lists incidents, opens one with its timeline, chart and members, and shows a new one without a reload', async () => {
    const page = await browser.newPage();
    try {
      await signIn(page, zt.url, TOKENS.analyst, '#/incidents');
      await page.getByTestId('incident-row').first().waitFor();
      const listed = await page.getByTestId('incident-row').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
      for (const incident of incidents) expect(listed).toContain(incident.id);

      // A new incident written to the store shows up on the open page.
      const template = incidents[0] as Incident;
      const fresh: Incident = { ...template, id: `${template.id}-console-test`, title: 'Console test: a later incident.', severity: 'critical', detected_at: new Date().toISOString(), last_seen: new Date().toISOString() };
      if (!zt.runtime.store) throw new Error('no store');
      await insertIncidents(zt.runtime.store, [{ incident: fresh, version: 1 }]);
      await page.locator(`[data-testid="incident-row"][data-id="${fresh.id}"]`).waitFor({ timeout: 20_000 });

      // Filters: critical leaves the new one and only incidents that are critical (a live one may
      // have escalated meanwhile).
      await page.getByTestId('filter-severity').selectOption('critical');
      await expect
        .poll(async () => {
          const ids = await page.getByTestId('incident-row').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
          const critical = new Set((await getJson<{ items: Incident[] }>(`${zt.url}/v1/incidents?limit=100`, TOKENS.analyst)).items.filter((i) => i.severity === 'critical').map((i) => i.id));
          return ids.includes(fresh.id) && ids.every((id) => id !== null && critical.has(id));
        })
        .toBe(true);
      await page.getByTestId('filter-severity').selectOption('');

      const target = incidents.find((i) => i.members.length > 0) ?? template;
      // The incident as the API has it now (its timeline grows while it fires).
      const before = await getJson<{ incident: Incident; anomalies: unknown[] }>(`${zt.url}/v1/incidents/${encodeURIComponent(target.id)}`, TOKENS.analyst);
      await page.locator(`[data-testid="incident-row"][data-id="${target.id}"] a`).click();
      // Its title as the API has it (an incident's title grows with its members while it fires).
      await expect
        .poll(async () => {
          const now = await getJson<{ incident: Incident }>(`${zt.url}/v1/incidents/${encodeURIComponent(target.id)}`, TOKENS.analyst);
          const shown = await page.getByTestId('incident-title').textContent();
          return shown === now.incident.title || shown === before.incident.title;
        })
        .toBe(true);
      await page.locator('[data-testid="incident-chart"][data-ready="true"]').waitFor({ timeout: 20_000 });
      expect(await page.locator('[data-testid="incident-chart"] canvas').count()).toBeGreaterThan(0);
      expect(await page.getByTestId('incident-timeline').locator('li').count()).toBeGreaterThanOrEqual(before.incident.timeline.length);
      expect(await page.getByTestId('incident-timeline').locator('li').first().textContent()).toContain(before.incident.timeline[0]?.summary ?? '');
      expect(await page.getByTestId('incident-members').locator('tbody tr').count()).toBeGreaterThanOrEqual(before.anomalies.length);
      expect(before.anomalies.length).toBeGreaterThan(0);
      // A sample request opens the access history on that request's rows only.
      expect(await page.getByTestId('incident-sample').count()).toBeGreaterThan(0);
      const sample = page.getByTestId('incident-sample').first();
      const rid = (await sample.textContent()) ?? '';
      await sample.click();
      await page.getByTestId('access-row').first().waitFor();
      expect(await page.getByTestId('filter-request_id').inputValue()).toBe(rid);
      const ids = await page.getByTestId('access-row').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-request-id')));
      expect(new Set(ids)).toEqual(new Set([rid]));
    } finally {
      await page.close();
    }
  });

  it('filters access history, pages with the cursor and exports the filter as CSV (auditor), not as analyst', async () => {
    const service = zt.scenario.mesh.services[0]?.name as string;
    const api = await getJson<{ items: Array<{ dst_service: string }> }>(`${zt.url}/v1/access?service=${service}&limit=1000`, TOKENS.auditor);
    expect(api.items.length).toBeGreaterThan(0);

    const analyst = await browser.newPage();
    try {
      await signIn(analyst, zt.url, TOKENS.analyst, '#/access');
      expect(await analyst.getByTestId('export').isDisabled()).toBe(true);
    } finally {
      await analyst.close();
    }

    const page = await browser.newPage();
    try {
      await signIn(page, zt.url, TOKENS.auditor, '#/access');
      await page.getByTestId('filter-service').fill(service);
      await page.locator('select[aria-label="Rows per page"]').selectOption('50');
      await page.getByTestId('access-search').click();
      await expect.poll(() => page.getByTestId('page-info').textContent()).toMatch(/^page 1, \d+ rows$/);
      const services = async () => page.getByTestId('access-row').evaluateAll((trs) => trs.map((tr) => tr.querySelectorAll('td')[3]?.textContent));
      const firstPage = await services();
      expect(firstPage.length).toBe(Math.min(50, api.items.length));
      expect(new Set(firstPage)).toEqual(new Set([service]));
      if (api.items.length > 50) {
        // Events, not requests: a request's proxy log and its authorization decision are two events
        // a millisecond apart, which a page boundary may split.
        const firstIds = await page.getByTestId('access-row').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event-id')));
        await page.getByTestId('page-next').click();
        await expect.poll(() => page.getByTestId('page-info').textContent()).toMatch(/^page 2,/);
        expect(new Set(await services())).toEqual(new Set([service]));
        const secondIds = await page.getByTestId('access-row').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event-id')));
        expect(secondIds.every((id) => id)).toBe(true);
        expect(secondIds.filter((id) => firstIds.includes(id))).toEqual([]);
      }

      await page.getByTestId('export-format').selectOption('csv');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
      expect(download.suggestedFilename()).toMatch(/^ztwatch-access-.*\.csv$/);
      const path = await download.path();
      const lines = (await readFile(path, 'utf8')).trim().split('\r\n');
      const header = (lines[0] ?? '').split(',');
      const col = header.indexOf('dst_service');
      expect(col).toBeGreaterThanOrEqual(0);
      const exported = lines.slice(1);
      const total = await getJson<{ count: number }>(`${zt.url}/v1/access?service=${service}&limit=1&include_count=true`, TOKENS.auditor);
      expect(exported.length).toBe(total.count);
      for (const line of exported) expect(line.split(',')[col]).toBe(service);
      expect(await page.getByTestId('export-status').getAttribute('data-rows')).toBe(String(total.count));

      // The export went through the API: audited under the console user's token.
      const audit = await getJson<{ items: Array<{ actor: string; action: string }> }>(`${zt.url}/v1/audit?action=access.export&limit=10`, TOKENS.admin);
      expect(audit.items.some((a) => a.actor === 'console-auditor')).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('shows STRICT mTLS readiness per service and port, as the posture API reports it', async () => {
    const report = await getJson<{ ports: Array<{ service: string; port: number; verdict: string }>; ready: number }>(`${zt.url}/v1/posture/mtls?window=7d`, TOKENS.analyst);
    expect(report.ports.length).toBeGreaterThan(0);
    const page = await browser.newPage();
    try {
      await signIn(page, zt.url, TOKENS.analyst, '#/posture');
      await page.getByTestId('posture-row').first().waitFor();
      const rows = await page.getByTestId('posture-row').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      expect(rows.map((cells) => `${cells[2]}:${cells[3]}:${cells[0]}`)).toEqual(report.ports.map((p) => `${p.service}:${p.port}:${p.verdict}`));
      expect(await page.getByTestId('posture-summary').textContent()).toContain(`Ready for STRICT${report.ready}`);
    } finally {
      await page.close();
    }
  });

  it('shows pipeline health from /metrics', async () => {
    const page = await browser.newPage();
    try {
      await signIn(page, zt.url, TOKENS.auditor, '#/health');
      await page.locator('[data-testid="health-cards"][data-ready="true"]').waitFor();
      const text = (await page.getByTestId('health-cards').textContent()) ?? '';
      expect(text).toContain('Dead letters');
      expect(text).toMatch(/ready \(store ok/);
      // The auditor sees no graph or incident pages in the navigation.
      expect(await page.getByTestId('nav-graph').count()).toBe(0);
      expect(await page.getByTestId('nav-incidents').count()).toBe(0);
      expect(await page.getByTestId('nav-access').count()).toBe(1);
    } finally {
      await page.close();
    }
  });
});
