// A generated trace written to files in real wire formats, replayed through the `ztwatch backtest`
// command path (file reading, format detection, ingest parsers, temporary embedded store, engine).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { AnomalySchema, type Anomaly } from '../../core/anomaly.ts';
import { IncidentSchema, type Incident } from '../../core/incident.ts';
import { needsWholeFile, run as runBacktestCommand } from '../../cli/commands/backtest.ts';
import { createScenario } from '../../ingest/simulate/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwatch-backtest-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backtest command', () => {
  it('finds a deny spike and an expired certificate in recorded files and writes valid NDJSON', async () => {
    const start = Date.UTC(2026, 0, 6, 13, 0, 0);
    const scenario = createScenario({ seed: 5, services: 8, startMs: start, durationMs: 150 * 60_000, peakRps: 10, attacks: ['policy_misconfiguration', 'cert_expiry'] });
    const byFormat = new Map<string, string[]>();
    for (const l of scenario.generate(start, start + 150 * 60_000)) {
      const list = byFormat.get(l.format) ?? [];
      list.push(l.line);
      byFormat.set(l.format, list);
    }
    const files: string[] = [];
    for (const [format, lines] of byFormat) {
      const file = join(dir, `${format}.log`);
      // A little disorder inside the file, as log shippers produce.
      for (let i = 0; i + 1 < lines.length; i += 97) [lines[i], lines[i + 1]] = [lines[i + 1] as string, lines[i] as string];
      writeFileSync(file, `${lines.join('\n')}\nthis line is not a record\n`);
      files.push(file);
    }
    // The OPA decisions also as one JSON array body, the way OPA uploads them.
    const opa = byFormat.get('opa') ?? [];
    const upload = join(dir, 'opa-upload.json');
    writeFileSync(upload, `[${opa.slice(0, 200).join(',\n')}]`);
    const out = join(dir, 'anomalies.ndjson');
    const incidentsOut = join(dir, 'incidents.ndjson');

    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    let summary: string;
    try {
      code = await runBacktestCommand([...files, upload, '--out', out, '--incidents-out', incidentsOut]);
      summary = stdout.mock.calls.map((c) => String(c[0])).join('');
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/backtest: [\d,]+ events \([\d,]+\/s\), event time 2026-01-06T/);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const total = [...byFormat.values()].reduce((n, l) => n + l.length, 0) + 200;
    expect(summary).toContain(`backtest: ${total} events from ${files.length + 1} file(s)`);
    expect(summary).toMatch(/dead letters: 3 \(unknown_format 3\)/);
    expect(summary).toMatch(/throughput: \d+ events\/s/);

    const anomalies = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    for (const a of anomalies) expect(Value.Errors(AnomalySchema, a).First()).toBeUndefined();
    const typed = anomalies as Anomaly[];
    expect(new Set(typed.map((a) => a.id)).size).toBe(typed.length);
    for (const a of typed) {
      expect(a.first_seen).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(a.first_seen <= a.last_seen).toBe(true);
    }
    const deny = scenario.labels.find((l) => l.class === 'policy_misconfiguration');
    const cert = scenario.labels.find((l) => l.class === 'cert_expiry');
    const near = (a: Anomaly, label: typeof deny) => Math.abs(Date.parse(a.first_seen) - Date.parse(label?.start ?? '')) < 3 * 60_000;
    expect(typed.some((a) => a.detector === 'deny_spike' && a.dst === deny?.dst && near(a, deny))).toBe(true);
    expect(typed.some((a) => a.detector === 'mtls_failure' && (a.src === cert?.src || a.dst === cert?.dst) && near(a, cert) && a.evidence.reason_class !== undefined)).toBe(true);
    // The final state of each anomaly: resolved unless still active at the end of the trace.
    expect(typed.filter((a) => a.detector === 'deny_spike' && a.dst === deny?.dst).every((a) => a.status === 'resolved')).toBe(true);
    for (const a of typed) expect(Date.parse(a.detected_at)).toBeGreaterThanOrEqual(Date.parse(a.first_seen));

    // Incidents: every anomaly in exactly one (merged-away incidents aside), one for all the
    // callers the broken policy denied, one for the expired certificate.
    const incidents = readFileSync(incidentsOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Incident);
    for (const i of incidents) expect(Value.Errors(IncidentSchema, i).First()).toBeUndefined();
    const live = incidents.filter((i) => i.evidence.merged_into === undefined);
    expect(live.flatMap((i) => i.members).sort()).toEqual(typed.map((a) => a.id).sort());
    expect(summary).toMatch(new RegExp(`incidents: ${incidents.length} \\(\\d+ paging\\)`));
    const denials = live.filter((i) => i.members.some((id) => typed.find((a) => a.id === id && a.detector === 'deny_spike' && a.dst === deny?.dst)));
    expect(denials, JSON.stringify(denials.map((i) => i.title))).toHaveLength(1);
    expect(denials[0]?.targets).toContain(deny?.dst);
    const certs = live.filter((i) => i.members.some((id) => typed.find((a) => a.id === id && a.detector === 'mtls_failure' && near(a, cert))));
    expect(certs, JSON.stringify(certs.map((i) => i.title))).toHaveLength(1);
    for (const i of live) expect(i.title).toMatch(/\.$/);
  }, 240_000);

  it('reads a JSON array or pretty-printed JSON whole, and an Envoy text log (which opens with `[`) as lines', async () => {
    const cases: Array<[string, boolean]> = [
      ['[2026-01-05T06:00:00.054Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 11770 4 3\n', false],
      ['[{"a":1},\n{"a":2}]\n', true],
      ['[\n  {\n    "a": 1\n  }\n]\n', true],
      ['{\n  "a": 1\n}\n', true],
      ['{"a":1}\n{"a":2}\n', false],
    ];
    for (const [i, [text, whole]] of cases.entries()) {
      const file = join(dir, `whole-${i}.log`);
      writeFileSync(file, text);
      expect(await needsWholeFile(file), text).toBe(whole);
    }
  });
});
