// Access history page: the API's filters, cursor pagination and streamed CSV/NDJSON export. Every
// query here is written to the audit log by the API under the logged-in token's name.
import { apiFetch, apiGet, type Params } from './api.ts';
import { formatTime, h, replaceChildren } from './dom.ts';
import type { AccessItem, AccessPage } from './types.ts';
import { fromInputTime, toInputTime, type View } from './view.ts';

const TEXT_FILTERS = [
  ['identity', 'Identity (exact)'],
  ['identity_prefix', 'Identity starts with'],
  ['service', 'Service'],
  ['namespace', 'Namespace'],
  ['method', 'Method'],
  ['path_prefix', 'Path starts with'],
  ['status', 'Status'],
  ['request_id', 'Request id'],
] as const;
const DECISIONS = ['', 'allow', 'deny', 'error'];
const PAGE_SIZES = [50, 100, 500];
const COLUMNS: ReadonlyArray<[keyof AccessItem & string, string]> = [
  ['time', 'Time (UTC)'],
  ['decision', 'Decision'],
  ['src_identity', 'Source identity'],
  ['dst_service', 'Service'],
  ['method', 'Method'],
  ['path', 'Path'],
  ['status', 'Status'],
  ['decision_reason', 'Reason'],
  ['mtls', 'mTLS'],
  ['tls_failure', 'TLS failure'],
];
const EXPORT_ROLES = new Set(['auditor', 'admin']);
/** Range shown when the page opens without filters, in ms. */
const DEFAULT_RANGE_MS = 3_600_000;

/** The export's file name from Content-Disposition, or a default. */
function readFilename(res: Response, format: string): string {
  const m = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '');
  return m?.[1] ?? `ztwatch-access.${format}`;
}

export const renderAccess: View = (root, ctx) => {
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const form = h('form', { class: 'filters', 'data-testid': 'access-filters' });
  for (const [name, label] of TEXT_FILTERS) {
    const input = h('input', { name, type: name === 'status' ? 'number' : 'text', value: ctx.query.get(name) ?? '', 'aria-label': label, 'data-testid': `filter-${name}` });
    inputs.set(name, input);
    form.append(h('label', {}, h('span', {}, label), input));
  }
  const decision = h('select', { name: 'decision', 'aria-label': 'Decision', 'data-testid': 'filter-decision' }, ...DECISIONS.map((d) => h('option', { value: d }, d || 'any')));
  decision.value = ctx.query.get('decision') ?? '';
  inputs.set('decision', decision);
  // Opened without filters, the page starts with the last hour (shown, and cleared by Clear): the
  // newest rows of all history is the one query the store cannot narrow down.
  const fromDefault = [...ctx.query.keys()].length === 0 ? Date.now() - DEFAULT_RANGE_MS : undefined;
  const fromQuery = ctx.query.get('from') ?? fromDefault;
  const from = h('input', { type: 'datetime-local', name: 'from', 'aria-label': 'From (UTC)', 'data-testid': 'filter-from', value: fromQuery !== undefined ? toInputTime(fromQuery) : '' });
  const to = h('input', { type: 'datetime-local', name: 'to', 'aria-label': 'To (UTC)', 'data-testid': 'filter-to', value: ctx.query.get('to') ? toInputTime(ctx.query.get('to') as string) : '' });
  const limit = h('select', { 'aria-label': 'Rows per page' }, ...PAGE_SIZES.map((n) => h('option', { value: n }, `${n} rows`)));
  limit.value = ctx.query.get('limit') ?? '100';
  form.append(h('label', {}, h('span', {}, 'Decision'), decision), h('label', {}, h('span', {}, 'From (UTC)'), from), h('label', {}, h('span', {}, 'To (UTC)'), to), h('label', {}, h('span', {}, 'Page'), limit));
  form.append(h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'access-search' }, 'Search'), h('button', { type: 'reset', 'data-testid': 'access-reset' }, 'Clear')));

  const canExport = EXPORT_ROLES.has(ctx.session.role);
  const exportFormat = h('select', { 'aria-label': 'Export format', 'data-testid': 'export-format' }, h('option', { value: 'csv' }, 'CSV'), h('option', { value: 'ndjson' }, 'NDJSON'));
  const exportButton = h('button', { type: 'button', 'data-testid': 'export', disabled: !canExport, title: canExport ? 'Every matching row, streamed' : 'Export needs the auditor or admin role' }, 'Export');
  const exportStatus = h('span', { class: 'muted', 'data-testid': 'export-status' });
  const countButton = h('button', { type: 'button', 'data-testid': 'access-count' }, 'Count matches');
  const prev = h('button', { type: 'button', 'data-testid': 'page-prev', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', 'data-testid': 'page-next', disabled: true }, 'Older →');
  const pageInfo = h('span', { class: 'muted', 'data-testid': 'page-info' });
  const body = h('tbody', { 'data-testid': 'access-rows' });
  const highlight = ctx.query.get('highlight') ?? '';

  root.append(
    h('h2', {}, 'Access history'),
    form,
    h('div', { class: 'toolbar' }, prev, next, pageInfo, countButton, h('span', { class: 'spacer' }), exportFormat, exportButton, exportStatus),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid access' }, h('thead', {}, h('tr', {}, ...COLUMNS.map(([, label]) => h('th', {}, label)))), body)),
  );

  const readFilters = (): Params => {
    const params: Params = {};
    for (const [name, input] of inputs) if (input.value.trim()) params[name] = input.value.trim();
    params.from = fromInputTime(from.value);
    params.to = fromInputTime(to.value);
    return params;
  };

  /** Cursors of the pages before the current one; the current page's cursor is last. */
  let cursors: Array<string | null> = [null];
  let nextCursor: string | null = null;
  let stopped = false;
  /** Only the newest request's answer is shown (a slow earlier page must not overwrite it). */
  let generation = 0;

  const renderRows = (items: readonly AccessItem[]) => {
    const rows = items.map((item) => {
      const detail = h('tr', { class: 'row-detail', hidden: true }, h('td', { colspan: COLUMNS.length }, h('pre', {}, JSON.stringify(item, null, 2))));
      const row = h(
        'tr',
        {
          class: `row-link decision-${item.decision}${highlight && item.request_id === highlight ? ' highlight' : ''}`,
          'data-testid': 'access-row',
          'data-event-id': item.event_id,
          'data-request-id': item.request_id,
          onclick: () => (detail.hidden = !detail.hidden),
        },
        ...COLUMNS.map(([key]) => {
          const value = item[key];
          return h('td', { class: key === 'time' ? 'nowrap mono' : key === 'path' || key === 'src_identity' ? 'mono' : '' }, key === 'time' ? formatTime(String(value)) : Array.isArray(value) ? value.join(',') : String(value ?? ''));
        }),
      );
      return [row, detail];
    });
    replaceChildren(body, ...rows.flat());
    if (items.length === 0) body.append(h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No requests match these filters.')));
  };

  const loadPage = async () => {
    const mine = ++generation;
    const cursor = cursors[cursors.length - 1] ?? undefined;
    pageInfo.textContent = 'loading…';
    const page = await apiGet<AccessPage>('/v1/access', { ...readFilters(), limit: Number(limit.value), cursor });
    if (stopped || mine !== generation) return;
    renderRows(page.items);
    nextCursor = page.next_cursor;
    next.disabled = nextCursor === null;
    prev.disabled = cursors.length <= 1;
    pageInfo.textContent = `page ${cursors.length}, ${page.items.length} rows`;
    ctx.status('');
  };
  const run = (fn: () => Promise<void>) => fn().catch((err: unknown) => ctx.status(`access: ${(err as Error).message}`, 'error'));

  const search = () => {
    cursors = [null];
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(readFilters())) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    if (limit.value !== '100') params.set('limit', limit.value);
    history.replaceState(null, '', `#/access${params.size ? `?${params}` : ''}`);
    void run(loadPage);
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  form.addEventListener('reset', () => setTimeout(search, 0));
  limit.addEventListener('change', search);
  next.addEventListener('click', () => {
    if (nextCursor === null) return;
    cursors.push(nextCursor);
    void run(loadPage);
  });
  prev.addEventListener('click', () => {
    if (cursors.length <= 1) return;
    cursors.pop();
    void run(loadPage);
  });
  countButton.addEventListener('click', () =>
    void run(async () => {
      const page = await apiGet<AccessPage>('/v1/access', { ...readFilters(), limit: 1, include_count: true });
      countButton.textContent = `${page.count ?? 0} matches`;
    }),
  );
  exportButton.addEventListener('click', () =>
    void run(async () => {
      exportButton.disabled = true;
      exportStatus.textContent = 'exporting…';
      try {
        const format = exportFormat.value;
        const res = await apiFetch('/v1/access/export', { ...readFilters(), format });
        const blob = await res.blob();
        const lines = (await blob.text()).split('\n').filter((l) => l.trim().length > 0).length;
        const rows = format === 'csv' ? Math.max(0, lines - 1) : lines;
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: readFilename(res, format), 'data-testid': 'export-link' }, 'save again');
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        exportStatus.textContent = `${rows} rows exported (${format.toUpperCase()})`;
        exportStatus.dataset.rows = String(rows);
      } finally {
        exportButton.disabled = !canExport;
      }
    }),
  );
  void run(loadPage);
  return () => {
    stopped = true;
  };
};
