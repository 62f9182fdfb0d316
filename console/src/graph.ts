// Service graph page: any past window replayed from the store (GET /v1/graph), laid out by fcose
// with namespaces as compound nodes (large graphs: namespaces as boxes, each in rings, see
// layoutByNamespace), edges coloured by deny ratio, TLS failures or plaintext, open findings
// badged, and "changes since" an earlier window. An edge opens its requests, decisions and TLS
// posture.
import cytoscape, { type Core, type StylesheetJson } from 'cytoscape';
import fcose from 'cytoscape-fcose';
import { apiGet } from './api.ts';
import { createLineChart, followWidth, themeColor } from './chart.ts';
import { field, formatCount, formatPercent, formatTime, h, replaceChildren, severityBadge } from './dom.ts';
import { loadFindings, type Finding } from './findings.ts';
import { buildGraphElements, type ColourBy, type EdgeData, type NodeData } from './graph-model.ts';
import type { Graph, Series } from './types.ts';
import { fromInputTime, hashLink, toInputTime, type View } from './view.ts';

cytoscape.use(fcose);

declare global {
  interface Window {
    /** The graph on screen, for debugging from the browser console and for the browser tests. */
    ztwatchGraph?: Core;
  }
}

const WINDOWS: Record<string, number> = { '15m': 15 * 60_000, '1h': 3_600_000, '6h': 6 * 3_600_000, '24h': 24 * 3_600_000, '7d': 7 * 24 * 3_600_000 };
const COMPARE: Record<string, string> = { '': 'nothing', previous: 'the window before', '1h': 'an hour earlier', '24h': 'a day earlier', '7d': 'a week earlier' };
const COLOUR_BY: Record<ColourBy, string> = { deny: 'deny ratio', tls: 'TLS failures', plaintext: 'plaintext' };
/** Busiest edges asked for (the API's maximum). */
const EDGE_LIMIT = 5000;
/**
 * Above this many nodes the graph is drawn for speed: each namespace's nodes in rings inside a box
 * (a plain node under them, named by a label node over the edges) instead of compound parents and
 * the force-directed layout (see layoutByNamespace), laid out before the graph is made; haystack
 * edges (straight, arrow at the middle: no per-edge geometry to compute); edge widths from a class
 * per whole width instead of a per-edge data mapping (elements with the same classes share one
 * computed style); node labels once zoomed in.
 */
const LARGE_GRAPH_NODES = 150;
/** Widest edge drawn (edges get 1 + log10(requests) px up to this). */
const MAX_EDGE_WIDTH = 8;
/** Node size (px at zoom 1), and room for a node's label under it, as the large graphs' layout sees them. */
const NODE_SIZE = 22;
const LABEL_ROOM = 16;
/** Space between a namespace's nodes and the edge of its box, and between boxes, on large graphs. */
const NAMESPACE_PADDING = 30;
const NAMESPACE_GAP = 80;

function buildStyle(large: boolean): StylesheetJson {
  const c = (name: string) => themeColor(name);
  const sev = (s: string) => c(`--sev-${s}`);
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'font-size': 11,
        color: c('--fg'),
        'text-valign': 'bottom',
        'text-margin-y': 4,
        'background-color': c('--node'),
        'border-width': 1,
        'border-color': c('--node-border'),
        width: NODE_SIZE,
        height: NODE_SIZE,
        // Large graphs: labels once zoomed in (hundreds of labels at the fitted zoom are unreadable).
        'min-zoomed-font-size': large ? 12 : 7,
      },
    },
    { selector: 'node[kind = "identity"]', style: { shape: 'ellipse', 'background-color': c('--node-identity') } },
    { selector: 'node[kind != "identity"]', style: { shape: 'round-rectangle' } },
    {
      selector: ':parent',
      style: {
        label: 'data(label)',
        'text-valign': 'top',
        'text-halign': 'center',
        'font-size': 12,
        'font-weight': 'bold',
        color: c('--muted'),
        'background-color': c('--ns-bg'),
        'background-opacity': 1,
        'border-color': c('--ns-border'),
        'border-width': 1,
        shape: 'round-rectangle',
        padding: '14px',
      },
    },
    {
      // Large graphs: a namespace is a plain node drawn under everything, sized to its nodes,
      // which are placed inside it (compound parents cost every style change a walk of the tree).
      selector: 'node.namespace',
      style: {
        shape: 'round-rectangle',
        width: 'data(w)',
        height: 'data(h)',
        label: '',
        'background-color': c('--ns-bg'),
        'border-color': c('--ns-border'),
        'border-width': 1,
        'z-compound-depth': 'bottom',
        events: 'no',
      },
    },
    {
      // Large graphs: a namespace's name, above its box and drawn over the edges.
      selector: 'node.namespace-label',
      style: {
        width: 1,
        height: 1,
        'background-opacity': 0,
        'border-width': 0,
        label: 'data(label)',
        'text-valign': 'top',
        'text-halign': 'center',
        'font-size': 'data(font)',
        'min-zoomed-font-size': 0,
        'font-weight': 'bold',
        color: c('--muted'),
        'text-background-color': c('--ns-bg'),
        'text-background-opacity': 0.85,
        'text-background-padding': '2px',
        'text-background-shape': 'roundrectangle',
        'z-compound-depth': 'top',
        events: 'no',
      },
    },
    ...['info', 'low', 'medium', 'high', 'critical'].map((s) => ({ selector: `node[severity = "${s}"]`, style: { 'border-width': 4, 'border-color': sev(s), color: sev(s), 'font-weight': 'bold' as const } })),
    {
      selector: 'edge',
      style: large
        ? {
            // Thousands of edges: haystack edges (cytoscape's default curve style, radius 0) skip
            // the control points and endpoint clipping bezier and straight edges compute per
            // edge; the arrow sits at the middle. Each property set here is applied to every edge
            // one by one, so only those that differ from the defaults are (no opacity).
            'mid-target-arrow-shape': 'triangle',
            'arrow-scale': 0.8,
            'line-color': c('--edge-0'),
            'mid-target-arrow-color': c('--edge-0'),
          }
        : {
            width: 'data(weight)',
            'curve-style': 'bezier',
            'target-arrow-shape': 'triangle',
            'arrow-scale': 0.8,
            'line-color': c('--edge-0'),
            'target-arrow-color': c('--edge-0'),
            opacity: 0.85,
          },
    },
    ...(large ? Array.from({ length: MAX_EDGE_WIDTH }, (_, i) => ({ selector: `edge.w${i + 1}`, style: { width: i + 1 } })) : []),
    ...[1, 2, 3].map((b) => ({ selector: `edge[bucket = ${b}]`, style: { 'line-color': c(`--edge-${b}`), [large ? 'mid-target-arrow-color' : 'target-arrow-color']: c(`--edge-${b}`) } })),
    { selector: 'edge[plaintext > 0]', style: { 'line-style': 'dashed' } },
    { selector: 'edge[change = "added"]', style: { 'underlay-color': c('--diff-added'), 'underlay-opacity': 0.35, 'underlay-padding': 4, label: 'new', 'font-size': 9, color: c('--diff-added') } },
    { selector: 'edge[change = "changed"]', style: { 'underlay-color': c('--diff-changed'), 'underlay-opacity': 0.35, 'underlay-padding': 4, label: 'data(change_note)', 'font-size': 9, color: c('--diff-changed') } },
    { selector: 'edge[change = "removed"]', style: { 'line-style': 'dotted', 'line-color': c('--muted'), [large ? 'mid-target-arrow-color' : 'target-arrow-color']: c('--muted'), opacity: 0.6, label: 'gone', 'font-size': 9, color: c('--muted') } },
    ...['info', 'low', 'medium', 'high', 'critical'].map((s) => ({ selector: `edge[severity = "${s}"]`, style: { 'underlay-color': sev(s), 'underlay-opacity': 0.45, 'underlay-padding': 5 } })),
    { selector: ':selected', style: { 'overlay-color': c('--accent'), 'overlay-opacity': 0.25, 'overlay-padding': 6 } },
  ];
}


/**
 * Makes `cy.resize()` do nothing while the container keeps its size and the screen its pixel ratio.
 * cytoscape calls it from the observers it puts on its container: a ResizeObserver, whose first
 * call comes 100 ms after the first frame with nothing changed; an attribute observer; the window's
 * resize event. Each call redraws every element: for 300 services and 3 000 edges, a quarter of a
 * second of the page's main thread, just when the graph is first clicked.
 */
function skipUnchangedResizes(graphCy: Core, container: HTMLElement): void {
  const sizeKey = () => `${container.clientWidth}x${container.clientHeight}@${window.devicePixelRatio}`;
  let drawnAt = sizeKey();
  const resize = graphCy.resize.bind(graphCy);
  graphCy.resize = () => {
    const now = sizeKey();
    if (now === drawnAt) return graphCy;
    drawnAt = now;
    return resize();
  };
}

/** Cores on which pressing an element does not activate it (see keepPressesFromRestyling). */
const pressInert = new WeakSet<Core>();

/**
 * Pressing an element no longer activates it on `graphCy` (its `:active` state, drawn by
 * cytoscape's default style as a grey overlay while the button is down). cytoscape's renderer
 * activates whatever is under the pointer on every press, through the shared prototype of element
 * collections, and any style change of one element makes it draw the whole graph again (its layer
 * of elements is thrown away): for 300 services and 3 000 edges, about half of a click. Other cores
 * on the page, and calls with a handler (`eles.activate(fn)` binds an event), are left as they are.
 */
function keepPressesFromRestyling(graphCy: Core): void {
  pressInert.add(graphCy);
  type Elements = { cy(): Core };
  type Switch = (this: Elements, ...args: unknown[]) => unknown;
  const proto = Object.getPrototypeOf(graphCy.collection()) as Record<'activate' | 'unactivate', Switch> & { pressInertPatched?: true };
  if (proto.pressInertPatched) return;
  proto.pressInertPatched = true;
  for (const name of ['activate', 'unactivate'] as const) {
    const original = proto[name];
    proto[name] = function (this: Elements, ...args: unknown[]) {
      return args.length === 0 && pressInert.has(this.cy()) ? this : original.apply(this, args);
    };
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Room between a selected element and its mark, in graph units (as cytoscape's overlay padding). */
const MARK_PADDING = 6;

/**
 * Large graphs: the selected node or edge is marked on an SVG over cytoscape's canvas instead of
 * by cytoscape's `:selected` style, which would restyle it and so redraw the whole graph (see
 * keepPressesFromRestyling). The mark follows its element through pans, zooms, drags and resizes;
 * edges are straight there (haystack), so an edge's mark is the line between its nodes. Returns
 * the function that marks an element (undefined clears the mark).
 */
function markSelection(graphCy: Core, container: HTMLElement): (element: cytoscape.SingularElementArgument | undefined) => void {
  container.querySelector(':scope > .graph-mark')?.remove();
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'graph-mark');
  svg.setAttribute('data-testid', 'graph-mark');
  container.append(svg);
  let marked: cytoscape.SingularElementArgument | undefined;
  let queued = false;
  const shape = (name: 'rect' | 'line', attributes: Record<string, number>) => {
    const element = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(Math.round(value * 10) / 10));
    return element;
  };
  const draw = () => {
    queued = false;
    if (!marked || marked.removed()) {
      svg.replaceChildren();
      return;
    }
    const zoom = graphCy.zoom();
    const pad = MARK_PADDING * zoom;
    if (marked.isNode()) {
      const box = marked.renderedBoundingBox({ includeLabels: false, includeOverlays: false });
      svg.replaceChildren(shape('rect', { x: box.x1 - pad, y: box.y1 - pad, width: box.w + 2 * pad, height: box.h + 2 * pad, rx: pad }));
    } else {
      const from = marked.source().renderedPosition();
      const to = marked.target().renderedPosition();
      svg.replaceChildren(shape('line', { x1: from.x, y1: from.y, x2: to.x, y2: to.y, 'stroke-width': (marked.numericStyle('width') + 2 * MARK_PADDING) * zoom }));
    }
  };
  const redraw = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(draw);
  };
  graphCy.on('viewport resize', redraw);
  graphCy.on('position', 'node', (e) => {
    const moved = (e.target as cytoscape.NodeSingular).id();
    if (marked && (marked.id() === moved || (marked.isEdge() && (marked.source().id() === moved || marked.target().id() === moved)))) redraw();
  });
  graphCy.one('destroy', () => svg.remove());
  return (element) => {
    marked = element;
    svg.dataset.marked = element?.id() ?? '';
    redraw();
  };
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Layout of a large graph by namespace with cytoscape's own cheap layouts instead of a
 * force-directed one, computed on a headless instance without style before anything is drawn: each
 * namespace's nodes in rings by degree, busiest in the middle ('concentric'), its box sized to them,
 * the boxes in rows and columns for a canvas `aspect` wide ('grid'), the rings moved into their box.
 * The graph on screen then gets every position once, when its elements are added.
 */
function layoutByNamespace(nodes: ReadonlyArray<{ id: string; box: string }>, boxIds: readonly string[], degree: ReadonlyMap<string, number>, aspect: number): { nodes: Map<string, cytoscape.Position>; boxes: Map<string, Box> } {
  const head = cytoscape({ headless: true, styleEnabled: false, elements: [...boxIds.map((id) => ({ data: { id } })), ...nodes.map((n) => ({ data: { id: n.id, box: n.box } }))] });
  const groups = new Map<string, cytoscape.NodeCollection>();
  head.nodes('[box]').forEach((n) => {
    const box = n.data('box') as string;
    // merge adds to the collection in place.
    groups.set(box, (groups.get(box) ?? head.collection()).merge(n));
  });
  const boxes = new Map<string, Box>();
  for (const [box, group] of groups) {
    // Without edges or style here: the degree comes from the graph (a ring spans a quarter of the
    // namespace's highest degree, cytoscape's default), and the spacing includes the node's size.
    const rankOf = (n: cytoscape.NodeSingular) => degree.get(n.id()) ?? 0;
    const ringWidth = Math.max(...group.map(rankOf)) / 4;
    group.layout({ name: 'concentric', concentric: rankOf, levelWidth: () => ringWidth, minNodeSpacing: 18 + NODE_SIZE, avoidOverlap: true, fit: false, animate: false, boundingBox: { x1: 0, y1: 0, w: 1, h: 1 } } as cytoscape.LayoutOptions).run();
    const bb = group.boundingBox();
    boxes.set(box, { x: (bb.x1 + bb.x2) / 2, y: (bb.y1 + bb.y2) / 2, w: bb.w + NODE_SIZE + 2 * NAMESPACE_PADDING, h: bb.h + NODE_SIZE + LABEL_ROOM + 2 * NAMESPACE_PADDING });
  }
  const cellW = Math.max(...[...boxes.values()].map((b) => b.w)) + NAMESPACE_GAP;
  const cellH = Math.max(...[...boxes.values()].map((b) => b.h)) + NAMESPACE_GAP;
  const cols = Math.min(groups.size, Math.max(1, Math.round(Math.sqrt((groups.size * aspect * cellH) / cellW))));
  const rows = Math.ceil(groups.size / cols);
  const boxNodes = head.collection();
  for (const id of boxIds) if (groups.has(id)) boxNodes.merge(head.getElementById(id));
  boxNodes.layout({ name: 'grid', cols, rows, fit: false, animate: false, avoidOverlap: false, condense: false, boundingBox: { x1: 0, y1: 0, w: cols * cellW, h: rows * cellH } } as cytoscape.LayoutOptions).run();
  const positions = new Map<string, cytoscape.Position>();
  for (const [id, group] of groups) {
    const at = head.getElementById(id).position();
    const box = boxes.get(id) as Box;
    // The rings a little above the box's middle: labels hang under the nodes.
    group.shift({ x: at.x - box.x, y: at.y - box.y - LABEL_ROOM / 2 });
    group.forEach((n) => {
      positions.set(n.id(), { ...n.position() });
    });
    boxes.set(id, { ...box, x: at.x, y: at.y });
  }
  head.destroy();
  return { nodes: positions, boxes };
}

function legend(colourBy: ColourBy): HTMLElement {
  const what = COLOUR_BY[colourBy];
  const row = (cls: string, text: string) => h('div', { class: 'legend-row' }, h('span', { class: `swatch ${cls}` }), text);
  return h(
    'div',
    { class: 'legend' },
    h('h3', {}, `Edges by ${what}`),
    row('edge-0', 'none'),
    row('edge-1', 'under 1 %'),
    row('edge-2', '1 – 10 %'),
    row('edge-3', '10 % or more'),
    row('edge-dashed', 'dashed: some plaintext'),
    h('h3', {}, 'Nodes'),
    row('node-service', 'service / workload'),
    row('node-identity', 'identity only'),
    row('node-badge', '⚠ open incidents, border by severity'),
    row('node-namespace', 'namespace'),
  );
}

function accessLink(text: string, params: Record<string, string | undefined>, testid: string): HTMLAnchorElement {
  return h('a', { class: 'button', href: hashLink('access', params), 'data-testid': testid }, text);
}

function findingLinks(ids: readonly string[], findings: ReadonlyMap<string, Finding>): HTMLElement | null {
  if (ids.length === 0) return null;
  return h(
    'div',
    { class: 'panel-section' },
    h('h3', {}, 'Open incidents'),
    ...ids.map((id) => {
      const f = findings.get(id);
      return h('div', { class: 'finding-link' }, f ? severityBadge(f.severity) : null, ' ', h('a', { href: `#/incidents/${encodeURIComponent(id)}` }, f?.title ?? id));
    }),
  );
}

/** The graph page. */
export const renderGraph: View = (root, ctx) => {
  const preset = ctx.query.get('window') ?? '1h';
  const windowSelect = h('select', { 'data-testid': 'graph-window', 'aria-label': 'Window' }, ...Object.keys(WINDOWS).map((w) => h('option', { value: w }, `last ${w}`)), h('option', { value: 'custom' }, 'custom (UTC)'));
  windowSelect.value = ctx.query.get('from') ? 'custom' : preset in WINDOWS ? preset : '1h';
  const fromInput = h('input', { type: 'datetime-local', 'aria-label': 'From (UTC)', 'data-testid': 'graph-from', value: toInputTime(ctx.query.get('from') ?? Date.now() - 3_600_000) });
  const toInput = h('input', { type: 'datetime-local', 'aria-label': 'To (UTC)', 'data-testid': 'graph-to', value: toInputTime(ctx.query.get('to') ?? Date.now()) });
  const compareSelect = h('select', { 'data-testid': 'graph-compare', 'aria-label': 'Changes since' }, ...Object.entries(COMPARE).map(([v, t]) => h('option', { value: v }, t)));
  compareSelect.value = ctx.query.get('compare') ?? '';
  const colourSelect = h('select', { 'data-testid': 'graph-colour', 'aria-label': 'Colour edges by' }, ...Object.entries(COLOUR_BY).map(([v, t]) => h('option', { value: v }, t)));
  colourSelect.value = (ctx.query.get('colour') as ColourBy | null) ?? 'deny';
  const customRange = h('span', { class: 'custom-range' }, fromInput, ' – ', toInput);
  const summary = h('span', { class: 'muted', 'data-testid': 'graph-summary' });
  const canvas = h('div', { class: 'graph-canvas', 'data-testid': 'graph-canvas' });
  const panel = h('aside', { class: 'panel', 'data-testid': 'graph-panel' });
  const legendBox = h('div', {});
  root.append(
    h(
      'div',
      { class: 'toolbar' },
      h('label', {}, 'Window ', windowSelect),
      customRange,
      h('label', {}, 'Changes since ', compareSelect),
      h('label', {}, 'Colour by ', colourSelect),
      h('button', { type: 'button', onclick: () => reload() }, 'Refresh'),
      summary,
    ),
    h('div', { class: 'graph-layout' }, canvas, h('div', { class: 'side' }, panel, legendBox)),
  );

  let cy: Core | undefined;
  let findings = new Map<string, Finding>();
  let range = { fromMs: 0, toMs: 0 };
  let stopChart: (() => void) | undefined;
  let generation = 0;

  const currentRange = (): { fromMs: number; toMs: number } => {
    if (windowSelect.value === 'custom') {
      const from = fromInputTime(fromInput.value);
      const to = fromInputTime(toInput.value);
      if (from && to) return { fromMs: Date.parse(from), toMs: Date.parse(to) };
    }
    const toMs = Date.now();
    return { fromMs: toMs - (WINDOWS[windowSelect.value] ?? 3_600_000), toMs };
  };

  const compareRange = (r: { fromMs: number; toMs: number }): { fromMs: number; toMs: number } | null => {
    const span = r.toMs - r.fromMs;
    const shift = compareSelect.value === 'previous' ? span : WINDOWS[compareSelect.value];
    return shift ? { fromMs: r.fromMs - shift, toMs: r.toMs - shift } : null;
  };

  const showPanelIntro = () => {
    stopChart?.();
    replaceChildren(
      panel,
      h('h2', {}, 'Service graph'),
      h('p', { class: 'muted' }, `${formatTime(range.fromMs)} – ${formatTime(range.toMs)}`),
      h('p', {}, 'Select an edge for its requests, decisions and TLS posture; a node for its traffic and incidents.'),
    );
  };

  const showSeries = async (box: HTMLElement, src: string | undefined, dst: string | undefined) => {
    const series = await apiGet<Series>('/v1/graph/series', { from: new Date(range.fromMs).toISOString(), to: new Date(range.toMs).toISOString(), src: src ? [src] : undefined, dst: dst ? [dst] : undefined });
    const chart = createLineChart(
      box,
      [
        { label: 'requests', color: themeColor('--accent') },
        { label: 'denies', color: themeColor('--edge-3') },
        { label: 'TLS failures', color: themeColor('--edge-2') },
        { label: 'plaintext', color: themeColor('--sev-low') },
      ],
      [series.times, series.values.requests, series.values.denies, series.values.tls_failures, series.values.plaintext],
      { height: 160, yLabel: `per ${series.step_seconds / 60} min` },
    );
    const stop = followWidth(chart, box);
    stopChart = () => {
      stop();
      chart.destroy();
    };
  };

  const showEdge = (d: EdgeData) => {
    stopChart?.();
    const from = new Date(range.fromMs).toISOString();
    const to = new Date(range.toMs).toISOString();
    const chartBox = h('div', { class: 'chart small', 'data-testid': 'edge-chart' });
    replaceChildren(
      panel,
      h('h2', { 'data-testid': 'edge-title' }, `${d.src_identity || '(no identity)'} → ${d.dst_service || '(unknown service)'}`),
      d.change ? h('p', { class: `change change-${d.change}` }, d.change_note) : null,
      h(
        'div',
        { class: 'fields' },
        field('Requests', formatCount(d.requests)),
        field('Denied', `${formatCount(d.denies)} (${formatPercent(d.deny_ratio)})`),
        field('Errors', formatCount(d.errors)),
        field('Bytes in / out', `${formatCount(d.bytes_in)} / ${formatCount(d.bytes_out)}`),
      ),
      h('h3', {}, 'TLS posture'),
      h(
        'div',
        { class: 'fields', 'data-testid': 'edge-tls' },
        field('mTLS', `${formatCount(d.mtls_requests)} (${formatPercent(d.mtls_share)})`),
        field('Plaintext', `${formatCount(d.plaintext)} (${formatPercent(d.plaintext_ratio)})`),
        field('TLS failures', `${formatCount(d.tls_failures)} (${formatPercent(d.tls_ratio)})`),
      ),
      h(
        'div',
        { class: 'actions' },
        accessLink('Requests', { identity: d.src_identity || undefined, service: d.dst_service || undefined, from, to }, 'edge-requests'),
        accessLink('Denied decisions', { identity: d.src_identity || undefined, service: d.dst_service || undefined, decision: 'deny', from, to }, 'edge-denied'),
      ),
      findingLinks(d.findings, findings),
      chartBox,
    );
    showSeries(chartBox, d.src_identity, d.dst_service).catch((err: unknown) => ctx.status(`series: ${(err as Error).message}`, 'error'));
  };

  const showNode = (d: NodeData) => {
    stopChart?.();
    const from = new Date(range.fromMs).toISOString();
    const to = new Date(range.toMs).toISOString();
    const chartBox = h('div', { class: 'chart small' });
    replaceChildren(
      panel,
      h('h2', { 'data-testid': 'node-title' }, d.label.replace(/\s+⚠\d+$/, '')),
      h(
        'div',
        { class: 'fields' },
        field('Namespace', d.namespace || '–'),
        d.service ? field('Service', d.service) : null,
        d.identity ? field('Identity', d.identity) : null,
        field('Requests in', formatCount(d.requests_in)),
        field('Requests out', formatCount(d.requests_out)),
      ),
      h(
        'div',
        { class: 'actions' },
        d.service ? accessLink('Requests to it', { service: d.service, from, to }, 'node-requests-in') : null,
        d.identity ? accessLink('Requests it made', { identity: d.identity, from, to }, 'node-requests-out') : null,
      ),
      findingLinks(d.findings, findings),
      chartBox,
    );
    showSeries(chartBox, d.service ? undefined : d.identity, d.service || undefined).catch((err: unknown) => ctx.status(`series: ${(err as Error).message}`, 'error'));
  };

  const load = async () => {
    const mine = ++generation;
    customRange.hidden = windowSelect.value !== 'custom';
    range = currentRange();
    if (!(range.fromMs < range.toMs)) {
      ctx.status('the window must start before it ends', 'error');
      return;
    }
    const before = compareRange(range);
    const iso = (ms: number) => new Date(ms).toISOString();
    summary.textContent = 'loading…';
    const [graph, previous, found] = await Promise.all([
      apiGet<Graph>('/v1/graph', { from: iso(range.fromMs), to: iso(range.toMs), limit: EDGE_LIMIT }),
      before ? apiGet<Graph>('/v1/graph', { from: iso(before.fromMs), to: iso(before.toMs), limit: EDGE_LIMIT }) : Promise.resolve(null),
      loadFindings({ status: 'firing' }).catch(() => [] as Finding[]),
    ]);
    if (mine !== generation) return;
    performance.mark('ztwatch-graph-data');
    findings = new Map(found.map((f) => [f.id, f]));
    const colourBy = colourSelect.value as ColourBy;
    const elements = buildGraphElements(graph, { colourBy, findings: found, previous });
    replaceChildren(legendBox, legend(colourBy));
    cy?.destroy();
    cy = undefined;
    root.dataset.ready = 'false';
    const nodeCount = elements.nodes.length;
    const large = nodeCount > LARGE_GRAPH_NODES;
    const changes = elements.edges.filter((e) => e.data.change !== '').length;
    const badged = elements.nodes.filter((n) => n.data.findings.length > 0).length;
    summary.textContent = `${nodeCount} nodes, ${elements.edges.length} edges${before ? `, ${changes} changed since ${COMPARE[compareSelect.value]}` : ''}${badged ? `, ${badged} nodes with open incidents` : ''}`;
    // Before the graph exists: cytoscape watches its container's attributes and redraws on a change.
    canvas.dataset.nodes = String(nodeCount);
    canvas.dataset.edges = String(elements.edges.length);
    // Ready once the laid-out graph has been drawn: cytoscape draws on the next animation frame,
    // so the frame after it has it on screen.
    const drawn = () =>
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          if (mine !== generation) return;
          root.dataset.ready = 'true';
          // For the benchmark: when the laid-out graph is on screen, since navigation start.
          performance.mark('ztwatch-graph-ready');
        }),
      );
    let added: cytoscape.ElementDefinition[];
    if (large) {
      // Large graphs: laid out before the graph is made, so that each node gets its position once;
      // namespaces are boxes drawn under their nodes rather than compound parents (each node names
      // its box); edge width is a class (w1 … w8) so that edges share their computed style.
      performance.mark('ztwatch-graph-layout-start');
      const degree = new Map<string, number>();
      for (const { data } of elements.edges) for (const id of [data.source, data.target]) degree.set(id, (degree.get(id) ?? 0) + 1);
      const members = elements.nodes.map((n) => ({ id: n.data.id, box: n.data.parent }));
      const placed = layoutByNamespace(members, elements.namespaces.map((ns) => ns.data.id), degree, canvas.clientWidth / Math.max(1, canvas.clientHeight));
      performance.mark('ztwatch-graph-layout-end');
      // Namespace names in one size, readable at the zoom that fits the graph.
      const font = Math.round(Math.max(14, ...[...placed.boxes.values()].map((b) => Math.min(b.w, b.h) / 10)));
      added = [
        ...elements.namespaces.flatMap((ns) => {
          const box = placed.boxes.get(ns.data.id);
          if (!box) return [];
          return [
            { data: { ...ns.data, w: box.w, h: box.h }, position: { x: box.x, y: box.y }, classes: 'namespace' },
            { data: { id: `label:${ns.data.id}`, label: ns.data.label, font }, position: { x: box.x, y: box.y - box.h / 2 }, classes: 'namespace-label' },
          ];
        }),
        ...elements.nodes.map(({ data: { parent, ...data } }) => ({ data: { ...data, box: parent }, position: placed.nodes.get(data.id) })),
        ...elements.edges.map((e) => ({ data: e.data, classes: `w${Math.max(1, Math.min(MAX_EDGE_WIDTH, Math.round(e.data.weight)))}` })),
      ];
    } else {
      added = [...elements.namespaces, ...elements.nodes, ...elements.edges];
    }
    // Created empty and then given its elements in one add: cytoscape runs its initial layout over
    // the elements it is created with (even 'preset' sets every position, restyling every edge).
    const graphCy = cytoscape({
      container: canvas,
      style: buildStyle(large),
      layout: { name: 'preset' },
      minZoom: 0.05,
      maxZoom: 4,
      boxSelectionEnabled: false,
      // Large graphs: selection is marked over the graph (markSelection), not restyled.
      autounselectify: large,
      hideEdgesOnViewport: large,
      textureOnViewport: large,
    });
    cy = graphCy;
    skipUnchangedResizes(graphCy, canvas);
    let mark: ReturnType<typeof markSelection> | undefined;
    if (large) {
      keepPressesFromRestyling(graphCy);
      mark = markSelection(graphCy, canvas);
    }
    graphCy.add(added);
    window.ztwatchGraph = graphCy;
    performance.mark('ztwatch-graph-created');
    graphCy.on('tap', 'edge', (e) => {
      mark?.(e.target as cytoscape.EdgeSingular);
      showEdge(e.target.data() as EdgeData);
    });
    graphCy.on('tap', 'node', (e) => {
      // Namespaces (compound parents, or boxes on large graphs) have no kind and no panel.
      if (!e.target.data('kind')) return;
      mark?.(e.target as cytoscape.NodeSingular);
      showNode(e.target.data() as NodeData);
    });
    graphCy.on('tap', (e) => {
      if (e.target !== graphCy) return;
      mark?.(undefined);
      showPanelIntro();
    });
    if (large) {
      // Fitted to every element: computing their bounds before the first frame styles them and
      // settles their bounds now. Otherwise the first frame's bounds mark every element dirty
      // again and the next frame recomputes and redraws the whole graph a second time.
      graphCy.fit(graphCy.elements(), 24);
      drawn();
    } else {
      performance.mark('ztwatch-graph-layout-start');
      const layout = graphCy.layout({
        name: 'fcose',
        quality: 'default',
        numIter: 2500,
        randomize: true,
        animate: false,
        nodeDimensionsIncludeLabels: true,
        nodeRepulsion: () => 6000,
        idealEdgeLength: () => 90,
      } as cytoscape.LayoutOptions);
      layout.one('layoutstop', () => {
        if (mine !== generation) return;
        graphCy.fit(undefined, 24);
        drawn();
      });
      layout.run();
      performance.mark('ztwatch-graph-layout-end');
    }
    showPanelIntro();
    ctx.status('');
  };

  const reload = () => {
    load().catch((err: unknown) => {
      summary.textContent = '';
      ctx.status(`graph: ${(err as Error).message}`, 'error');
    });
  };
  for (const control of [windowSelect, compareSelect, colourSelect, fromInput, toInput]) control.addEventListener('change', reload);
  reload();
  return () => {
    generation++;
    stopChart?.();
    cy?.destroy();
    if (window.ztwatchGraph === cy) delete window.ztwatchGraph;
  };
};
