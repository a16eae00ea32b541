import type { SqlQueryable } from '@token-ledger/event-store';

/**
 * The ids of the SSF streams created and not deleted, oldest first, from the audit view (its type index): the
 * list endpoint then reads each stream itself, so what it shows of a stream (configuration, deleted
 * or not) is never stale; only a stream created a moment ago may be missing until the audit
 * projection has caught up. No table of its own: nothing to rebuild besides rm_audit.
 */
export async function ssfStreamIdsCreated(sql: SqlQueryable, limit: number): Promise<string[]> {
  const rows = await sql.query<{ stream_id: string }>(
    `select c.data ->> 'streamId' as stream_id from rm_audit c
      where c.type = 'SsfStreamCreated'
        and not exists (select 1 from rm_audit d where d.type = 'SsfStreamDeleted' and d.data ->> 'streamId' = c.data ->> 'streamId')
      order by c.position asc limit $1`,
    [limit],
  );
  return rows.map((r) => r.stream_id);
}
