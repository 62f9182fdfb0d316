import { describe, expect, it } from 'vitest';
import { PARSERS } from '../../../ingest/parsers/index.ts';
import type { NormalizedEvent } from '../../../core/event.ts';
import { createMesh, type SimEdge } from '../../../ingest/simulate/mesh.ts';
import { createRandom } from '../../../ingest/simulate/prng.ts';
import type { GeneratedLine } from '../../../ingest/simulate/scenario.ts';
import { emitMeshRequest, linesBetween, type RequestEffects } from '../../../ingest/simulate/traffic.ts';

const T = Date.UTC(2026, 0, 5, 12, 0, 0);
const mesh = createMesh(createRandom(5), 12, 40);
const NONE: RequestEffects = { tlsFailure: () => undefined, restarting: () => false, denial: () => undefined, bytesFactor: () => undefined };

function findEdge(test: (e: SimEdge) => boolean): SimEdge {
  const edge = mesh.edges.find(test);
  if (!edge) throw new Error('the mesh has no such edge');
  return edge;
}
const guardedEdge = findEdge((e) => e.src !== mesh.gateway && mesh.opaGuarded.has(e.dst.name));
const plainEdge = findEdge((e) => e.src !== mesh.gateway && !mesh.opaGuarded.has(e.dst.name));

/** The lines of one request drawn with `seed`, each read by the parser of its format. */
function request(edge: SimEdge, effects: Partial<RequestEffects>, seed = 1): Array<{ format: string; event: NormalizedEvent }> {
  const out: GeneratedLine[] = [];
  emitMeshRequest(createRandom(seed), mesh, edge, T, out, { ...NONE, ...effects }, 0);
  return out.map((l) => {
    const parsed = PARSERS[l.format]?.parse(l.line, T);
    if (!parsed?.ok) throw new Error(`unreadable ${l.format} line: ${l.line}`);
    return { format: l.format, event: parsed.event };
  });
}

describe('one mesh request under scheduled effects', () => {
  it('is answered by the server with OPA asked on a guarded service, and not asked elsewhere', () => {
    const guarded = request(guardedEdge, {}, 3);
    expect(guarded.map((l) => l.format).sort()).toEqual(['envoy', 'opa']);
    expect(guarded.find((l) => l.format === 'envoy')?.event.dst_service).toBe(guardedEdge.dst.name);
    expect(request(plainEdge, {}, 3).map((l) => l.format)).toEqual(['envoy']);
  });

  it('is denied by the named policy; OPA logs its allowing decision only where the effect says so', () => {
    for (const opaLogged of [false, true]) {
      const lines = request(guardedEdge, { denial: (e) => (e === guardedEdge ? { policy: 'tight-one', opaLogged } : undefined) });
      const envoy = lines.find((l) => l.format === 'envoy')?.event;
      expect(envoy?.status).toBe(403);
      expect(envoy?.decision).toBe('deny');
      expect(envoy?.decision_reason).toContain('tight-one');
      const opa = lines.filter((l) => l.format === 'opa');
      expect(opa.map((l) => l.event.decision)).toEqual(opaLogged ? ['allow'] : []);
    }
  });

  it('fails in the client sidecar on a TLS failure or a restarting server, before the server sees it', () => {
    const tls = request(plainEdge, { tlsFailure: (_r, src) => (src === plainEdge.src ? { reason: 'SSLV3_ALERT_CERTIFICATE_EXPIRED', code: 268436501 } : undefined) });
    expect(tls).toHaveLength(1);
    expect(tls[0]?.event.status).toBe(503);
    expect(tls[0]?.event.response_flags).toEqual(expect.arrayContaining(['UF', 'URX']));
    expect(tls[0]?.event.tls_failure).toContain('CERTIFICATE_EXPIRED');
    const restarting = request(plainEdge, { restarting: (dst) => dst === plainEdge.dst });
    expect(restarting).toHaveLength(1);
    expect(restarting[0]?.event.status).toBe(503);
    expect(restarting[0]?.event.tls_failure).toBe('');
  });

  it('multiplies response bytes where exfiltration is scheduled, drawing the same request otherwise', () => {
    // A seed whose request is a plain 200 (no background denial, reset or 404).
    const seed = [...Array(50).keys()].find((s) => request(plainEdge, {}, s)[0]?.event.status === 200) ?? -1;
    const before = request(plainEdge, {}, seed)[0]?.event;
    const after = request(plainEdge, { bytesFactor: (e) => (e === plainEdge ? 20 : undefined) }, seed)[0]?.event;
    expect(before?.status).toBe(200);
    expect(after?.request_id).toBe(before?.request_id);
    expect(after?.bytes_out).toBe(Math.round((before?.bytes_out ?? NaN) * 20));
  });
});

describe('linesBetween', () => {
  it('gives a window its slots\' lines and the extras in range, in time order, however it is chunked', () => {
    const slot = (second: number, out: GeneratedLine[]) => {
      for (const offset of [900, 100, 500]) out.push({ format: 'envoy', line: `s${second}+${offset}`, timeMs: second * 1000 + offset });
    };
    const extras: GeneratedLine[] = [T + 50, T + 1_050, T + 2_999, T + 5_000].map((t) => ({ format: 'opa', line: `x${t}`, timeMs: t }));
    const whole = linesBetween(T + 200, T + 3_000, slot, extras);
    expect(whole.map((l) => l.timeMs - T)).toEqual([500, 900, 1050, 1100, 1500, 1900, 2100, 2500, 2900, 2999]);
    const chunked = [T + 200, T + 1_234, T + 2_500].flatMap((from, i, all) => linesBetween(from, all[i + 1] ?? T + 3_000, slot, extras));
    expect(chunked).toEqual(whole);
  });
});
