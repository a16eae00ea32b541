import type { SqlQueryable } from '@token-ledger/event-store';
import { toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import { rowToFamilyView, type FamilyView } from './family-view';

/** A list answer (SPEC §3). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Cursors are opaque to callers: a position, base64url-encoded with a tag so garbage is refused. */
export function encodeCursor(position: number): string {
  return Buffer.from(`p:${position}`).toString('base64url');
}

export function decodeCursor(cursor: string): number | null {
  const m = /^p:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

/** Family lists page by (createdAt, familyId), which never changes for a family. */
export function encodeFamilyCursor(createdAt: string | null, familyId: string): string {
  return Buffer.from(`f:${createdAt ? Date.parse(createdAt) : 0}:${familyId}`).toString('base64url');
}

export function decodeFamilyCursor(cursor: string): { createdAt: number; familyId: string } | null {
  const m = /^f:(\d{1,16}):(fam_[0-9a-z]{26})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { createdAt: Number(m[1]), familyId: m[2] } : null;
}

/** Effective status: an active family past its expiry is expired even before the sweeper records it. */
const STATUS_SQL = `case when status = 'active' and least(idle_expires_at, absolute_expires_at) <= now() then 'expired' else status end`;

export async function getFamily(sql: SqlQueryable, familyId: string): Promise<FamilyView | undefined> {
  const rows = await sql.query<any>(`select *, ${STATUS_SQL} as status from rm_families where family_id = $1`, [familyId]);
  return rows[0] ? rowToFamilyView(rows[0]) : undefined;
}

export async function listSubjectFamilies(
  sql: SqlQueryable,
  q: { subject: string; status?: string; cursor?: { createdAt: number; familyId: string }; limit: number },
): Promise<Page<FamilyView>> {
  // Newest first, the signed-in devices list.
  const rows = await sql.query<any>(
    `select * from (select *, ${STATUS_SQL} as effective from rm_families where subject = $1) f
      where ($2::text is null or f.effective = $2)
        and ($3::timestamptz is null or (coalesce(f.created_at, 'epoch'), f.family_id) < ($3::timestamptz, $4::text))
      order by coalesce(f.created_at, 'epoch') desc, f.family_id desc limit $5`,
    [q.subject, q.status ?? null, q.cursor ? new Date(q.cursor.createdAt).toISOString() : null, q.cursor?.familyId ?? null, q.limit + 1],
  );
  const items = rows.slice(0, q.limit).map((r) => rowToFamilyView({ ...r, status: r.effective }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > q.limit ? encodeFamilyCursor(last.createdAt, last.familyId) : null };
}

/** The status (active, revoked, expired) of each family of a subject at one client that the view holds. */
export async function familyStatusesOf(sql: SqlQueryable, subject: string, clientId: string): Promise<Map<string, FamilyView['status']>> {
  const rows = await sql.query<{ family_id: string; status: FamilyView['status'] }>(
    `select family_id, ${STATUS_SQL} as status from rm_families where subject = $1 and client_id = $2`,
    [subject, clientId],
  );
  return new Map(rows.map((r) => [r.family_id, r.status]));
}

/** Active families of a client, oldest first (for DisableClient with revokeFamilies). */
export async function activeFamiliesOfClient(sql: SqlQueryable, clientId: string): Promise<string[]> {
  const rows = await sql.query<{ family_id: string }>(
    `select family_id from rm_families where client_id = $1 and status = 'active' order by created_at asc, family_id`,
    [clientId],
  );
  return rows.map((r) => r.family_id);
}

/** Families whose idle or absolute expiry has passed but whose expiry is not recorded yet. */
export async function familiesDueForExpiry(sql: SqlQueryable, limit: number): Promise<string[]> {
  const rows = await sql.query<{ family_id: string }>(
    // sweep_at (the expiry's minute, indexed) finds the candidates; the exact expiry decides.
    `select family_id from rm_families
      where status = 'active' and sweep_at <= now() and least(idle_expires_at, absolute_expires_at) <= now()
      order by sweep_at limit $1`,
    [limit],
  );
  return rows.map((r) => r.family_id);
}

export interface AuditQuery {
  subject?: string;
  clientId?: string;
  familyId?: string;
  type?: string;
  ip?: string;
  from?: string;
  to?: string;
  cursor?: number;
  limit: number;
  order: 'desc' | 'asc';
}

/** Audit answers use the one public event shape (SPEC §3). */
export type AuditEvent = PublicEvent;

export async function searchAudit(sql: SqlQueryable, q: AuditQuery): Promise<Page<AuditEvent>> {
  const after = q.order === 'asc';
  const rows = await sql.query<any>(
    `select * from rm_audit
      where ($1::text is null or subject = $1) and ($2::text is null or client_id = $2) and ($3::text is null or family_id = $3)
        and ($4::text is null or type = $4) and ($5::text is null or ip = $5)
        and ($6::timestamptz is null or occurred_at >= $6) and ($7::timestamptz is null or occurred_at < $7)
        and ($8::bigint is null or position ${after ? '>' : '<'} $8)
      order by position ${after ? 'asc' : 'desc'} limit $9`,
    [q.subject ?? null, q.clientId ?? null, q.familyId ?? null, q.type ?? null, q.ip ?? null, q.from ?? null, q.to ?? null, q.cursor ?? null, q.limit + 1],
  );
  const items = rows.slice(0, q.limit).map((r) =>
    toPublicEvent({ eventId: r.event_id, type: r.type, data: r.data, metadata: r.metadata, position: Number(r.position), streamId: '', revision: 0, recordedAt: new Date(r.occurred_at) }),
  );
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1].position) : null };
}

export interface AnomalyView {
  anomalyId: string;
  rule: string;
  severity: string;
  familyId: string | null;
  subject: string | null;
  detectedAt: string;
  evidence: unknown;
  action: string;
  /** Triage (AnomalyAcknowledged / AnomalyDismissed): open until an analyst acts. */
  status: 'open' | 'acknowledged' | 'dismissed';
  statusBy: string | null;
  statusAt: string | null;
  statusNote: string | null;
}

export async function searchAnomalies(
  sql: SqlQueryable,
  q: { subject?: string; familyId?: string; rule?: string; severity?: string; status?: string; cursor?: number; limit: number },
): Promise<Page<AnomalyView>> {
  const rows = await sql.query<any>(
    `select * from rm_anomalies
      where ($1::text is null or subject = $1) and ($2::text is null or family_id = $2) and ($3::text is null or rule = $3)
        and ($4::text is null or severity = $4) and ($5::bigint is null or position < $5) and ($7::text is null or status = $7)
      order by position desc limit $6`,
    [q.subject ?? null, q.familyId ?? null, q.rule ?? null, q.severity ?? null, q.cursor ?? null, q.limit + 1, q.status ?? null],
  );
  const items = rows.slice(0, q.limit).map((r) => ({
    anomalyId: r.anomaly_id,
    rule: r.rule,
    severity: r.severity,
    familyId: r.family_id,
    subject: r.subject,
    detectedAt: new Date(r.detected_at).toISOString(),
    evidence: r.evidence,
    action: r.action,
    status: r.status,
    statusBy: r.status_by ?? null,
    statusAt: r.status_at ? new Date(r.status_at).toISOString() : null,
    statusNote: r.status_note ?? null,
  }));
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(Number(rows[q.limit - 1].position)) : null };
}

/** A SubjectRevoked seen in the audit view, and whether a SubjectRevocationCompleted followed it. */
export interface SubjectRevocationRow {
  position: number;
  subject: string;
  reason: string;
  revokedAt: Date;
  completed: boolean;
}

/**
 * SubjectRevoked events after `after`, oldest first, up to `limit`, each with whether the same
 * subject has a SubjectRevocationCompleted after it (the subject-revocation reconciler's scan).
 * Walks the (type, position) index from `after`, so a caller that remembers how far it got never
 * rescans old revocations. The audit view can lag the store: the command side has the last word.
 */
export async function subjectRevocationsAfter(sql: SqlQueryable, after: number, limit: number): Promise<SubjectRevocationRow[]> {
  const rows = await sql.query<{ position: string | number; subject: string; reason: string | null; occurred_at: Date | string; completed: boolean }>(
    `select r.position, r.subject, r.data ->> 'reason' as reason, r.occurred_at,
            exists (select 1 from rm_audit c
                     where c.subject = r.subject and c.position > r.position and c.type = 'SubjectRevocationCompleted') as completed
       from rm_audit r
      where r.type = 'SubjectRevoked' and r.position > $1 and r.subject is not null
      order by r.position limit $2`,
    [after, limit],
  );
  return rows.map((r) => ({
    position: Number(r.position),
    subject: r.subject,
    reason: r.reason ?? 'subject_revoked',
    revokedAt: new Date(r.occurred_at),
    completed: r.completed,
  }));
}
