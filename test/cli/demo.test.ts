import { describe, expect, it } from 'vitest';
import type { Incident } from '../../core/incident.ts';
import { describeIncidentChange } from '../../cli/commands/demo.ts';

const base: Incident = {
  id: 'inc-1',
  title: 'Denials of 2 callers (a, b) at cart: one policy likely broke their access.',
  severity: 'medium',
  status: 'firing',
  first_seen: '2026-01-05T09:00:00.000Z',
  detected_at: '2026-01-05T09:00:20.000Z',
  last_seen: '2026-01-05T09:00:20.000Z',
  actors: ['a', 'b'],
  targets: ['cart'],
  members: ['x'],
  timeline: [],
  evidence: {},
  notify: true,
};

describe('demo output', () => {
  it.each<[string, Partial<Incident>, 'opened' | 'updated' | 'resolved', Incident | undefined, string | undefined]>([
    ['opening', {}, 'opened', undefined, '[2026-01-05T09:00:20.000Z] INCIDENT OPENED medium inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access. (paging)'],
    ['a held opening', { notify: false }, 'opened', undefined, '[2026-01-05T09:00:20.000Z] INCIDENT OPENED medium inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access.'],
    ['its page after the hold', {}, 'updated', { ...base, notify: false }, '[2026-01-05T09:00:20.000Z] INCIDENT PAGED medium inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access.'],
    ['an escalation', { severity: 'high', last_seen: '2026-01-05T09:01:00.000Z' }, 'updated', base, '[2026-01-05T09:01:00.000Z] INCIDENT ESCALATED medium → high inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access.'],
    ['an anomaly joining', { members: ['x', 'y'], last_seen: '2026-01-05T09:00:40.000Z' }, 'updated', base, '[2026-01-05T09:00:40.000Z] INCIDENT GREW medium inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access. (2 anomalies)'],
    ['a quiet update', { last_seen: '2026-01-05T09:00:40.000Z' }, 'updated', base, undefined],
    ['its resolution', { status: 'resolved', last_seen: '2026-01-05T09:05:00.000Z' }, 'resolved', base, '[2026-01-05T09:05:00.000Z] INCIDENT RESOLVED medium inc-1: Denials of 2 callers (a, b) at cart: one policy likely broke their access.'],
    ['a merge', { status: 'resolved', evidence: { merged_into: 'inc-0' } }, 'resolved', base, '[2026-01-05T09:00:20.000Z] INCIDENT MERGED inc-1 into inc-0'],
  ])('prints %s', (_name, fields, change, previous, line) => {
    expect(describeIncidentChange({ incident: { ...base, ...fields }, change }, previous)).toBe(line);
  });
});
