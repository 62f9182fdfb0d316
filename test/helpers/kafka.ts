// Test helper: a real Apache Kafka broker (scripts/kafka.sh) shared by every Kafka test file, plus
// private brokers for tests that kill one. The shared broker is started when not running and
// stopped by the last test file that leaves, and only when a test started it (a broker a developer
// started stays up). `KAFKA_BROKERS` in the environment points the tests at an existing cluster.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildConfig, type FrozenConfig } from '../../core/config.ts';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/kafka.sh');
/** Port of the shared test broker; its controller listens on the next one. */
const SHARED_PORT = Number(process.env.KAFKA_TEST_PORT ?? 19092);
const START_TIMEOUT_MS = 150_000;

export interface KafkaBroker {
  /** Bootstrap list, e.g. ['127.0.0.1:19092']. */
  readonly brokers: string[];
  readonly port: number;
  /** State directory of a broker the tests run (undefined for an external cluster). */
  readonly dir: string | undefined;
  /** Stops the broker if the tests started it and nobody else still uses it. */
  release(): Promise<void>;
}

/** Runs scripts/kafka.sh and returns its output; rejects with the output when it fails. */
export async function runKafkaScript(args: string[], timeoutMs = START_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', [SCRIPT, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`scripts/kafka.sh ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A directory lock (mkdir is atomic); stale after two minutes. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, 'tests.lock');
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // Removed by its owner meanwhile.
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function liveLeases(dir: string): string[] {
  const leases = join(dir, 'leases');
  if (!existsSync(leases)) return [];
  const alive: string[] = [];
  for (const name of readdirSync(leases)) {
    if (isAlive(Number(name))) alive.push(name);
    else rmSync(join(leases, name), { force: true });
  }
  return alive;
}

/** The shared test broker: started if needed, leased by this process until `release()`. */
export async function ensureKafka(): Promise<KafkaBroker> {
  const external = process.env.KAFKA_BROKERS;
  if (external) {
    return { brokers: external.split(',').map((b) => b.trim()).filter(Boolean), port: 0, dir: undefined, release: async () => undefined };
  }
  const port = SHARED_PORT;
  const dir = join(ROOT, '.cache/kafka', `run-${port}`);
  mkdirSync(join(dir, 'leases'), { recursive: true });
  const marker = join(dir, 'started-by-tests');
  await withLock(dir, async () => {
    let running = true;
    try {
      await runKafkaScript(['status', '--port', String(port)], 15_000);
    } catch {
      running = false;
    }
    if (!running) {
      await runKafkaScript(['start', '--port', String(port)]);
      writeFileSync(marker, `${process.pid}\n`);
    } else {
      // Running but maybe still starting: `start` waits until it accepts connections.
      await runKafkaScript(['start', '--port', String(port)]);
    }
    writeFileSync(join(dir, 'leases', String(process.pid)), '');
  });
  let released = false;
  return {
    brokers: [`127.0.0.1:${port}`],
    port,
    dir,
    async release() {
      if (released) return;
      released = true;
      await withLock(dir, async () => {
        rmSync(join(dir, 'leases', String(process.pid)), { force: true });
        if (!existsSync(marker) || liveLeases(dir).length > 0) return;
        await runKafkaScript(['stop', '--port', String(port)], 60_000);
        rmSync(marker, { force: true });
        // A broker the tests started leaves nothing behind: its topics were for these runs only.
        rmSync(join(dir, 'data'), { recursive: true, force: true });
      });
    },
  };
}

/** A free TCP port on loopback whose successor is free too (the controller listens there). */
export async function findFreePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(0);
    if (port < 65_000 && (await listenOnce(port + 1).then(() => true, () => false))) return port;
  }
  throw new Error('no free port pair on 127.0.0.1');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolvePort(bound));
    });
  });
}

/** A broker of this test alone (for tests that stop or kill it), in a temp dir; `release()` stops and removes it. */
export async function startPrivateKafka(): Promise<KafkaBroker & { stop(): Promise<void>; kill(): Promise<void>; start(): Promise<void> }> {
  const port = await findFreePortPair();
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-kafka-'));
  const args = ['--port', String(port), '--dir', dir];
  await runKafkaScript(['start', ...args]);
  return {
    brokers: [`127.0.0.1:${port}`],
    port,
    dir,
    start: async () => {
      await runKafkaScript(['start', ...args]);
    },
    stop: async () => {
      await runKafkaScript(['stop', ...args], 60_000);
    },
    /** SIGKILL, as a crash: nothing is flushed or closed. */
    kill: async () => {
      const pid = Number(readFileSync(join(dir, 'kafka.pid'), 'utf8').trim());
      if (pid > 0 && isAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        const deadline = Date.now() + 10_000;
        while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      }
    },
    release: async () => {
      await runKafkaScript(['stop', ...args], 60_000).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A unique prefix for topic and group names, so test files sharing a broker never meet. */
export function createTopicPrefix(): string {
  return `t${randomBytes(4).toString('hex')}.`;
}

/**
 * Config for a Kafka test: the given brokers, a fresh topic prefix and sink group, small
 * partitions count and the shortest session timeout the broker allows.
 */
export function createKafkaTestConfig(brokers: readonly string[], overrides: Record<string, unknown> = {}): FrozenConfig {
  const prefix = createTopicPrefix();
  // The sections set here are merged with the overrides; other sections are taken as given. (No
  // import of the store helper: it imports vitest, and the benchmarks start their broker here.)
  const section = (name: string) => (overrides[name] ?? {}) as Record<string, unknown>;
  return buildConfig({
    dataDir: ':memory:',
    ...overrides,
    clickhouse: { database: `t_${randomBytes(6).toString('hex')}`, retentionDays: 20_000, ...section('clickhouse') },
    kafka: { brokers: [...brokers], topicPrefix: prefix, sinkGroup: `${prefix}sink`, partitions: 3, sessionTimeoutMs: 6_000, ...section('kafka') },
  });
}

