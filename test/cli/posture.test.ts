// Rollout guidance on a real embedded store filled with generated mesh traffic: STRICT readiness,
// policy replay (YAML policies and an OPA bundle through the real `opa`), the least-privilege round
// trip (generated policies deny nothing that was allowed, and deny an injected lateral movement
// whose traffic was allowed), unused permissions and blast radius.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyEvent, type NormalizedEvent } from '../../core/event.ts';
import type { Store } from '../../store/client.ts';
import { createScenario, type Scenario } from '../../ingest/simulate/index.ts';
import { PARSERS } from '../../ingest/parsers/index.ts';
import { runPolicy } from '../../cli/commands/policy.ts';
import { runPosture } from '../../cli/commands/posture.ts';
import { runBlastRadius } from '../../cli/commands/blast-radius.ts';
import type { ReplayResult } from '../../posture/replay.ts';
import { createTestConfig, createTestStore, dropTestStore } from '../helpers/store.ts';
import { captureIo } from './io.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OPA_BIN = join(ROOT, '.cache/opa/bin/opa');
if (!existsSync(OPA_BIN)) throw new Error(`${OPA_BIN} is missing: run scripts/deps/opa.sh (or scripts/test-deps.sh) to build it`);

const HOUR = 3_600_000;
const START = Date.now() - 4 * HOUR;
const END = START + 3 * HOUR;

/** Scenario lines parsed by their registered parsers, as the ingest path stores them. */
function parseScenario(scenario: Scenario): NormalizedEvent[] {
  const events: NormalizedEvent[] = [];
  for (const line of scenario.generate(START, END)) {
    const result = PARSERS[line.format]?.parse(line.line, line.timeMs);
    if (result?.ok) events.push({ ...result.event, event_id: randomUUID() });
  }
  return events;
}

async function run(command: (args: string[], io: ReturnType<typeof captureIo>, store: Store) => Promise<number>, args: string[], store: Store): Promise<string> {
  const io = captureIo();
  expect(await command(args, io, store)).toBe(0);
  return io.out();
}

describe('posture and policy commands on a generated mesh', () => {
  let store: Store;
  let dir: string;
  let scenario: Scenario;
  /** The injected lateral movement: an established workload calling services it never calls, allowed. */
  let attacker: { identity: string; ip: string; workload: string; namespace: string };
  let attackTargets: Array<{ service: string; namespace: string; port: number }>;
  let attackWindow: { fromMs: number; toMs: number };
  let plaintext: { src: string; dst: string };

  beforeAll(async () => {
    store = await createTestStore(createTestConfig({ clickhouse: { retentionDays: 3650 } }));
    dir = await mkdtemp(join(tmpdir(), 'ztw-posture-'));
    scenario = createScenario({ seed: 5, services: 8, startMs: START, durationMs: END - START, peakRps: 3, attacks: ['plaintext_client'] });
    const events = parseScenario(scenario);
    const label = scenario.labels.find((l) => l.class === 'plaintext_client');
    plaintext = { src: label!.src!, dst: label!.dst! };

    // Lateral movement whose requests the current policies let through (so nothing recorded
    // blocks them): a tier-1 workload calls every service it never called, late in the window.
    const mesh = scenario.mesh;
    const source = mesh.services.find((s) => s.tier === 1)!;
    attacker = { identity: source.identity, ip: source.ip, workload: source.name, namespace: source.namespace };
    const usual = new Set(mesh.edges.filter((e) => e.src === source).map((e) => e.dst.name));
    attackTargets = mesh.services.filter((s) => s !== source && !usual.has(s.name)).map((s) => ({ service: s.name, namespace: s.namespace, port: s.port }));
    attackWindow = { fromMs: END - 20 * 60_000, toMs: END - 10 * 60_000 };
    attackTargets.forEach((t, i) => {
      for (let k = 0; k < 3; k++) {
        events.push({
          ...createEmptyEvent('envoy', attackWindow.fromMs),
          event_id: randomUUID(),
          time: attackWindow.fromMs + i * 60_000 + k * 1000,
          reporter: 'inbound',
          src_identity: attacker.identity,
          src_workload: attacker.workload,
          src_namespace: attacker.namespace,
          src_ip: attacker.ip,
          dst_service: t.service,
          dst_namespace: t.namespace,
          dst_port: t.port,
          method: 'GET',
          path: '/api/v1/secrets/1',
          route: '/api/v1/secrets/{id}',
          status: 200,
          decision: 'allow',
          mtls: 'yes',
          raw: 'injected lateral movement',
        });
      }
    });
    for (let i = 0; i < events.length; i += 20_000) await store.insertEvents(events.slice(i, i + 20_000));
    // The fanout detector's finding for it, still open.
    await store.insertRows('anomalies', [
      {
        id: 'lateral-1',
        detector: 'fanout',
        severity: 'high',
        status: 'firing',
        first_seen: attackWindow.fromMs,
        last_seen: attackWindow.toMs,
        src: attacker.identity,
        dst: null,
        subject: attacker.identity,
        score: 9,
        summary: 'fan-out',
        evidence: '{}',
        version: 1,
      },
    ]);
  }, 120_000);

  afterAll(async () => {
    await dropTestStore(store);
    await rm(dir, { recursive: true, force: true });
  });

  it('posture mtls: the plaintext client blocks its target, other ports are ready, STRICT manifest for those', async () => {
    const report = JSON.parse(await run(runPosture, ['mtls', '--window', '6h', '--json'], store)) as {
      ports: Array<{ service: string; port: number; verdict: string; senders: Array<{ sender: string; requests: number }>; mtlsShare: number | null }>;
      manifest: string;
    };
    const target = report.ports.filter((p) => p.service === plaintext.dst);
    expect(target.some((p) => p.verdict === 'blocked' && p.senders.some((s) => s.sender === plaintext.src && s.requests > 0))).toBe(true);
    const ready = report.ports.filter((p) => p.verdict === 'ready');
    expect(ready.length).toBeGreaterThan(2);
    expect(ready.every((p) => p.mtlsShare === 1)).toBe(true);
    expect(report.manifest).toContain('kind: PeerAuthentication');
    expect(report.manifest).toContain('mode: STRICT');
    const text = await run(runPosture, ['mtls', '--window', '6h'], store);
    expect(text).toMatch(/blocked by \d+ plaintext sender/);
    expect(text).toContain(plaintext.src);
  });

  it.each(['istio', 'k8s', 'cilium'])('policy generate --format %s: replayed on the same history it denies nothing that was allowed, except the open lateral movement', async (format) => {
    const yaml = await run(runPolicy, ['generate', '--format', format, '--window', '6h'], store);
    expect(yaml).toContain('labels by convention');
    expect(yaml).toContain('traffic of 1 open anomalies/incidents left out');
    const file = join(dir, `generated-${format}.yaml`);
    await writeFile(file, yaml);
    const report = JSON.parse(await run(runPolicy, ['replay', file, '--window', '6h', '--json'], store)) as { replay: ReplayResult };
    const broken = report.replay.changed.filter((f) => f.replayed === 'deny');
    const isAttack = (f: { source: string; destination: string }) => f.source === attacker.identity && attackTargets.some((t) => t.service === f.destination);
    expect(broken.filter((f) => !isAttack(f))).toEqual([]);
    // Every injected call is denied.
    const deniedTargets = new Set(report.replay.denied.filter(isAttack).map((f) => f.destination));
    expect([...deniedTargets].sort()).toEqual(attackTargets.map((t) => t.service).sort());
  });

  it('policy replay prints the flows that would break, in a table', async () => {
    const target = scenario.mesh.services.find((s) => s.tier === 2)!;
    const file = join(dir, 'lockdown.yaml');
    await writeFile(
      file,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${target.name}-lockdown, namespace: ${target.namespace} }
spec:
  selector: { matchLabels: { app: ${target.name} } }
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/nobody/sa/nobody"] } }]
`,
    );
    const text = await run(runPolicy, ['replay', file, '--window', '6h'], store);
    expect(text).toContain('labels by convention');
    expect(text).toMatch(/would deny [1-9]\d* flows/);
    expect(text).toMatch(/SOURCE\s+DESTINATION\s+PORT\s+METHOD\s+ROUTE\s+REQUESTS\s+LAST SEEN/);
    expect(text).toContain(`${target.name}.${target.namespace}`);
    expect(text).toContain(`no ALLOW rule matches (AuthorizationPolicy ${target.namespace}/${target.name}-lockdown`);
  });

  it('policy replay of an OPA bundle through the real opa reports the decisions that change', async () => {
    const bundle = join(dir, 'bundle');
    await mkdir(join(bundle, 'envoy'), { recursive: true });
    await writeFile(join(bundle, 'envoy', 'authz.rego'), 'package envoy.authz\n\ndefault allow := false\n\nallow if input.attributes.request.http.method == "GET"\n');
    const report = JSON.parse(await run(runPolicy, ['replay', bundle, '--window', '6h', '--json', '--opa-bin', OPA_BIN], store)) as {
      opa: Array<{ replayed: number; changed: Array<{ path: string; recorded: string; replayed: string; input: { attributes: { request: { http: { method: string } } } } }> }>;
    };
    const [result] = report.opa;
    expect(result!.replayed).toBeGreaterThan(100);
    expect(result!.changed.length).toBeGreaterThan(0);
    for (const c of result!.changed) {
      if (c.path === 'envoy/authz/allow') {
        const method = c.input.attributes.request.http.method;
        expect(c.replayed).toBe(method === 'GET' ? 'allow' : 'deny');
      } else expect(c.replayed).toBe('undefined');
    }
    expect(result!.changed.some((c) => c.path === 'envoy/authz/allow' && c.recorded === 'allow' && c.replayed === 'deny')).toBe(true);
  });

  it('policy unused lists the principals and ports nobody used, as a table and CSV', async () => {
    const edge = scenario.mesh.edges.find((e) => e.src.tier >= 1)!;
    const file = join(dir, 'review.yaml');
    const principal = edge.src.identity.replace('spiffe://', '');
    await writeFile(
      file,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: review, namespace: ${edge.dst.namespace} }
spec:
  selector: { matchLabels: { app: ${edge.dst.name} } }
  rules:
  - from: [{ source: { principals: ["${principal}", "cluster.local/ns/old/sa/retired"] } }]
    to: [{ operation: { ports: ["${edge.dst.port}", "9999"] } }]
`,
    );
    const csv = await run(runPolicy, ['unused', file, '--window', '6h', '--csv'], store);
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('policy,file,path,element,value,requests');
    expect(lines.slice(1).map((l) => l.split(',').slice(2, 5).join(',')).sort()).toEqual(
      ['spec.rules[0].from[0].source.principals[1],principal,cluster.local/ns/old/sa/retired', 'spec.rules[0].to[0].operation.ports[1],port,9999'].sort(),
    );
    const all = JSON.parse(await run(runPolicy, ['unused', file, '--window', '6h', '--json', '--all'], store)) as { rows: Array<{ value: string; requests: number }> };
    expect(all.rows.find((r) => r.value === principal)!.requests).toBeGreaterThan(0);
    expect(await run(runPolicy, ['unused', file, '--window', '6h'], store)).toContain('cluster.local/ns/old/sa/retired');
  });

  it('blast-radius: under generated policies the identity reaches what it did reach, multi-hop; without policies only what it did', async () => {
    const source = scenario.mesh.services.find((s) => s.tier === 0)!;
    const file = join(dir, 'generated-istio.yaml');
    const result = JSON.parse(await run(runBlastRadius, [source.identity, '--policies', file, '--window', '6h', '--json'], store)) as {
      rows: Array<{ service: string; canReachHop: number | null; didReachHop: number | null }>;
      canReach: number;
      didReach: number;
    };
    const direct = result.rows.filter((r) => r.didReachHop === 1);
    expect(direct.length).toBeGreaterThan(0);
    expect(direct.every((r) => r.canReachHop === 1)).toBe(true);
    expect(result.rows.some((r) => (r.canReachHop ?? 0) >= 2)).toBe(true);
    const text = await run(runBlastRadius, [source.identity, '--window', '6h'], store);
    expect(text).toContain('no --policies');
    expect(text).toMatch(/NAMESPACE\s+SERVICE\s+CAN REACH/);
  });

  it('refuses bad input with usage errors', async () => {
    for (const args of [['generate'], ['generate', '--format', 'xml'], ['replay'], ['unused'], ['nope'], ['replay', 'x.yaml', '--window', 'forever']]) {
      await expect(runPolicy(args, captureIo(), store)).rejects.toMatchObject({ code: 'ZTW_CLI_USAGE' });
    }
    await expect(runPosture(['tls'], captureIo(), store)).rejects.toMatchObject({ code: 'ZTW_CLI_USAGE' });
    await expect(runBlastRadius([], captureIo(), store)).rejects.toMatchObject({ code: 'ZTW_CLI_USAGE' });
  });
});
