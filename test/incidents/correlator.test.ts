import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import type { Anomaly, Severity } from '../../core/anomaly.ts';
import { IncidentSchema } from '../../core/incident.ts';
import { aliasesOf, createIncidentCorrelator, type IncidentChange, type MemberChange } from '../../incidents/correlator.ts';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const S = 1000;
const iso = (offsetS: number) => new Date(T0 + offsetS * S).toISOString();

/** One anomaly change: an anomaly record at offsets (seconds from T0) plus its lifecycle change. */
interface Step {
  readonly change: MemberChange;
  readonly anomaly: Anomaly;
}

let counter = 0;

function anomaly(detector: string, fields: { src?: string | null; dst?: string | null; severity?: Severity; firstS: number; detectedS?: number; lastS?: number; evidence?: Record<string, unknown>; id?: string }): Anomaly {
  const detectedS = fields.detectedS ?? fields.firstS + 20;
  return {
    id: fields.id ?? `a${++counter}`,
    detector,
    severity: fields.severity ?? 'high',
    status: 'firing',
    first_seen: iso(fields.firstS),
    detected_at: iso(detectedS),
    last_seen: iso(fields.lastS ?? detectedS),
    src: fields.src ?? null,
    dst: fields.dst ?? null,
    score: 10,
    summary: `${detector} finding`,
    evidence: fields.evidence ?? {},
  };
}

const opened = (a: Anomaly): Step => ({ change: 'opened', anomaly: a });
/** The same anomaly resolved at `lastS`. */
const resolved = (a: Anomaly, lastS: number): Step => ({ change: 'resolved', anomaly: { ...a, status: 'resolved', last_seen: iso(lastS) } });

const scanner = '10.9.9.9';
const attacker = 'spiffe://cluster.local/ns/shop/sa/frontend';
const mallory = 'spiffe://cluster.local/ns/batch/sa/report';
const ports = (services: string[]) => services.map((s) => `${s}:8080`);

interface Case {
  readonly name: string;
  readonly steps: () => Step[];
  readonly incidents: number;
  /** Pages: incidents that notify. */
  readonly pages: number;
  readonly check?: (all: ReturnType<ReturnType<typeof createIncidentCorrelator>['all']>) => void;
}

const CASES: Case[] = [
  {
    name: 'a scan and the denials at each destination it touched (no source named) are one incident',
    incidents: 1,
    pages: 1,
    steps: () => {
      const denials = ['cart', 'ledger', 'payments', 'users'].map((dst, i) => anomaly('deny_spike', { dst, firstS: 5 + i, detectedS: 20, severity: 'medium' }));
      const scan = anomaly('fanout', { src: scanner, firstS: 0, detectedS: 30, evidence: { targets: ports(['cart', 'ledger', 'payments', 'users', 'search']) } });
      const late = anomaly('deny_spike', { dst: 'search', firstS: 25, detectedS: 40, severity: 'medium' });
      return [...denials.map(opened), opened(scan), opened(late)];
    },
    check: ([incident]) => {
      expect(incident?.actors).toEqual([scanner]);
      expect(incident?.targets).toEqual(expect.arrayContaining(['cart', 'ledger', 'payments', 'users', 'search']));
      expect(incident?.members).toHaveLength(6);
      expect(incident?.title).toMatch(/^Scan or lateral movement by 10\.9\.9\.9 reaching 5 destinations/);
      // Raised when the scan named the actor: before the actorless denials' hold ran out.
      expect(incident?.detected_at).toBe(iso(30));
      expect(incident?.first_seen).toBe(iso(0));
      expect(incident?.severity).toBe('high');
    },
  },
  {
    name: 'a scan that fires first claims the denials that follow',
    incidents: 1,
    pages: 1,
    steps: () => [
      opened(anomaly('fanout', { src: scanner, firstS: 0, detectedS: 20, evidence: { targets: ports(['cart', 'ledger']) } })),
      opened(anomaly('deny_spike', { dst: 'ledger', firstS: 10, detectedS: 30 })),
      opened(anomaly('new_edge', { src: scanner, dst: 'cart', firstS: 10, detectedS: 30 })),
    ],
  },
  {
    name: "a client's expired certificate: fan-outs of failed handshakes from its pod IPs join the certificate incident, not scans",
    incidents: 1,
    pages: 1,
    steps: () => {
      const client = 'spiffe://cluster.local/ns/storefront/sa/web-bff';
      const servers = ['token-issuer', 'media-resizer', 'audit-sink', 'ledger-writer', 'config-server', 'user-directory'];
      const tlsFanout = (ip: string, firstS: number, detectedS: number) =>
        anomaly('fanout', { src: ip, firstS, detectedS, severity: 'critical', evidence: { targets: ports(servers), tls_failure_share: 1, tls_failures: { CERTIFICATE_VERIFY_FAILED: 40 }, ip_identities: [client] } });
      return [
        // The client's own sidecar names it; servers see only its pod addresses.
        opened(anomaly('mtls_failure', { src: client, firstS: 0, detectedS: 30, evidence: { role: 'client', reason_class: 'expired', peers: { 'token-issuer': 20, 'audit-sink': 9 } } })),
        opened(anomaly('mtls_failure', { dst: 'token-issuer', firstS: 0, detectedS: 35, evidence: { role: 'server', reason_class: 'verify_failed', peers: { '10.42.0.131': 20, '10.42.0.138': 20 } } })),
        opened(tlsFanout('10.42.0.138', 60, 120)),
        opened(tlsFanout('10.42.0.131', 70, 200)),
        // A pod address no mtls_failure lists: the workload seen on it ties it to the certificate.
        opened(tlsFanout('10.42.0.145', 80, 300)),
      ];
    },
    check: ([incident]) => {
      expect(incident?.members).toHaveLength(5);
      expect(incident?.title).toMatch(/^Certificate of spiffe:\/\/cluster\.local\/ns\/storefront\/sa\/web-bff failing TLS handshakes/);
      expect(Object.values(incident?.evidence.links as Record<string, string>)).toContain('same_certificate');
      expect(incident?.actors).toContain('spiffe://cluster.local/ns/storefront/sa/web-bff');
    },
  },
  {
    name: 'fan-outs of failed handshakes that come before the certificate finding wait for it, then join it',
    incidents: 1,
    pages: 1,
    steps: () => {
      const client = 'spiffe://cluster.local/ns/storefront/sa/web-bff';
      return [
        opened(anomaly('fanout', { src: '10.42.0.138', firstS: 0, detectedS: 20, severity: 'critical', evidence: { targets: ports(['a', 'b', 'c', 'd', 'e', 'f']), tls_failure_share: 0.95, ip_identities: [client] } })),
        opened(anomaly('mtls_failure', { src: client, firstS: 0, detectedS: 40, evidence: { role: 'client', reason_class: 'expired', peers: { a: 20 } } })),
      ];
    },
    check: ([incident]) => {
      expect(incident?.members).toHaveLength(2);
      expect(incident?.detected_at).toBe(iso(40));
    },
  },
  {
    name: 'a scan of failed handshakes from an address no failing certificate involves still pages, after the hold',
    incidents: 2,
    pages: 2,
    steps: () => [
      opened(anomaly('mtls_failure', { src: 'spiffe://cluster.local/ns/storefront/sa/web-bff', firstS: 0, detectedS: 30, evidence: { role: 'client', reason_class: 'expired', peers: { a: 20 } } })),
      opened(anomaly('fanout', { src: scanner, firstS: 10, detectedS: 40, severity: 'critical', evidence: { targets: ports(['a', 'b', 'c', 'd', 'e', 'f']), tls_failure_share: 1, ip_identities: [] } })),
    ],
    check: (all) => {
      const scan = all.find((i) => i.actors.includes(scanner));
      expect(scan?.title).toMatch(/^Scan or lateral movement by 10\.9\.9\.9/);
      expect(scan?.detected_at).toBe(iso(70));
    },
  },
  {
    name: 'a scan whose requests reached applications (denied, not failed handshakes) is not explained by a certificate of the workload on its address',
    incidents: 2,
    pages: 2,
    steps: () => {
      const client = 'spiffe://cluster.local/ns/storefront/sa/web-bff';
      return [
        opened(anomaly('mtls_failure', { src: client, firstS: 0, detectedS: 30, evidence: { role: 'client', reason_class: 'expired', peers: { a: 20 } } })),
        opened(anomaly('fanout', { src: '10.42.0.138', firstS: 10, detectedS: 40, severity: 'critical', evidence: { targets: ports(['a', 'b', 'c', 'd', 'e', 'f']), tls_failure_share: 0.1, ip_identities: [client] } })),
      ];
    },
    check: (all) => {
      const scan = all.find((i) => i.actors.includes('10.42.0.138'));
      // Paged at once (it names an actor) and names the workload seen on the address after it.
      expect(scan?.detected_at).toBe(iso(40));
      expect(scan?.actors).toEqual(['10.42.0.138', 'spiffe://cluster.local/ns/storefront/sa/web-bff']);
    },
  },
  {
    name: "a client's expired certificate seen by its own sidecar and, by address, by its servers at the same moment is one incident naming the client",
    incidents: 1,
    pages: 1,
    steps: () => {
      const client = 'spiffe://cluster.local/ns/storefront/sa/web-bff';
      return [
        opened(anomaly('mtls_failure', { src: client, firstS: 0, detectedS: 40, evidence: { role: 'client', reason_class: 'expired', peers: { 'token-issuer': 20, 'audit-sink': 9 } } })),
        opened(anomaly('mtls_failure', { src: '10.42.0.131', firstS: 0, detectedS: 40, evidence: { role: 'client', reason_class: 'verify_failed', peers: { 'token-issuer': 30, 'media-resizer': 12 }, address_identities: { '10.42.0.131': [client] } } })),
      ];
    },
    check: ([incident]) => {
      expect(incident?.members).toHaveLength(2);
      expect(incident?.title).toMatch(/^Certificate of spiffe:\/\/cluster\.local\/ns\/storefront\/sa\/web-bff failing/);
    },
  },
  {
    name: 'an expired certificate: client-side and server-side mtls_failure are one incident',
    incidents: 1,
    pages: 1,
    steps: () => [
      opened(anomaly('mtls_failure', { src: 'orders', dst: 'payments', firstS: 0, detectedS: 20, evidence: { role: 'client', peers: { payments: 40 }, reason_class: 'expired' } })),
      opened(anomaly('mtls_failure', { src: 'orders', dst: 'payments', firstS: 2, detectedS: 30, evidence: { role: 'server', peers: { orders: 40 }, reason_class: 'expired' } })),
    ],
    check: ([incident]) => {
      expect(incident?.title).toBe('Certificate of orders failing TLS handshakes with payments (expired).');
    },
  },
  {
    name: 'a server certificate failing for many clients, each side reported, is one incident',
    incidents: 1,
    pages: 1,
    steps: () => [
      opened(anomaly('mtls_failure', { dst: 'payments', firstS: 0, detectedS: 20, evidence: { role: 'server', peers: { orders: 10, checkout: 9, refunds: 8 } } })),
      opened(anomaly('mtls_failure', { src: 'refunds', dst: 'payments', firstS: 3, detectedS: 30, evidence: { role: 'client', peers: { payments: 8 } } })),
    ],
  },
  {
    name: 'one broken policy: the denials of all the callers of one destination are one incident',
    incidents: 1,
    pages: 1,
    steps: () =>
      ['frontend', 'checkout', 'refunds', 'admin', 'reports'].map((caller, i) => opened(anomaly('deny_spike', { src: caller, dst: 'payments', firstS: i * 3, detectedS: 20 + i * 10, severity: i === 4 ? 'high' : 'medium' }))),
    check: ([incident]) => {
      expect(incident?.actors).toHaveLength(5);
      expect(incident?.targets).toEqual(['payments']);
      expect(incident?.title).toBe('Denials of 5 callers (frontend, checkout, refunds and 2 more) at payments: one policy likely broke their access.');
      expect(incident?.severity).toBe('high');
    },
  },
  {
    name: 'two unrelated attacks overlapping in time are two incidents',
    incidents: 2,
    pages: 2,
    steps: () => [
      opened(anomaly('fanout', { src: scanner, firstS: 0, detectedS: 20, evidence: { targets: ports(['cart', 'ledger', 'search']) } })),
      opened(anomaly('volume', { src: mallory, dst: 'ledger', firstS: 5, detectedS: 25 })),
      opened(anomaly('deny_spike', { dst: 'cart', firstS: 8, detectedS: 30 })),
      opened(anomaly('authz_deny_burst', { src: mallory, firstS: 10, detectedS: 35, evidence: { destinations: ['ledger'] } })),
    ],
    check: (all) => {
      const scan = all.find((i) => i.actors.includes(scanner));
      const exfil = all.find((i) => i.actors.includes(mallory));
      expect(scan?.members).toHaveLength(2);
      expect(exfil?.members).toHaveLength(2);
      expect(exfil?.title).toMatch(/^Privilege probing by spiffe:\/\/cluster\.local\/ns\/batch\/sa\/report/);
    },
  },
  {
    name: 'lateral movement by one identity (new edges, denials, probing) is one incident',
    incidents: 1,
    pages: 1,
    steps: () => [
      opened(anomaly('new_edge', { src: attacker, dst: 'ledger', firstS: 0, detectedS: 20, severity: 'medium' })),
      opened(anomaly('new_edge', { src: attacker, dst: 'users', firstS: 15, detectedS: 30, severity: 'medium' })),
      opened(anomaly('deny_spike', { src: attacker, dst: 'payments', firstS: 20, detectedS: 40 })),
      opened(anomaly('authz_deny_burst', { src: attacker, firstS: 30, detectedS: 50, severity: 'critical' })),
    ],
    check: ([incident]) => {
      expect(incident?.severity).toBe('critical');
      expect(incident?.actors).toEqual([attacker]);
      expect(incident?.targets).toEqual(['ledger', 'users', 'payments']);
    },
  },
  {
    name: 'the same actor hours later is a new incident',
    incidents: 2,
    pages: 2,
    steps: () => {
      const first = anomaly('new_edge', { src: attacker, dst: 'ledger', firstS: 0, detectedS: 20 });
      return [opened(first), resolved(first, 60), opened(anomaly('new_edge', { src: attacker, dst: 'users', firstS: 7200, detectedS: 7220 }))];
    },
  },
  {
    name: 'privilege probing seen only in decision logs names the policy that refused',
    incidents: 1,
    pages: 1,
    steps: () => [opened(anomaly('authz_deny_burst', { src: 'zoe@example.com', firstS: 0, evidence: { destinations: [], policies: { 'ledger/authz/allow': 32 } } }))],
    check: ([incident]) => {
      expect(incident?.title).toBe('Privilege probing by zoe@example.com, denied by the policy engine under ledger/authz/allow (no destination service in the decisions).');
    },
  },
  {
    name: 'info findings open incidents that never page',
    incidents: 1,
    pages: 0,
    steps: () => [opened(anomaly('new_edge', { src: 'spiffe://cluster.local/ns/shop/sa/new', dst: 'cart', firstS: 0, severity: 'info' }))],
  },
  {
    name: 'a denial spike nobody explains pages after the hold and says no actor can be named',
    incidents: 2,
    pages: 1,
    steps: () => [opened(anomaly('deny_spike', { dst: 'cart', firstS: 0, detectedS: 20 })), opened(anomaly('new_edge', { src: attacker, dst: 'x', firstS: 100, detectedS: 120, severity: 'info' }))],
    check: (all) => {
      const denial = all.find((i) => i.targets.includes('cart'));
      expect(denial?.title).toBe('Denial spike of an unidentified source (no actor can be named from the evidence) at cart.');
      expect(denial?.actors).toEqual([]);
      expect(denial?.detected_at).toBe(iso(50));
    },
  },
];

function run(steps: readonly Step[]): { changes: IncidentChange[]; correlator: ReturnType<typeof createIncidentCorrelator> } {
  const correlator = createIncidentCorrelator();
  const changes: IncidentChange[] = [];
  for (const step of steps) changes.push(...correlator.observe(step.anomaly, step.change));
  const lastMs = Math.max(...steps.map((s) => Date.parse(s.anomaly.last_seen)));
  changes.push(...correlator.finish(lastMs + 600 * S));
  return { changes, correlator };
}

describe('incident correlator', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const { correlator, changes } = run(c.steps());
      const all = correlator.all().filter((i) => i.evidence.merged_into === undefined);
      expect(all, JSON.stringify(all.map((i) => ({ title: i.title, members: i.members })))).toHaveLength(c.incidents);
      expect(all.filter((i) => i.notify)).toHaveLength(c.pages);
      // Pages are counted over every incident ever raised, merged ones included.
      expect(correlator.all().filter((i) => i.notify)).toHaveLength(c.pages);
      for (const incident of correlator.all()) {
        expect([...Value.Errors(IncidentSchema, incident)]).toEqual([]);
        expect(incident.title.endsWith('.')).toBe(true);
      }
      for (const ch of changes) expect(Value.Check(IncidentSchema, ch.incident)).toBe(true);
      c.check?.(all);
    });
  }

  it('raises severity without a new page, and resolves once every member resolved', () => {
    const correlator = createIncidentCorrelator();
    const a = anomaly('deny_spike', { src: attacker, dst: 'cart', firstS: 0, detectedS: 20, severity: 'medium' });
    const b = anomaly('new_edge', { src: attacker, dst: 'ledger', firstS: 10, detectedS: 30, severity: 'low' });
    const out: IncidentChange[] = [];
    out.push(...correlator.observe(a, 'opened'));
    out.push(...correlator.observe(b, 'opened'));
    out.push(...correlator.observe({ ...a, severity: 'critical', last_seen: iso(60) }, 'updated'));
    out.push(...correlator.observe({ ...a, severity: 'critical', status: 'resolved', last_seen: iso(90) }, 'resolved'));
    expect(out.map((c) => [c.change, c.incident.status, c.incident.severity, c.incident.notify])).toEqual([
      ['opened', 'firing', 'medium', true],
      ['updated', 'firing', 'medium', true],
      ['updated', 'firing', 'critical', true],
      ['updated', 'firing', 'critical', true],
    ]);
    const last = correlator.observe({ ...b, status: 'resolved', last_seen: iso(70) }, 'resolved');
    expect(last.map((c) => c.change)).toEqual(['resolved']);
    const [incident] = correlator.all();
    expect(new Set(out.map((c) => c.incident.id))).toEqual(new Set([incident?.id]));
    expect(incident?.status).toBe('resolved');
    expect(incident?.last_seen).toBe(iso(90));
    expect(incident?.detected_at).toBe(iso(20));
    expect(incident?.timeline.map((t) => `${t.change} ${t.detector}`)).toEqual(['opened deny_spike', 'opened new_edge', 'updated deny_spike', 'resolved deny_spike', 'resolved new_edge']);
  });

  it('merges two incidents a later anomaly links, keeping the one that paged', () => {
    const correlator = createIncidentCorrelator({ holdSeconds: 0 });
    const out: IncidentChange[] = [];
    out.push(...correlator.observe(anomaly('deny_spike', { dst: 'cart', firstS: 0, detectedS: 20, id: 'd1' }), 'opened'));
    out.push(...correlator.observe(anomaly('deny_spike', { dst: 'ledger', firstS: 0, detectedS: 30, id: 'd2' }), 'opened'));
    out.push(...correlator.observe(anomaly('fanout', { src: scanner, firstS: 0, detectedS: 40, id: 'f', evidence: { targets: ports(['cart', 'ledger']) } }), 'opened'));
    const all = correlator.all();
    const live = all.filter((i) => i.evidence.merged_into === undefined);
    expect(live).toHaveLength(1);
    expect(live[0]?.members.sort()).toEqual(['d1', 'd2', 'f']);
    const gone = all.find((i) => i.evidence.merged_into !== undefined);
    expect(gone?.status).toBe('resolved');
    expect(gone?.evidence.merged_into).toBe(live[0]?.id);
    expect(live[0]?.evidence.merged).toEqual([gone?.id]);
  });

  it('restores firing incidents: a member update after a restart joins the same incident, no new one opens', () => {
    const first = createIncidentCorrelator();
    const a = anomaly('fanout', { src: scanner, firstS: 0, detectedS: 20, evidence: { targets: ports(['cart']) } });
    first.observe(a, 'opened');
    const stored = first.all();

    const second = createIncidentCorrelator();
    second.restore(JSON.parse(JSON.stringify(stored)) as typeof stored);
    const out = [...second.observe(anomaly('deny_spike', { dst: 'cart', firstS: 30, detectedS: 50 }), 'opened'), ...second.observe({ ...a, status: 'resolved', last_seen: iso(80) }, 'resolved')];
    expect(out.map((c) => [c.change, c.incident.id])).toEqual([
      ['updated', stored[0]?.id],
      ['updated', stored[0]?.id],
    ]);
    expect(second.all()).toHaveLength(1);
    expect(second.all()[0]?.members).toHaveLength(2);
  });

  it('returns changes in event-time order, a held page before the anomaly that comes after it', () => {
    const correlator = createIncidentCorrelator({ holdSeconds: 30 });
    const first = correlator.observe(anomaly('deny_spike', { dst: 'cart', firstS: 0, detectedS: 20 }), 'opened');
    expect(first.map((c) => [c.change, c.incident.notify])).toEqual([['opened', false]]);
    const later = correlator.observe(anomaly('volume', { src: mallory, dst: 'ledger', firstS: 60, detectedS: 90 }), 'opened');
    expect(later.map((c) => [c.change, c.incident.notify, c.incident.detected_at])).toEqual([
      ['updated', true, iso(50)],
      ['opened', true, iso(90)],
    ]);
    expect(correlator.advanceTo(T0 + 200 * S)).toEqual([]);
  });
});

describe('workload names', () => {
  it.each([
    ['spiffe://cluster.local/ns/shop/sa/coupons', ['spiffe://cluster.local/ns/shop/sa/coupons', 'coupons']],
    ['spiffe://cluster.local/ns/shop/sa/default', ['spiffe://cluster.local/ns/shop/sa/default']],
    ['coupons.shop.svc.cluster.local', ['coupons.shop.svc.cluster.local', 'coupons']],
    ['10.1.2.3', ['10.1.2.3']],
    ['coupons', ['coupons']],
  ])('%s answers to %j', (name, aliases) => {
    expect(aliasesOf(name)).toEqual(aliases);
  });

  it('joins the server side (service name) and the client side (SPIFFE identity) of one certificate', () => {
    const correlator = createIncidentCorrelator();
    correlator.observe(anomaly('mtls_failure', { dst: 'coupons', firstS: 0, detectedS: 20, evidence: { role: 'server', peers: { 'spiffe://cluster.local/ns/web/sa/frontend': 30 } } }), 'opened');
    correlator.observe(anomaly('mtls_failure', { src: 'spiffe://cluster.local/ns/shop/sa/coupons', firstS: 1, detectedS: 20, evidence: { role: 'client', peers: { payments: 5, catalog: 4 } } }), 'opened');
    const [incident, ...others] = correlator.all();
    expect(others).toEqual([]);
    // The workload both sides have in common is the one whose certificate fails.
    expect(incident?.actors).toEqual(['coupons', 'spiffe://cluster.local/ns/shop/sa/coupons']);
    expect(incident?.targets).toEqual(['spiffe://cluster.local/ns/web/sa/frontend', 'payments', 'catalog']);
    expect(incident?.title).toBe('Certificate of spiffe://cluster.local/ns/shop/sa/coupons failing TLS handshakes with spiffe://cluster.local/ns/web/sa/frontend, payments, catalog (a certificate or CA problem).');
  });
});

describe('live memory', () => {
  it('forgets resolved incidents once nothing can join them, when asked to (a live process)', () => {
    const live = createIncidentCorrelator({ keepResolved: false });
    const replay = createIncidentCorrelator();
    const a = anomaly('new_edge', { src: attacker, dst: 'ledger', firstS: 0, detectedS: 20 });
    for (const c of [live, replay]) {
      c.observe(a, 'opened');
      c.observe({ ...a, status: 'resolved', last_seen: iso(60) }, 'resolved');
      c.advanceTo(T0 + 600 * S);
    }
    expect(live.all()).toHaveLength(1);
    for (const c of [live, replay]) c.advanceTo(T0 + 6 * 3600 * S);
    expect(live.all()).toEqual([]);
    expect(replay.all()).toHaveLength(1);
  });
});

describe('attribution in evidence', () => {
  it('takes the top sources a destination-level finding names as actors, down to a tenth of its denials', () => {
    const correlator = createIncidentCorrelator();
    const actors = [
      { src: scanner, denies: 80, share: 0.8 },
      { src: 'spiffe://cluster.local/ns/shop/sa/cart', denies: 12, share: 0.12 },
      { src: 'spiffe://cluster.local/ns/shop/sa/search', denies: 8, share: 0.08 },
    ];
    correlator.observe(anomaly('deny_spike', { dst: 'ledger', firstS: 0, detectedS: 20, evidence: { level: 'destination', actors } }), 'opened');
    correlator.observe(anomaly('fanout', { src: scanner, firstS: 0, detectedS: 30, evidence: { targets: ports(['cart']) } }), 'opened');
    const [incident, ...others] = correlator.all();
    expect(others).toEqual([]);
    expect(incident?.actors).toEqual([scanner, 'spiffe://cluster.local/ns/shop/sa/cart']);
    expect(incident?.evidence.links).toMatchObject({ [incident?.members[1] ?? '']: 'shared_actor' });
    // The title names the scan's source, not a caller denied near it.
    expect(incident?.title).toBe('Scan or lateral movement by 10.9.9.9 reaching 1 destination (cart).');
  });

  it('links by a named top source only when it holds most of the evidence', () => {
    const correlator = createIncidentCorrelator();
    const actors = [
      { src: scanner, denies: 70, share: 0.7 },
      { src: mallory, denies: 30, share: 0.3 },
    ];
    correlator.observe(anomaly('deny_spike', { dst: 'ledger', firstS: 0, detectedS: 20, evidence: { level: 'destination', actors } }), 'opened');
    correlator.observe(anomaly('volume', { src: mallory, dst: 'reports', firstS: 0, detectedS: 30 }), 'opened');
    expect(correlator.all()).toHaveLength(2);
  });
});

describe('reopening instead of paging again', () => {
  // A first finding from 0 s to 60 s, resolved at 60 s; a second one `gapS` after that.
  interface ReopenCase {
    readonly name: string;
    readonly first: { detector: string; src?: string | null; dst?: string | null; evidence?: Record<string, unknown> };
    readonly second: { detector: string; src?: string | null; dst?: string | null; evidence?: Record<string, unknown> };
    readonly gapS: number;
    readonly reopenSeconds?: number;
    readonly reopened: boolean;
  }
  const CASES_REOPEN: ReopenCase[] = [
    { name: 'same actor, same target, 10 min later: reopens', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: mallory, dst: 'reports' }, gapS: 600, reopened: true },
    { name: 'same actor, same target, another detector: reopens', first: { detector: 'authz_deny_burst', src: mallory, dst: 'ledger' }, second: { detector: 'new_edge', src: mallory, dst: 'ledger' }, gapS: 800, reopened: true },
    {
      name: 'same principal, same denying policy (no destination): reopens',
      first: { detector: 'authz_deny_burst', src: 'alice', evidence: { policies: { 'envoy/authz': 5 } } },
      second: { detector: 'authz_deny_burst', src: 'alice', evidence: { policies: { 'envoy/authz': 4 } } },
      gapS: 700,
      reopened: true,
    },
    { name: 'within the link gap: reopens too', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: mallory, dst: 'reports' }, gapS: 100, reopened: true },
    { name: 'same actor, another target, 10 min later: a new incident', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: mallory, dst: 'ledger' }, gapS: 600, reopened: false },
    { name: 'another actor, same target, 10 min later: a new incident', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: attacker, dst: 'reports' }, gapS: 600, reopened: false },
    { name: 'same actor and target beyond reopenSeconds: a new incident', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: mallory, dst: 'reports' }, gapS: 901, reopened: false },
    { name: 'reopenSeconds 0: a new incident', first: { detector: 'volume', src: mallory, dst: 'reports' }, second: { detector: 'volume', src: mallory, dst: 'reports' }, gapS: 600, reopenSeconds: 0, reopened: false },
    { name: 'no actor on either: a new incident', first: { detector: 'deny_spike', dst: 'reports' }, second: { detector: 'volume', dst: 'reports' }, gapS: 600, reopened: false },
  ];
  for (const c of CASES_REOPEN) {
    it(c.name, () => {
      const correlator = createIncidentCorrelator({ holdSeconds: 0, ...(c.reopenSeconds === undefined ? {} : { reopenSeconds: c.reopenSeconds }) });
      const a = anomaly(c.first.detector, { ...c.first, firstS: 0, detectedS: 20, lastS: 20 });
      const first = correlator.observe(a, 'opened');
      correlator.observe({ ...a, status: 'resolved', last_seen: iso(60) }, 'resolved');
      const b = anomaly(c.second.detector, { ...c.second, firstS: 60 + c.gapS, detectedS: 80 + c.gapS });
      const out = correlator.observe(b, 'opened');
      const firstId = first[0]?.incident.id;
      const all = correlator.all();
      for (const incident of all) expect([...Value.Errors(IncidentSchema, incident)]).toEqual([]);
      if (c.reopened) {
        expect(all).toHaveLength(1);
        expect(out.map((ch) => [ch.change, ch.incident.id, ch.incident.status])).toEqual([['updated', firstId, 'firing']]);
        expect(all[0]?.timeline.map((t) => t.change)).toEqual(['opened', 'resolved', 'reopened']);
        expect(all[0]?.evidence.reopened).toBe(1);
        expect(all[0]?.evidence.paged_before_reopen).toBe(true);
        // Paged once: detected_at stays that of the first page.
        expect(all[0]?.detected_at).toBe(iso(20));
      } else {
        expect(all).toHaveLength(2);
        expect(out.map((ch) => ch.change)).toEqual(['opened']);
        expect(out[0]?.incident.id).not.toBe(firstId);
      }
    });
  }
});
