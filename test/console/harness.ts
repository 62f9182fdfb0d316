// A real ztwatch for the console's browser tests, screenshots and benchmark: every role in one
// process on the embedded in-memory store, fed the demo scenario (40 minutes of mesh history
// ending now, with its policy misconfiguration and expired certificate in the last minutes), and a
// headless Debian chromium driven by playwright-core with a fresh profile.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { MemoryBus } from '../../bus/memory.ts';
import { startRuntime, ROLES, type Runtime } from '../../cli/runtime.ts';
import { buildConfig, type ApiRole } from '../../core/config.ts';
import { createDemoScenario, groupByFormat, type Scenario } from '../../ingest/simulate/index.ts';
// Not test/helpers/store.ts: that one registers vitest hooks, and the benchmark and the
// screenshot script run this harness outside vitest.
export { waitFor } from '../helpers/wait.ts';

/** The browser every console test drives (scripts/deps/chromium.sh installs it). */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** One plaintext token per role, valid for the harness's process only. */
export const TOKENS: Readonly<Record<Exclude<ApiRole, 'ingest'>, string>> = {
  admin: 'console-test-admin-token',
  analyst: 'console-test-analyst-token',
  auditor: 'console-test-auditor-token',
};

const MINUTE_MS = 60_000;

export interface ConsoleRuntime {
  readonly runtime: Runtime;
  readonly url: string;
  readonly scenario: Scenario;
  /** Event time where the scenario's attacks start (first at +60 s). */
  readonly attackStartMs: number;
  close(): Promise<void>;
}

/**
 * Starts ztwatch and feeds `historyMinutes` of demo traffic ending now; the attacks begin
 * `attackLeadMinutes` before now so they are in the stored history and the detectors see them.
 */
export async function startConsoleRuntime(options: { historyMinutes?: number; attackLeadMinutes?: number; seed?: number } = {}): Promise<ConsoleRuntime> {
  const historyMinutes = options.historyMinutes ?? 40;
  const attackLeadMinutes = options.attackLeadMinutes ?? 8;
  const config = buildConfig({
    dataDir: ':memory:',
    clickhouse: { database: `t_${randomBytes(6).toString('hex')}` },
    http: { port: 0, host: '127.0.0.1' },
    log: { level: 'silent' },
    detectors: { intervalSeconds: 1 },
  });
  const runtime = await startRuntime({
    config,
    roles: new Set(ROLES),
    extraTokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `console-${role}`, role: role as ApiRole, token })),
    log: () => undefined,
  });
  try {
    const nowMs = Date.now();
    const attackStartMs = nowMs - attackLeadMinutes * MINUTE_MS;
    const scenario = createDemoScenario({ seed: options.seed ?? 7, startMs: attackStartMs });
    const ingestor = runtime.ingestor;
    if (!ingestor) throw new Error('runtime has no collector role');
    for (let stepMs = nowMs - historyMinutes * MINUTE_MS; stepMs < nowMs; stepMs += 5 * MINUTE_MS) {
      const lines = scenario.generate(stepMs, Math.min(nowMs, stepMs + 5 * MINUTE_MS));
      for (const [format, records] of groupByFormat(lines)) {
        for (let i = 0; i < records.length; i += 5000) await ingestor.ingest(format, records.slice(i, i + 5000));
      }
    }
    if (runtime.bus instanceof MemoryBus) await runtime.bus.whenIdle();
    return {
      runtime,
      url: runtime.url,
      scenario,
      attackStartMs,
      close: () => runtime.close(),
    };
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/** GETs JSON from the runtime with a role's token. */
export async function getJson<T>(url: string, token: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

export interface ConsoleBrowser {
  readonly context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Headless chromium with a fresh profile directory, removed on close. */
export async function launchBrowser(options: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<ConsoleBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'ztwatch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: options.width ?? 1440, height: options.height ?? 900 },
    colorScheme: options.colorScheme ?? 'light',
    timezoneId: 'UTC',
  });
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Opens the console and signs in with `token`; resolves once the first page is shown. */
export async function signIn(page: Page, baseUrl: string, token: string, hash = ''): Promise<void> {
  await page.goto(`${baseUrl}/${hash}`);
  await page.getByTestId('login-token').fill(token);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('who').waitFor();
}
