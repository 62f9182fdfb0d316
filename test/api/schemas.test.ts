// Schemas the API writes by hand where deriving them would lose their plain types: each is checked
// here against the definition it mirrors, so a new event field cannot silently drop out.
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS } from '../../core/event.ts';
import { ACCESS_COLUMNS } from '../../store/access-queries.ts';
import { AccessItemSchema } from '../../api/schemas.ts';

describe('AccessItemSchema', () => {
  it('has exactly the access columns, in order, plus the optional raw line', () => {
    expect(Object.keys(AccessItemSchema.properties)).toEqual([...ACCESS_COLUMNS, 'raw']);
    expect(AccessItemSchema.required).not.toContain('raw');
  });

  it('access history reads every field of the event', () => {
    expect([...EVENT_FIELDS].sort()).toEqual([...ACCESS_COLUMNS.filter((c) => !c.startsWith('authz_')), 'raw'].sort());
    expect(ACCESS_COLUMNS.slice(0, 2)).toEqual(['time', 'event_id']);
  });
});
