import type { RequestContext } from '@token-ledger/domain';
import type { FamilyView } from '@token-ledger/forensics';
import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection } from './projection';

/** The one family shape of SPEC §3, shared with forensic replay. */
export type { FamilyView };

type Data = Record<string, any>;

/**
 * Folds one event into the view. Pure and independent of the decider's state (which holds hashes
 * and policy), so tests can check the projection against the domain's own evolve.
 */
export function evolveFamilyView(view: FamilyView | undefined, event: RecordedEvent): FamilyView | undefined {
  const h = header(event);
  const d = event.data as Data;
  const context = (d?.context as RequestContext | undefined) ?? null;
  switch (event.type) {
    case 'TokenFamilyIssued':
      return {
        familyId: h.familyId,
        subject: h.subject,
        clientId: h.clientId,
        scope: d.scope,
        status: view?.status === 'revoked' ? 'revoked' : 'active',
        generation: d.generation,
        createdAt: d.createdAt,
        lastUsedAt: d.createdAt,
        idleExpiresAt: d.idleExpiresAt,
        absoluteExpiresAt: d.absoluteExpiresAt,
        revokedAt: view?.revokedAt ?? null,
        revokedReason: view?.revokedReason ?? null,
        lastContext: context,
      };
    case 'TokenRotated':
      return view && { ...view, generation: d.generation, lastUsedAt: h.occurredAt, idleExpiresAt: d.idleExpiresAt, lastContext: context ?? view.lastContext };
    case 'TokenRotationReplayed':
      return view && { ...view, lastUsedAt: h.occurredAt, lastContext: context ?? view.lastContext };
    case 'TokenFamilyRevoked': {
      // Also the pre-emptive revocation of a family whose TokenFamilyIssued never comes.
      const base: FamilyView = view ?? {
        familyId: h.familyId,
        subject: h.subject,
        clientId: h.clientId,
        scope: [],
        status: 'revoked',
        generation: 0,
        createdAt: null,
        lastUsedAt: null,
        idleExpiresAt: null,
        absoluteExpiresAt: null,
        revokedAt: null,
        revokedReason: null,
        lastContext: null,
      };
      if (base.status !== 'active' && view) return view; // first ending wins
      return { ...base, status: 'revoked', revokedAt: d.revokedAt, revokedReason: d.reason };
    }
    case 'TokenFamilyExpired':
      return view && view.status === 'active' ? { ...view, status: 'expired' } : view;
    default:
      return view; // RefreshRejected, TokenReuseDetected, AccessTokenRevoked change nothing shown here
  }
}

interface FamilyRow {
  family_id: string;
  subject: string;
  client_id: string;
  scope: string[];
  status: FamilyView['status'];
  generation: number;
  created_at: Date | string | null;
  last_used_at: Date | string | null;
  idle_expires_at: Date | string | null;
  absolute_expires_at: Date | string | null;
  revoked_at: Date | string | null;
  revoked_reason: string | null;
  last_context: RequestContext | null;
}

const iso = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

export function rowToFamilyView(r: FamilyRow): FamilyView {
  return {
    familyId: r.family_id,
    subject: r.subject,
    clientId: r.client_id,
    scope: r.scope,
    status: r.status,
    generation: Number(r.generation),
    createdAt: iso(r.created_at),
    lastUsedAt: iso(r.last_used_at),
    idleExpiresAt: iso(r.idle_expires_at),
    absoluteExpiresAt: iso(r.absolute_expires_at),
    revokedAt: iso(r.revoked_at),
    revokedReason: r.revoked_reason,
    lastContext: r.last_context,
  };
}

/** family view + subject sessions (the same table, indexed by subject and status). */
export const familyProjection: Projection = {
  name: 'families',
  tables: ['rm_families'],
  async apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void> {
    const touched = new Map<string, { view: FamilyView | undefined; position: number }>();
    const ids = [...new Set(events.map((e) => header(e).familyId).filter(Boolean))];
    if (ids.length === 0) return;
    const existing = await tx.query<FamilyRow>('select * from rm_families where family_id = any($1::text[])', [ids]);
    for (const row of existing) touched.set(row.family_id, { view: rowToFamilyView(row), position: 0 });
    for (const event of events) {
      const id = header(event).familyId;
      if (!id) continue;
      const current = touched.get(id);
      touched.set(id, { view: evolveFamilyView(current?.view, event), position: event.position });
    }
    const rows = [...touched.values()].filter((t) => t.view && t.position > 0).map(({ view, position }) => ({ ...view!, position }));
    if (rows.length === 0) return;
    // One statement for the whole batch.
    await tx.query(
      `insert into rm_families (family_id, subject, client_id, scope, status, generation, created_at, last_used_at,
                                idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, last_context, position)
       select r."familyId", r.subject, r."clientId", r.scope, r.status, r.generation, r."createdAt", r."lastUsedAt",
              r."idleExpiresAt", r."absoluteExpiresAt", r."revokedAt", r."revokedReason", r."lastContext", r.position
         from jsonb_to_recordset($1::jsonb) as r("familyId" text, subject text, "clientId" text, scope jsonb, status text,
              generation integer, "createdAt" timestamptz, "lastUsedAt" timestamptz, "idleExpiresAt" timestamptz,
              "absoluteExpiresAt" timestamptz, "revokedAt" timestamptz, "revokedReason" text, "lastContext" jsonb, position bigint)
       on conflict (family_id) do update set
         subject = excluded.subject, client_id = excluded.client_id, scope = excluded.scope, status = excluded.status,
         generation = excluded.generation, created_at = excluded.created_at, last_used_at = excluded.last_used_at,
         idle_expires_at = excluded.idle_expires_at, absolute_expires_at = excluded.absolute_expires_at,
         revoked_at = excluded.revoked_at, revoked_reason = excluded.revoked_reason, last_context = excluded.last_context,
         position = excluded.position`,
      [JSON.stringify(rows)],
    );
  },
};
