import { describe, expect, it } from 'vitest';
import { insertAuditRecord, queryAuditLog } from '../../store/audit-queries.ts';
import { useTestStore } from '../helpers/store.ts';

describe('audit log queries', () => {
  const db = useTestStore();

  it('writes every audit record, even identical ones in the same millisecond, and pages newest first', async () => {
    const timeMs = Date.now();
    for (let i = 0; i < 25; i++) {
      await insertAuditRecord(db.store, { timeMs: timeMs + (i % 5), actor: i % 2 ? 'alice' : 'bob', role: 'auditor', action: 'access.query', filters: { identity: 'x' }, rows: 3, status: 200, remoteAddr: '127.0.0.1' });
    }
    const seen: string[] = [];
    let after;
    for (;;) {
      const page = await queryAuditLog(db.store, { limit: 4, after });
      seen.push(...page.rows.map((r) => `${r.time}/${r.row_key}`));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toHaveLength(25);
    const alice = await queryAuditLog(db.store, { actor: 'alice', limit: 100 });
    expect(alice.rows).toHaveLength(12);
    expect(alice.rows[0]).toMatchObject({ actor: 'alice', role: 'auditor', action: 'access.query', filters: '{"identity":"x"}', rows: 3, status: 200, remote_addr: '127.0.0.1' });
  });
});
