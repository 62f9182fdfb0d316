// Incidents page: the list (filters, newest first, polled so new ones appear without a reload) and
// one incident's detail: timeline, observed-vs-baseline chart, members and sample requests linked
// into the access history. Falls back to anomalies where the API serves no incidents.
import { apiGet } from './api.ts';
import { createLineChart, followWidth, themeColor } from './chart.ts';
import { field, formatTime, h, replaceChildren, severityBadge } from './dom.ts';
import { detectIncidents, loadFinding, loadFindings, type Finding, type FindingFilters } from './findings.ts';
import { COUNTER_OF, SEVERITIES, type Anomaly, type Series, type SeriesCounter } from './types.ts';
import { hashLink, type View } from './view.ts';

/** How often the list asks for new incidents, in ms. */
const POLL_MS = 5000;
/** Chart range around an incident: this long before first_seen, and the baseline before that. */
const CHART_LEAD_MS = 30 * 60_000;
const CHART_TAIL_MS = 10 * 60_000;
const BASELINE_MS = 60 * 60_000;


function sampleRequestIds(members: readonly Anomaly[], finding: Finding): string[] {
  const ids = new Set<string>();
  for (const evidence of [finding.evidence, ...members.map((m) => m.evidence)]) {
    const list = evidence.sample_request_ids;
    if (Array.isArray(list)) for (const id of list) if (typeof id === 'string' && id) ids.add(id);
  }
  return [...ids].slice(0, 20);
}

/** The list. */
export const renderIncidentList: View = (root, ctx) => {
  const status = h('select', { 'aria-label': 'Status', 'data-testid': 'filter-status' }, h('option', { value: '' }, 'any status'), h('option', { value: 'firing' }, 'firing'), h('option', { value: 'resolved' }, 'resolved'));
  status.value = ctx.query.get('status') ?? '';
  const severity = h('select', { 'aria-label': 'Lowest severity', 'data-testid': 'filter-severity' }, h('option', { value: '' }, 'any severity'), ...SEVERITIES.map((s) => h('option', { value: s }, `${s} or above`)));
  severity.value = ctx.query.get('severity') ?? '';
  const text = h('input', { type: 'search', placeholder: 'actor, target or title', 'aria-label': 'Search', 'data-testid': 'filter-text', value: ctx.query.get('q') ?? '' });
  const heading = h('h2', {}, 'Incidents');
  const body = h('tbody', { 'data-testid': 'incident-rows' });
  const note = h('p', { class: 'muted' });
  root.append(
    h('div', { class: 'toolbar' }, heading, h('label', {}, 'Status ', status), h('label', {}, 'Severity ', severity), text),
    note,
    h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, h('th', {}, 'Severity'), h('th', {}, 'Status'), h('th', {}, 'What'), h('th', {}, 'Actors → targets'), h('th', {}, 'First seen'), h('th', {}, 'Last seen'))), body),
  );

  const known = new Set<string>();
  let first = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  /** Only the newest answer is shown: a poll already under way must not undo a filter change. */
  let generation = 0;

  const refresh = async () => {
    const mine = ++generation;
    const filters: FindingFilters = { status: status.value as FindingFilters['status'], severity: severity.value as FindingFilters['severity'], text: text.value };
    const found = await loadFindings(filters);
    // Known once the list has answered: no request of its own.
    const incidents = await detectIncidents();
    if (stopped || mine !== generation) return;
    heading.textContent = incidents ? 'Incidents' : 'Anomalies';
    note.textContent = incidents ? '' : 'This API serves no incidents: anomalies are listed instead.';
    const rows = found.map((f) => {
      const fresh = !first && !known.has(f.id);
      known.add(f.id);
      const link = `#/incidents/${encodeURIComponent(f.id)}`;
      return h(
        'tr',
        { class: fresh ? 'row-link fresh' : 'row-link', 'data-id': f.id, 'data-testid': 'incident-row', onclick: () => (location.hash = link) },
        h('td', {}, severityBadge(f.severity)),
        h('td', {}, h('span', { class: `status status-${f.status}` }, f.status)),
        h('td', {}, h('a', { href: link }, f.title)),
        h('td', { class: 'mono' }, `${f.actors.join(', ') || '–'} → ${f.targets.join(', ') || '–'}`),
        h('td', { class: 'nowrap' }, formatTime(f.first_seen)),
        h('td', { class: 'nowrap' }, formatTime(f.last_seen)),
      );
    });
    replaceChildren(body, ...rows);
    if (rows.length === 0) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'Nothing matches these filters.')));
    first = false;
    ctx.status(`${found.length} shown, updated ${formatTime(Date.now())}`);
  };

  const loop = () => {
    refresh()
      .catch((err: unknown) => ctx.status(`incidents: ${(err as Error).message}`, 'error'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, POLL_MS);
      });
  };
  const apply = () => {
    const params = new URLSearchParams();
    if (status.value) params.set('status', status.value);
    if (severity.value) params.set('severity', severity.value);
    if (text.value) params.set('q', text.value);
    history.replaceState(null, '', `#/incidents${params.size ? `?${params}` : ''}`);
    refresh().catch((err: unknown) => ctx.status(`incidents: ${(err as Error).message}`, 'error'));
  };
  status.addEventListener('change', apply);
  severity.addEventListener('change', apply);
  text.addEventListener('input', apply);
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
};

/** One incident. */
export const renderIncidentDetail: View = (root, ctx) => {
  const id = decodeURIComponent(ctx.path[1] ?? '');
  let stopChart: (() => void) | undefined;
  let stopped = false;

  const render = async () => {
    const { finding, members } = await loadFinding(id);
    if (stopped) return;
    const firstMs = Date.parse(finding.first_seen);
    const lastMs = Date.parse(finding.last_seen);
    const from = new Date(firstMs - CHART_LEAD_MS).toISOString();
    const to = new Date(Math.min(Date.now(), lastMs + CHART_TAIL_MS)).toISOString();
    const actorsIdentity = finding.actors[0];
    const targetsService = finding.targets[0];
    const accessParams = (extra: Record<string, string> = {}) => ({ identity: actorsIdentity, service: targetsService, from: finding.first_seen, to: new Date(lastMs + 60_000).toISOString(), ...extra });
    // A sample request is found by its id alone: detectors sample from their whole window, which
    // starts before the first anomalous evidence, and a destination's sample may come from a
    // caller other than the named actor. The range (an hour before, longer than any window) only
    // narrows the scan.
    const sampleParams = (rid: string) => ({ request_id: rid, highlight: rid, from: new Date(Date.parse(finding.first_seen) - 3_600_000).toISOString(), to: new Date(lastMs + 60_000).toISOString() });
    const samples = sampleRequestIds(members, finding);
    const chartBox = h('div', { class: 'chart', 'data-testid': 'incident-chart' });
    const detectors = [...new Set(members.map((m) => m.detector))];
    // The first member whose evidence has its own counter; plain requests only when none has.
    const counter: SeriesCounter = detectors.map((d) => COUNTER_OF[d]).find((c) => c !== undefined && c !== 'requests') ?? 'requests';

    replaceChildren(
      root,
      h('p', {}, h('a', { href: '#/incidents' }, '← all incidents')),
      h('div', { class: 'detail-head' }, severityBadge(finding.severity), h('span', { class: `status status-${finding.status}` }, finding.status), h('h2', { 'data-testid': 'incident-title' }, finding.title)),
      h(
        'div',
        { class: 'fields' },
        field('First evidence', formatTime(finding.first_seen)),
        field('Detected', formatTime(finding.detected_at)),
        field('Last seen', formatTime(finding.last_seen)),
        field('Actors', finding.actors.join(', ') || '–'),
        field('Targets', finding.targets.join(', ') || '–'),
        field('Id', h('span', { class: 'mono' }, finding.id)),
      ),
      h('div', { class: 'actions' }, h('a', { class: 'button', href: hashLink('access', accessParams()), 'data-testid': 'incident-requests' }, 'Requests in access history')),
      h('h3', {}, `Observed vs baseline: ${counter.replace('_', ' ')}`),
      chartBox,
      h('div', { class: 'columns' },
        h(
          'section',
          {},
          h('h3', {}, 'Timeline'),
          h(
            'ol',
            { class: 'timeline', 'data-testid': 'incident-timeline' },
            ...finding.timeline.map((t) => h('li', {}, h('span', { class: 'nowrap mono' }, formatTime(t.at)), ' ', severityBadge(t.severity), ' ', t.what)),
          ),
        ),
        h(
          'section',
          {},
          h('h3', {}, 'Sample requests'),
          samples.length === 0
            ? h('p', { class: 'muted' }, 'No sample requests in the evidence.')
            : h('ul', { class: 'samples', 'data-testid': 'incident-samples' }, ...samples.map((rid) => h('li', {}, h('a', { class: 'mono', href: hashLink('access', sampleParams(rid)), 'data-testid': 'incident-sample' }, rid)))),
        ),
      ),
      h('h3', {}, `Members (${members.length})`),
      h(
        'table',
        { class: 'grid', 'data-testid': 'incident-members' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Severity'), h('th', {}, 'Detector'), h('th', {}, 'Summary'), h('th', {}, 'Status'), h('th', {}, 'Evidence'))),
        h(
          'tbody',
          {},
          ...members.map((m) =>
            h(
              'tr',
              {},
              h('td', {}, severityBadge(m.severity)),
              h('td', { class: 'mono' }, m.detector),
              h('td', {}, m.summary),
              h('td', {}, m.status),
              h('td', {}, h('details', {}, h('summary', {}, 'show'), h('pre', {}, JSON.stringify(m.evidence, null, 2)))),
            ),
          ),
        ),
      ),
      h('h3', {}, 'Evidence'),
      h('pre', { class: 'evidence' }, JSON.stringify(finding.evidence, null, 2)),
    );

    const baseline = { baseline_from: new Date(firstMs - BASELINE_MS).toISOString(), baseline_to: finding.first_seen };
    const src = finding.actors.filter((a) => a.length > 0);
    const dst = finding.targets.filter((t) => t.length > 0);
    let series = await apiGet<Series>('/v1/graph/series', { from, to, src, dst, ...baseline });
    // Actors that are IPs or principals name no edge of the rollup: fall back to the targets alone.
    if (series.values[counter].every((v) => v === 0) && src.length > 0) series = await apiGet<Series>('/v1/graph/series', { from, to, dst, ...baseline });
    if (stopped) return;
    const base = series.baseline?.[counter] ?? 0;
    const chart = createLineChart(
      chartBox,
      [
        { label: `observed ${counter.replace('_', ' ')}`, color: themeColor(`--sev-${finding.severity}`) },
        { label: 'baseline (mean of the hour before)', color: themeColor('--muted'), dash: true },
      ],
      [series.times, series.values[counter], series.times.map(() => base)],
      { yLabel: `per ${series.step_seconds / 60} min` },
    );
    const stop = followWidth(chart, chartBox);
    chartBox.dataset.ready = 'true';
    stopChart = () => {
      stop();
      chart.destroy();
    };
  };
  render().catch((err: unknown) => {
    ctx.status(`incident: ${(err as Error).message}`, 'error');
    replaceChildren(root, h('p', {}, h('a', { href: '#/incidents' }, '← all incidents')), h('p', { class: 'error' }, (err as Error).message));
  });
  return () => {
    stopped = true;
    stopChart?.();
  };
};
