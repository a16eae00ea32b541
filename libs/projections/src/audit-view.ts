import { publicEventData } from '@token-ledger/domain';
import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection, type SqlRebuild } from './projection';

const AUDIT_COLUMNS = '(position, event_id, type, family_id, subject, client_id, ip, occurred_at, data, metadata)';

/**
 * The rows `apply` writes, built in SQL from the events of tl_events that match `where`. Field by
 * field: header fields come from metadata, '' counts as absent (`|| null`); the ip is the command's
 * context ip, else the one in the payload; occurredAt falls back to recordedAt, which JavaScript
 * sees with millisecond precision; publicEventData drops the secretHash of ClientRegistered and
 * ClientSecretRotated, and an ApiKeyCreated's keyHash.
 */
function auditRowsOf(where: string): string {
  return `select position, event_id, type,
              nullif(metadata ->> 'familyId', ''), nullif(metadata ->> 'subject', ''), nullif(metadata ->> 'clientId', ''),
              nullif(coalesce(metadata -> 'context' ->> 'ip', data -> 'context' ->> 'ip'), ''),
              coalesce((metadata ->> 'occurredAt')::timestamptz, date_trunc('milliseconds', recorded_at)),
              case when jsonb_typeof(data) <> 'object' then data
                   when type in ('ClientRegistered', 'ClientSecretRotated') then data - 'secretHash'
                   when type = 'ApiKeyCreated' then data - 'keyHash' else data end,
              metadata
         from tl_events
        where ${where}`;
}

/** Every event, flattened for filtering (subject, client, family, type, ip, time). */
export const auditProjection: Projection = {
  name: 'audit',
  tables: ['rm_audit'],
  /**
   * The same rows straight from tl_events: each event's data and metadata would otherwise go to
   * JavaScript and back as JSON text, which cost the database about 20 µs a row more (and the
   * runner's thread the JSON.stringify; bench/refresh/README.md).
   */
  async applyFromEventsTable(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await tx.query(`insert into rm_audit ${AUDIT_COLUMNS} ${auditRowsOf('position = any($1::bigint[])')} on conflict (position) do nothing`, [
      events.map((e) => e.position),
    ]);
  },
  async apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const rows = events.map((e) => {
      const h = header(e);
      const ip = ((e.metadata.context as { ip?: string } | undefined)?.ip ?? (e.data as { context?: { ip?: string } })?.context?.ip) || null;
      return {
        position: e.position,
        eventId: e.eventId,
        type: e.type,
        familyId: h.familyId || null,
        subject: h.subject || null,
        clientId: h.clientId || null,
        ip,
        occurredAt: h.occurredAt ?? e.recordedAt.toISOString(),
        data: publicEventData(e.type, e.data),
        metadata: e.metadata,
      };
    });
    await tx.query(
      `insert into rm_audit ${AUDIT_COLUMNS}
       select r.position, r."eventId", r.type, r."familyId", r.subject, r."clientId", r.ip, r."occurredAt", r.data, r.metadata
         from jsonb_to_recordset($1::jsonb) as r(position bigint, "eventId" uuid, type text, "familyId" text, subject text,
              "clientId" text, ip text, "occurredAt" timestamptz, data jsonb, metadata jsonb)
       on conflict (position) do nothing`,
      [JSON.stringify(rows)],
    );
  },
};

/** The same rows as `apply`, built in SQL from (a slice of) tl_events (rebuild). */
export const auditSqlRebuild: SqlRebuild = {
  granularity: 'rows',
  costPerEvent: 1,
  async fill(q, tables, events) {
    await q.query(`insert into ${tables.rm_audit} ${AUDIT_COLUMNS} ${auditRowsOf(events.where)}`, events.params);
  },
};
