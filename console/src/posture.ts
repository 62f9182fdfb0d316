// Posture page: STRICT mTLS readiness per namespace, service and port over a look-back window
// (GET /v1/posture/mtls): the mTLS share, the plaintext senders left, a verdict, and the
// PeerAuthentication manifests for what is ready.
import { apiGet } from './api.ts';
import { field, formatCount, formatPercent, formatTime, h, replaceChildren } from './dom.ts';
import type { View } from './view.ts';

interface Sender {
  sender: string;
  requests: number;
  lastSeen: string;
}

interface PortReadiness {
  namespace: string;
  service: string;
  port: number;
  mtlsRequests: number;
  plaintextRequests: number;
  unknownRequests: number;
  mtlsShare: number | null;
  verdict: 'ready' | 'blocked' | 'no-data';
  summary: string;
  senders: Sender[];
}

interface MtlsReport {
  from: string;
  to: string;
  ports: PortReadiness[];
  manifest: string;
  ready: number;
  blocked: number;
}

const WINDOWS = ['24h', '7d', '30d'];

export const renderPosture: View = (root, ctx) => {
  const windowSelect = h('select', { 'aria-label': 'Window', 'data-testid': 'posture-window' }, ...WINDOWS.map((w) => h('option', { value: w }, `last ${w}`)));
  windowSelect.value = ctx.query.get('window') ?? '7d';
  const namespace = h('input', { type: 'search', placeholder: 'namespace', 'aria-label': 'Namespace', value: ctx.query.get('namespace') ?? '' });
  const summary = h('div', { class: 'cards', 'data-testid': 'posture-summary' });
  const body = h('tbody', { 'data-testid': 'posture-rows' });
  const manifest = h('pre', { class: 'evidence', 'data-testid': 'posture-manifest' });
  root.append(
    h('div', { class: 'toolbar' }, h('h2', {}, 'STRICT mTLS readiness'), h('label', {}, 'Window ', windowSelect), namespace),
    summary,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Verdict'), h('th', {}, 'Namespace'), h('th', {}, 'Service'), h('th', {}, 'Port'), h('th', {}, 'mTLS share'), h('th', {}, 'Plaintext'), h('th', {}, 'Why'), h('th', {}, 'Plaintext senders'))),
        body,
      ),
    ),
    h('h3', {}, 'PeerAuthentication for what is ready'),
    manifest,
  );
  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    const report = await apiGet<MtlsReport>('/v1/posture/mtls', { window: windowSelect.value, namespace: namespace.value.trim() || undefined });
    if (mine !== generation) return;
    replaceChildren(
      summary,
      field('Ready for STRICT', String(report.ready)),
      field('Blocked', String(report.blocked)),
      field('Ports', String(report.ports.length)),
      field('Window', `${formatTime(report.from)} – ${formatTime(report.to)}`),
    );
    replaceChildren(
      body,
      ...report.ports.map((p) =>
        h(
          'tr',
          { 'data-testid': 'posture-row', 'data-verdict': p.verdict },
          h('td', {}, h('span', { class: `verdict verdict-${p.verdict}` }, p.verdict)),
          h('td', {}, p.namespace),
          h('td', {}, p.service),
          h('td', { class: 'num' }, p.port),
          h('td', { class: 'num' }, p.mtlsShare === null ? '–' : formatPercent(p.mtlsShare)),
          h('td', { class: 'num' }, formatCount(p.plaintextRequests)),
          h('td', {}, p.summary),
          h('td', { class: 'mono' }, p.senders.length === 0 ? '–' : h('details', {}, h('summary', {}, `${p.senders.length} sender${p.senders.length === 1 ? '' : 's'}`), ...p.senders.map((s) => h('div', {}, `${s.sender} (${formatCount(s.requests)}, last ${formatTime(s.lastSeen)})`)))),
        ),
      ),
    );
    if (report.ports.length === 0) body.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No traffic in this window.')));
    manifest.textContent = report.manifest || '# nothing is ready for STRICT yet';
    ctx.status('');
  };
  const reload = () => void load().catch((err: unknown) => ctx.status(`posture: ${(err as Error).message}`, 'error'));
  windowSelect.addEventListener('change', reload);
  namespace.addEventListener('change', reload);
  reload();
  return () => {
    generation++;
  };
};
