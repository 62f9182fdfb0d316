// The production stack as files: docker-compose.yml validated by Debian's docker-compose (`config`
// needs no Docker engine), its services and health checks read from the resolved config, the
// Prometheus config checked by promtool with the rule files it names, and the Dockerfile's
// essentials. Each tool check has a negative control on a broken copy.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { findBinary, findPrometheusTools, runTool } from '../helpers/prometheus.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ROLES = ['collector', 'sink', 'detector', 'api'] as const;
const INFRA = ['kafka', 'clickhouse', 'prometheus', 'alertmanager', 'grafana'] as const;

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  volumes?: unknown[];
}

function findCompose(): string {
  const binary = findBinary(['docker-compose']);
  if (!binary) throw new Error('docker-compose missing on PATH: run scripts/deps/prometheus.sh (Debian package docker-compose)');
  return binary;
}

describe('docker-compose.yml', () => {
  let compose: string;
  let scratch: string;
  let services: Record<string, Service>;

  beforeAll(async () => {
    compose = findCompose();
    scratch = await mkdtemp(join(tmpdir(), 'ztwatch-compose-'));
    const resolved = await runTool(compose, ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT });
    if (resolved.code !== 0) throw new Error(`docker-compose config failed: ${resolved.stderr}`);
    services = (parseYaml(resolved.stdout) as { services: Record<string, Service> }).services;
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes docker-compose config -q', async () => {
    const result = await runTool(compose, ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(0);
  });

  it('docker-compose config -q rejects a broken copy (negative control)', async () => {
    const text = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    // A dependency on a service that does not exist.
    const broken = text.replace('    depends_on:\n      alertmanager:', '    depends_on:\n      alertmanagr:');
    expect(broken).not.toBe(text);
    const copy = join(scratch, 'docker-compose.yml');
    await writeFile(copy, broken);
    const result = await runTool(compose, ['-f', copy, 'config', '-q'], { cwd: scratch });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/alertmanagr/);
  });

  it('runs every infrastructure service and every ztwatch role', () => {
    for (const name of [...INFRA, ...ROLES]) expect(services[name], name).toBeDefined();
    expect(services.kafka?.image).toBe('apache/kafka:4.1.1');
    expect(services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:/);
    expect(services.grafana?.image).toMatch(/^grafana\/grafana:/);
    expect(services.grafana?.environment?.GF_INSTALL_PLUGINS).toContain('grafana-clickhouse-datasource');
  });

  it('builds every role from the Dockerfile, runs it by its command, with a health check', () => {
    for (const role of ROLES) {
      const service = services[role] as Service;
      expect(service.build, role).toBeDefined();
      expect(service.command, role).toEqual([role]);
      const test = service.healthcheck?.test;
      expect(Array.isArray(test) ? test.join(' ') : test, role).toMatch(/\/healthz/);
      expect(service.environment?.KAFKA_BROKERS, role).toBe('kafka:9092');
      expect(service.environment?.CLICKHOUSE_URL, role).toBe('http://clickhouse:8123');
      expect(service.environment?.ZTWATCH_HTTP_HOST, role).toBe('0.0.0.0');
    }
  });

  it('gives every service a health check and waits for healthy dependencies', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.test, `${name} has no health check`).toBeDefined();
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(condition, `${name} → ${dependency}`).toBe('service_healthy');
        expect(services[dependency], `${name} depends on missing ${dependency}`).toBeDefined();
      }
    }
    expect(Object.keys(services.sink?.depends_on ?? {}).sort()).toEqual(['clickhouse', 'kafka']);
  });

  it('lets the sink scale: no container name and no host port', () => {
    expect(services.sink?.container_name).toBeUndefined();
    expect(services.sink?.ports ?? []).toEqual([]);
    for (const [name, service] of Object.entries(services)) expect(service.container_name, name).toBeUndefined();
  });

  it('mounts the shipped alert rules, Alertmanager config and Grafana provisioning', () => {
    const mounts = (name: string): string[] =>
      (services[name]?.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${(v as { source?: string }).source}:${(v as { target?: string }).target}`));
    expect(mounts('prometheus').some((m) => m.includes('/alerts:/etc/prometheus/alerts'))).toBe(true);
    expect(mounts('prometheus').some((m) => m.includes('/deploy/prometheus.yml:/etc/prometheus/deploy/prometheus.yml'))).toBe(true);
    expect(mounts('alertmanager').some((m) => m.includes('/alerts/alertmanager.yml:/etc/alertmanager/alertmanager.yml'))).toBe(true);
    expect(mounts('grafana').some((m) => m.includes('/dashboards/provisioning:/etc/grafana/provisioning'))).toBe(true);
    expect(mounts('grafana').some((m) => m.includes('/dashboards/generated:/var/lib/grafana/dashboards'))).toBe(true);
  });
});

describe('deploy/prometheus.yml', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'ztwatch-promconfig-'));
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes promtool check config, with every rule file resolved and checked', async () => {
    const { promtool } = findPrometheusTools();
    const result = await runTool(promtool, ['check', 'config', 'deploy/prometheus.yml'], { cwd: ROOT });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS: 3 rule files found');
    expect(result.stdout).toContain('alerts/ztwatch-incidents.rules.yml');
    expect(result.stdout).toContain('alerts/ztwatch-detectors.rules.yml');
    expect(result.stdout).toContain('alerts/ztwatch-pipeline.rules.yml');
  });

  it('promtool check config fails when the rule files do not resolve (negative control)', async () => {
    const { promtool } = findPrometheusTools();
    await mkdir(join(scratch, 'deploy'), { recursive: true });
    const copy = join(scratch, 'deploy', 'prometheus.yml');
    await copyFile(join(ROOT, 'deploy', 'prometheus.yml'), copy);
    const result = await runTool(promtool, ['check', 'config', copy]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/does not point to an existing file/);
  });

  it('scrapes every role under a job named ztwatch-*', async () => {
    const doc = parseYaml(await readFile(join(ROOT, 'deploy', 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] };
    const jobs = doc.scrape_configs.map((c) => c.job_name);
    for (const role of ROLES) expect(jobs).toContain(`ztwatch-${role}`);
  });
});

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim, installs production dependencies, runs as non-root with a health check', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const instructions = text.split('\n').filter((l) => /^[A-Z]+\s/.test(l));
    expect(instructions[0]).toBe('FROM node:20-bookworm-slim');
    expect(text).toMatch(/RUN npm ci --omit=dev/);
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).toMatch(/^USER (?!root\b|0\b)\S+/);
    expect(instructions).toContain('ENTRYPOINT ["node", "bin/ztwatch.js"]');
    expect(instructions.some((l) => l.startsWith('HEALTHCHECK '))).toBe(true);
    expect(text).toContain('/healthz');
    // Everything the image copies by name exists.
    for (const line of instructions.filter((l) => l.startsWith('COPY '))) {
      const sources = line.replace(/^COPY\s+(--\S+\s+)*/, '').split(/\s+/).slice(0, -1);
      for (const source of sources) if (source !== '.') await expect(readFile(join(ROOT, source))).resolves.toBeDefined();
    }
    const ignore = await readFile(join(ROOT, '.dockerignore'), 'utf8');
    for (const entry of ['node_modules', 'data', '.git']) expect(ignore.split('\n')).toContain(entry);
  });
});
