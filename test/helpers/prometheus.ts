// Real Prometheus, Alertmanager and a webhook receiver on loopback, for end-to-end alert tests.
// Binaries come from the Debian packages `prometheus` and `prometheus-alertmanager` (installed by
// scripts/deps/prometheus.sh); every server binds 127.0.0.1 on a port picked at run time, keeps
// its state in a temporary directory, and is stopped by `close()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { waitFor } from './wait.ts';

/** Re-exported for the alert tests, which poll Prometheus and Alertmanager with it. */
export { waitFor };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The project's alerting rule files, as Prometheus loads them. */
export const RULE_FILES = ['alerts/ztwatch-incidents.rules.yml', 'alerts/ztwatch-detectors.rules.yml', 'alerts/ztwatch-pipeline.rules.yml'].map((f) => join(ROOT, f));
/** The project's Alertmanager configuration. */
export const ALERTMANAGER_CONFIG = join(ROOT, 'alerts/alertmanager.yml');
/** Where every rule's `runbook_url` points, before its `#anchor`. */
export const RUNBOOKS_URL = 'https://github.com/ztwatch/ztwatch/blob/main/docs/runbooks.md';

/** Paths of the Prometheus tools found on PATH. */
export interface PrometheusTools {
  readonly prometheus: string;
  readonly promtool: string;
  readonly alertmanager: string;
  readonly amtool: string;
}

/** Finds the first of `names` on PATH, or undefined. */
export function findBinary(names: readonly string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not in this directory
      }
    }
  }
  return undefined;
}

/** Finds prometheus, promtool, alertmanager (Debian names it prometheus-alertmanager) and amtool. */
export function findPrometheusTools(): PrometheusTools {
  const found = {
    prometheus: findBinary(['prometheus']),
    promtool: findBinary(['promtool']),
    alertmanager: findBinary(['alertmanager', 'prometheus-alertmanager']),
    amtool: findBinary(['amtool']),
  };
  const missing = Object.entries(found).filter(([, path]) => path === undefined).map(([name]) => name);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')} on PATH: run scripts/deps/prometheus.sh (Debian packages prometheus, prometheus-alertmanager)`);
  }
  return found as PrometheusTools;
}

/** Outcome of one command run to completion. */
export interface ToolResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`) and returns its exit code and output. */
export function runTool(command: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Asks the kernel for a free loopback TCP port (released before returning, so a race is possible). */
export function pickFreePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}

/** A server process started for a test. */
export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** The last lines the process wrote (for failure messages). */
  logs(): string;
  /** Asks the process to reload its configuration (SIGHUP). */
  reload(): void;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  close(): Promise<void>;
}

const LOG_LIMIT_CHARS = 20_000;

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Spawns `command` with the port from `buildArgs(port)` and waits until `readyPath` answers 200. */
export async function startServer(
  name: string,
  command: string,
  buildArgs: (port: number) => string[],
  readyPath: string,
  timeoutMs: number,
): Promise<RunningServer> {
  let lastFailure = '';
  // A port picked free can be taken before the server binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await pickFreePort();
    const child = spawn(command, buildArgs(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const append = (chunk: string): void => {
      log = (log + chunk).slice(-LOG_LIMIT_CHARS);
    };
    child.stdout?.setEncoding('utf8').on('data', append);
    child.stderr?.setEncoding('utf8').on('data', append);
    let exited = false;
    child.once('exit', () => (exited = true));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`${name} exited early`);
          const res = await fetch(`${url}${readyPath}`);
          return res.status === 200 ? true : undefined;
        },
        { timeoutMs, intervalMs: 200, what: `${name} ready on ${url}`, details: () => log },
      );
      return { url, port, logs: () => log, reload: () => void child.kill('SIGHUP'), close: () => stopChild(child) };
    } catch (err) {
      await stopChild(child);
      lastFailure = err instanceof Error ? err.message : String(err);
      if (!/address already in use/i.test(log)) break;
    }
  }
  throw new Error(`${name} did not start: ${lastFailure}`);
}

/** Options of `startPrometheus`. */
export interface PrometheusOptions {
  /** Empty directory for the config and the TSDB. */
  readonly dir: string;
  /** Rule files to load (absolute paths). */
  readonly ruleFiles: readonly string[];
  /** `host:port` targets serving /metrics. */
  readonly scrapeTargets: readonly string[];
  /** Scrape job name; ZtwatchTargetDown only looks at jobs named `ztwatch*`. @default 'ztwatch' */
  readonly jobName?: string;
  /** `host:port` of the Alertmanager to notify. */
  readonly alertmanager: string;
  /** Scrape and rule evaluation interval, in seconds. @default 1 */
  readonly intervalSeconds?: number;
  /** @default 60000 */
  readonly startTimeoutMs?: number;
}

/**
 * Starts a real Prometheus on 127.0.0.1 scraping `scrapeTargets`, evaluating `ruleFiles`, notifying
 * `alertmanager`. The rules are loaded (by SIGHUP reload) only once every target has been scraped:
 * test copies shorten `for:` to seconds, and rules built on absent() would otherwise fire in the
 * moment between start and first scrape, which a production `for:` of minutes rides out.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<RunningServer> {
  const tools = findPrometheusTools();
  const interval = `${options.intervalSeconds ?? 1}s`;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const buildConfig = (ruleFiles: readonly string[]): string =>
    stringifyYaml({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: [...ruleFiles],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [options.alertmanager] }] }] },
      scrape_configs: [{ job_name: options.jobName ?? 'ztwatch', static_configs: [{ targets: [...options.scrapeTargets] }] }],
    });
  await mkdir(join(options.dir, 'data'), { recursive: true });
  const configFile = join(options.dir, 'prometheus.yml');
  await writeFile(configFile, buildConfig([]));
  const server = await startServer(
    'prometheus',
    tools.prometheus,
    (port) => [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(options.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Prometheus re-sends a firing alert only every minute by default; tests need seconds.
      '--rules.alert.resend-delay=1s',
      '--log.level=warn',
    ],
    '/-/ready',
    timeoutMs,
  );
  try {
    await waitFor(
      async () => {
        const body = (await (await fetch(`${server.url}/api/v1/targets`)).json()) as { data?: { activeTargets?: { health: string }[] } };
        const targets = body.data?.activeTargets ?? [];
        return targets.length === options.scrapeTargets.length && targets.every((t) => t.health === 'up') ? true : undefined;
      },
      { timeoutMs, what: 'every scrape target up', details: server.logs },
    );
    if (options.ruleFiles.length > 0) {
      await writeFile(configFile, buildConfig(options.ruleFiles));
      server.reload();
      await waitFor(
        async () => {
          const body = (await (await fetch(`${server.url}/api/v1/rules`)).json()) as { data?: { groups?: unknown[] } };
          return (body.data?.groups?.length ?? 0) > 0 ? true : undefined;
        },
        { timeoutMs, what: 'rule files loaded', details: server.logs },
      );
    }
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

/** Options of `startAlertmanager`. */
export interface AlertmanagerOptions {
  /** Empty directory for the notification log and silences. */
  readonly dir: string;
  /** alertmanager.yml to load. */
  readonly configFile: string;
  /** @default 60000 */
  readonly startTimeoutMs?: number;
}

/** Starts a real Alertmanager on 127.0.0.1 with clustering disabled. */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<RunningServer> {
  const tools = findPrometheusTools();
  await mkdir(join(options.dir, 'data'), { recursive: true });
  return startServer(
    'alertmanager',
    tools.alertmanager,
    (port) => [
      `--config.file=${options.configFile}`,
      `--storage.path=${join(options.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // An empty cluster address turns gossip off; otherwise it binds 0.0.0.0:9094.
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    '/-/ready',
    options.startTimeoutMs ?? 60_000,
  );
}

type YamlMap = Record<string, unknown>;

function isMap(value: unknown): value is YamlMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Writes copies of `ruleFiles` into `dir` with every `for:` set to `forDuration`, so a test sees
 * alerts fire in seconds. Expressions, labels and annotations stay exactly as shipped.
 */
export async function writeTestRuleFiles(ruleFiles: readonly string[], dir: string, forDuration: string): Promise<string[]> {
  const written: string[] = [];
  for (const file of ruleFiles) {
    const doc: unknown = parseYaml(await readFile(file, 'utf8'));
    const groups = isMap(doc) && Array.isArray(doc.groups) ? doc.groups : [];
    for (const group of groups) {
      const rules = isMap(group) && Array.isArray(group.rules) ? group.rules : [];
      for (const rule of rules) {
        if (isMap(rule) && 'for' in rule) rule.for = forDuration;
      }
    }
    const target = join(dir, basename(file));
    await writeFile(target, stringifyYaml(doc));
    written.push(target);
  }
  return written;
}

/** Timings applied to every route of a test copy of alertmanager.yml. */
export interface AlertmanagerTestTimings {
  /** Keep it longer than the test rules' `for:` (see alerts/alertmanager.yml). @default '4s' */
  readonly groupWait?: string;
  /** @default '1s' */
  readonly groupInterval?: string;
  /** @default '1h' */
  readonly repeatInterval?: string;
}

/**
 * Writes a copy of `configFile` into `dir` where every webhook posts to `webhookUrl` and every route
 * waits seconds instead of minutes. Routing, grouping, inhibition and receivers stay as shipped.
 */
export async function writeTestAlertmanagerConfig(
  configFile: string,
  dir: string,
  webhookUrl: string,
  timings: AlertmanagerTestTimings = {},
): Promise<string> {
  const doc: unknown = parseYaml(await readFile(configFile, 'utf8'));
  if (!isMap(doc)) throw new Error(`${configFile} is not a YAML mapping`);
  const receivers = Array.isArray(doc.receivers) ? doc.receivers : [];
  for (const receiver of receivers) {
    const hooks = isMap(receiver) && Array.isArray(receiver.webhook_configs) ? receiver.webhook_configs : [];
    for (const hook of hooks) if (isMap(hook)) hook.url = webhookUrl;
  }
  const shorten = (route: unknown, top: boolean): void => {
    if (!isMap(route)) return;
    if (top || 'group_wait' in route) route.group_wait = timings.groupWait ?? '4s';
    if (top || 'group_interval' in route) route.group_interval = timings.groupInterval ?? '1s';
    if (top || 'repeat_interval' in route) route.repeat_interval = timings.repeatInterval ?? '1h';
    if (Array.isArray(route.routes)) for (const child of route.routes) shorten(child, false);
  };
  shorten(doc.route, true);
  const target = join(dir, basename(configFile));
  await writeFile(target, stringifyYaml(doc));
  return target;
}

/** One alert inside an Alertmanager webhook notification. */
export interface NotifiedAlert {
  readonly status: 'firing' | 'resolved';
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly fingerprint: string;
}

/** The body Alertmanager posts to a webhook (version 4). */
export interface AlertmanagerNotification {
  readonly receiver: string;
  readonly status: 'firing' | 'resolved';
  readonly alerts: readonly NotifiedAlert[];
  readonly groupLabels: Record<string, string>;
  readonly commonLabels: Record<string, string>;
}

/** A delivered alert together with the receiver (route) it came through. */
export interface ReceivedAlert extends NotifiedAlert {
  readonly receiver: string;
}

/** An HTTP server recording Alertmanager webhook notifications. */
export interface WebhookReceiver {
  readonly url: string;
  readonly notifications: readonly AlertmanagerNotification[];
  /** Every alert delivered so far, flattened, in arrival order. */
  alerts(): ReceivedAlert[];
  /** Waits until an alert matching `predicate` has been delivered and returns it. */
  waitForAlert(predicate: (alert: ReceivedAlert) => boolean, timeoutMs: number, what: string): Promise<ReceivedAlert>;
  close(): Promise<void>;
}

function isNotification(value: unknown): value is AlertmanagerNotification {
  return isMap(value) && typeof value.receiver === 'string' && typeof value.status === 'string' && Array.isArray(value.alerts);
}

/** Starts a webhook receiver on 127.0.0.1 (port picked by the kernel) at path /alerts. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const notifications: AlertmanagerNotification[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (req.method === 'POST' && isNotification(body)) {
          notifications.push(body);
          res.writeHead(200).end();
          return;
        }
      } catch {
        // fall through to 400
      }
      res.writeHead(400).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const alerts = (): ReceivedAlert[] => notifications.flatMap((n) => n.alerts.map((a) => ({ ...a, receiver: n.receiver })));
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    notifications,
    alerts,
    waitForAlert: (predicate, timeoutMs, what) =>
      waitFor(() => alerts().find(predicate), {
        timeoutMs,
        what,
        details: () => `received so far: ${JSON.stringify(alerts().map((a) => ({ receiver: a.receiver, status: a.status, labels: a.labels })))}`,
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** An alert as Alertmanager's API v2 lists it. */
export interface AlertmanagerApiAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly status: { readonly state: string; readonly inhibitedBy: readonly string[]; readonly silencedBy: readonly string[] };
  readonly fingerprint: string;
}

/** Lists the alerts Alertmanager holds (active, inhibited and silenced). */
export async function listAlertmanagerAlerts(alertmanagerUrl: string): Promise<AlertmanagerApiAlert[]> {
  const res = await fetch(`${alertmanagerUrl}/api/v2/alerts`);
  if (!res.ok) throw new Error(`alertmanager /api/v2/alerts answered ${res.status}`);
  const body: unknown = await res.json();
  if (!Array.isArray(body)) throw new Error('alertmanager /api/v2/alerts did not return a list');
  return body as AlertmanagerApiAlert[];
}
