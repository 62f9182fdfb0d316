import { describe, expect, it } from 'vitest';
import { alertsFromIncidents, scoreAlerts, type PagedIncident } from '../../detectors/evaluation.ts';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const iso = (offsetS: number) => new Date(T0 + offsetS * 1000).toISOString();

function incident(overrides: Partial<PagedIncident>): PagedIncident {
  return {
    title: 'Denial spike of spiffe://td/ns/a/sa/web at api.',
    severity: 'high',
    detected_at: iso(0),
    last_seen: iso(600),
    actors: ['spiffe://td/ns/a/sa/web'],
    targets: ['api'],
    notify: true,
    timeline: [{ at: iso(0), severity: 'high' }],
    ...overrides,
  };
}

describe('eval counts pages as a human receives them', () => {
  it('counts an incident that paged below critical and reached critical later as a second page', () => {
    const escalated = incident({ severity: 'critical', timeline: [{ at: iso(0), severity: 'high' }, { at: iso(5), severity: 'high' }, { at: iso(120), severity: 'critical' }] });
    const pages = alertsFromIncidents([escalated]);
    expect(pages.map((p) => [p.kind, p.firedMs - T0])).toEqual([
      ['incident', 0],
      ['incident_critical', 120_000],
    ]);
    // Both name the attack: two true pages for one attack.
    const label = { class: 'policy_misconfiguration', src: null, dst: 'api', start: iso(-30), end: iso(900) };
    const score = scoreAlerts(pages, [label], 1);
    expect(score.matchedAlerts).toBe(2);
    expect(score.classes.policy_misconfiguration?.latenciesSeconds).toEqual([30]);
  });

  it('counts one page when the incident is critical from the start or within 10 s of paging', () => {
    const fromStart = incident({ severity: 'critical', timeline: [{ at: iso(0), severity: 'critical' }] });
    const soon = incident({ severity: 'critical', timeline: [{ at: iso(0), severity: 'medium' }, { at: iso(10), severity: 'critical' }] });
    // Critical before the (held) page: it leaves with the first notification.
    const beforePage = incident({ severity: 'critical', detected_at: iso(30), timeline: [{ at: iso(0), severity: 'critical' }] });
    const neverCritical = incident({ timeline: [{ at: iso(0), severity: 'medium' }, { at: iso(300), severity: 'high' }] });
    expect(alertsFromIncidents([fromStart, soon, beforePage, neverCritical]).map((p) => p.kind)).toEqual(['incident', 'incident', 'incident', 'incident']);
  });

  it('counts no page for an incident that never notified, even when it reached critical', () => {
    expect(alertsFromIncidents([incident({ notify: false, severity: 'critical', timeline: [{ at: iso(100), severity: 'critical' }] })])).toEqual([]);
  });
});
