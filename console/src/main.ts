// The console's entry point: the login page, the navigation the token's role allows, and a hash
// router that mounts one page at a time. Without a valid token only the login page exists.
import './style.css';
import { ApiError, checkToken, clearToken, readToken, setUnauthenticatedHandler, storeToken, type Role, type Session } from './api.ts';
import { renderAccess } from './access.ts';
import { h, replaceChildren } from './dom.ts';
import { renderGraph } from './graph.ts';
import { renderHealth } from './health.ts';
import { renderIncidentDetail, renderIncidentList } from './incidents.ts';
import { renderPosture } from './posture.ts';
import type { View, ViewContext } from './view.ts';

interface Page {
  readonly title: string;
  readonly roles: readonly Role[];
  readonly view: (path: readonly string[]) => View;
}

/** Each page with the roles whose token may use its API calls (as the API enforces them). */
const PAGES: Record<string, Page> = {
  graph: { title: 'Service graph', roles: ['analyst', 'admin'], view: () => renderGraph },
  incidents: { title: 'Incidents', roles: ['analyst', 'admin'], view: (path) => (path[1] ? renderIncidentDetail : renderIncidentList) },
  access: { title: 'Access history', roles: ['analyst', 'auditor', 'admin'], view: () => renderAccess },
  posture: { title: 'Posture', roles: ['analyst', 'admin'], view: () => renderPosture },
  health: { title: 'Pipeline health', roles: ['ingest', 'analyst', 'auditor', 'admin'], view: () => renderHealth },
};
const THEME_KEY = 'ztwatch.theme';

const app = document.getElementById('app') as HTMLElement;
let session: Session | null = null;
let unmount: (() => void) | void = undefined;

function applyTheme(theme: string | null): void {
  document.documentElement.dataset.theme = theme === 'light' || theme === 'dark' ? theme : '';
}
applyTheme(localStorage.getItem(THEME_KEY));

function stopPage(): void {
  if (typeof unmount === 'function') unmount();
  unmount = undefined;
}

function renderLogin(message = ''): void {
  stopPage();
  session = null;
  document.title = 'ztwatch console — sign in';
  const token = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, 'aria-label': 'API token', 'data-testid': 'login-token' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'login-error' }, message);
  const form = h(
    'form',
    { class: 'login-card', 'data-testid': 'login-form' },
    h('h1', {}, 'ztwatch'),
    h('p', { class: 'muted' }, 'Sign in with an API token (see ', h('code', {}, 'ztwatch token'), '; the demo prints one). It is kept in this tab only.'),
    h('label', { for: 'token' }, 'API token'),
    token,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, 'Sign in'),
    error,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.textContent = '';
    const value = token.value.trim();
    checkToken(value)
      .then((who) => {
        storeToken(value);
        session = who;
        const first = Object.entries(PAGES).find(([, p]) => p.roles.includes(who.role))?.[0] ?? 'health';
        const wanted = location.hash.slice(2).split(/[/?]/)[0] ?? '';
        if (!PAGES[wanted]?.roles.includes(who.role)) location.hash = `#/${first}`;
        route();
      })
      .catch((err: unknown) => {
        error.textContent = err instanceof ApiError && err.status === 401 ? 'This token is not valid here.' : `Sign-in failed: ${(err as Error).message}`;
      });
  });
  replaceChildren(app, h('main', { class: 'login', 'data-testid': 'login-page' }, form));
  token.focus();
}

function renderShell(current: string): { main: HTMLElement; status: ViewContext['status'] } {
  const who = session as Session;
  const status = h('span', { class: 'status-line', 'data-testid': 'status-line', role: 'status' });
  const nav = h(
    'nav',
    { 'aria-label': 'Pages' },
    ...Object.entries(PAGES)
      .filter(([, p]) => p.roles.includes(who.role))
      .map(([key, p]) => h('a', { href: `#/${key}`, class: key === current ? 'active' : '', 'data-testid': `nav-${key}`, 'aria-current': key === current ? 'page' : undefined }, p.title)),
  );
  const theme = h('button', { type: 'button', class: 'ghost', title: 'Light / dark', 'aria-label': 'Toggle theme' }, '◐');
  theme.addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'light' ? 'dark' : document.documentElement.dataset.theme === 'dark' ? 'light' : matchMedia('(prefers-color-scheme: dark)').matches ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    route();
  });
  const logout = h('button', { type: 'button', class: 'ghost', 'data-testid': 'logout' }, 'Sign out');
  logout.addEventListener('click', () => {
    clearToken();
    location.hash = '';
    renderLogin();
  });
  const main = h('main', { class: `page page-${current}`, 'data-testid': `page-${current}` });
  replaceChildren(
    app,
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'ztwatch'), nav, status, h('span', { class: 'who', 'data-testid': 'who' }, `${who.name} · ${who.role}`), theme, logout),
    main,
  );
  return {
    main,
    status: (text, kind = 'info') => {
      status.textContent = text;
      status.className = `status-line ${kind}`;
    },
  };
}

function route(): void {
  if (!session) {
    renderLogin();
    return;
  }
  stopPage();
  const [pathText = '', queryText = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const path = pathText.split('/').filter(Boolean);
  let key = path[0] ?? '';
  const allowed = Object.entries(PAGES).filter(([, p]) => p.roles.includes((session as Session).role));
  if (!PAGES[key]?.roles.includes(session.role)) {
    key = allowed[0]?.[0] ?? 'health';
    history.replaceState(null, '', `#/${key}`);
  }
  const page = PAGES[key] as Page;
  document.title = `${page.title} — ztwatch`;
  const shell = renderShell(key);
  unmount = page.view(path)(shell.main, { session, path, query: new URLSearchParams(queryText), status: shell.status });
}

setUnauthenticatedHandler((message) => {
  clearToken();
  renderLogin(`Signed out: ${message}`);
});
window.addEventListener('hashchange', route);

const saved = readToken();
if (saved) {
  checkToken(saved)
    .then((who) => {
      session = who;
      route();
    })
    .catch(() => {
      clearToken();
      renderLogin();
    });
} else renderLogin();
