import type { RequestContext } from '@token-ledger/domain';
import type { FamilyView } from '@token-ledger/domain';
import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';
import { header, type Projection, type SqlRebuild } from './projection';

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
        ...(typeof d.dpopJkt === 'string' ? { dpopJkt: d.dpopJkt } : {}),
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
  dpop_jkt?: string | null;
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
    ...(typeof r.dpop_jkt === 'string' ? { dpopJkt: r.dpop_jkt } : {}),
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
                                idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, last_context, dpop_jkt, position)
       select r."familyId", r.subject, r."clientId", r.scope, r.status, r.generation, r."createdAt", r."lastUsedAt",
              r."idleExpiresAt", r."absoluteExpiresAt", r."revokedAt", r."revokedReason", r."lastContext", r."dpopJkt", r.position
         from jsonb_to_recordset($1::jsonb) as r("familyId" text, subject text, "clientId" text, scope jsonb, status text,
              generation integer, "createdAt" timestamptz, "lastUsedAt" timestamptz, "idleExpiresAt" timestamptz,
              "absoluteExpiresAt" timestamptz, "revokedAt" timestamptz, "revokedReason" text, "lastContext" jsonb, "dpopJkt" text, position bigint)
       on conflict (family_id) do update set
         subject = excluded.subject, client_id = excluded.client_id, scope = excluded.scope, status = excluded.status,
         generation = excluded.generation, created_at = excluded.created_at, last_used_at = excluded.last_used_at,
         idle_expires_at = excluded.idle_expires_at, absolute_expires_at = excluded.absolute_expires_at,
         revoked_at = excluded.revoked_at, revoked_reason = excluded.revoked_reason, last_context = excluded.last_context,
         dpop_jkt = excluded.dpop_jkt, position = excluded.position`,
      [JSON.stringify(rows)],
    );
  },
};

/**
 * evolveFamilyView as one SQL statement over tl_events (rebuild): every family folded in a single
 * pass, no row read back, no upsert. The JavaScript fold above stays the definition; this is its
 * set-based image, and the tests hold the two equal for every event type and order
 * (rebuild.int.spec.ts on random histories, test/support/read-model-suite.ts on real ones).
 *
 * How the fold maps (per family = events whose metadata.familyId is set, in position order):
 *  - the view exists from its first TokenFamilyIssued or TokenFamilyRevoked on (`defined_at`);
 *    TokenRotated / TokenRotationReplayed / TokenFamilyExpired before that change nothing;
 *  - TokenFamilyIssued sets subject, client, scope, generation, createdAt, lastUsedAt, both expiries,
 *    lastContext (its context, even none) and dpopJkt (its key, even none); the last one wins;
 *  - TokenRotated sets generation and idleExpiresAt; it and TokenRotationReplayed set lastUsedAt
 *    (occurredAt) and, when they carry one, lastContext. Each such field comes from the family's
 *    last event that sets it, which counts if it is not before `defined_at` (an issue never is;
 *    when the last one is before, so are all the others);
 *  - status: a TokenFamilyRevoked counts unless the family is expired at that point, i.e. unless a
 *    TokenFamilyExpired came after the last TokenFamilyIssued before it; the first that counts gives
 *    revokedAt/revokedReason and the view stays revoked (a revocation before any issue makes the
 *    base view: subject and client from it, scope [], generation 0). Otherwise it is expired when a
 *    TokenFamilyExpired came after the last TokenFamilyIssued, else active;
 *  - position: the family's last event of any type.
 * "Last" and "first" are array ends: each family's events reach the aggregates in position order,
 * from the sorted subquery (familyId, position).
 */
export const familySqlRebuild: SqlRebuild = {
  granularity: 'fold',
  costPerEvent: 1.1,
  async fill(q, tables, events) {
    const I = `'TokenFamilyIssued'`;
    const R = `'TokenFamilyRevoked'`;
    const X = `'TokenFamilyExpired'`;
    const ROT = `'TokenRotated'`;
    const USE = `'TokenRotated', 'TokenRotationReplayed'`;
    const last = (a: string) => `${a}[cardinality(${a})]`;
    await q.query(
      `insert into ${tables.rm_families} (family_id, subject, client_id, scope, status, generation, created_at, last_used_at,
                                  idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, last_context, dpop_jkt, position)
       select family_id,
              coalesce(${last('i_subject')}, r_subject[r]),
              coalesce(${last('i_client')}, r_client[r]),
              case when cardinality(i_scope) > 0 then ${last('i_scope')} else '[]'::jsonb end,
              case when r is not null then 'revoked' when last_expired > last_issued then 'expired' else 'active' end,
              case when generation_at >= defined_at then ${last('generations')}::integer else 0 end,
              ${last('i_created')}::timestamptz,
              case when used_at >= defined_at then ${last('used')}::timestamptz end,
              case when generation_at >= defined_at then ${last('idle')}::timestamptz end,
              ${last('i_absolute')}::timestamptz,
              r_at[r]::timestamptz,
              r_reason[r],
              case when context_at >= defined_at then ${last('contexts')} end,
              ${last('i_jkt')},
              position
         from (
           select g.*,
                  -- which revocation counts: the first, unless an expiry came before it (then the first
                  -- with no expiry after the last issue before it)
                  case when r_positions is null then null when last_expired is null then 1 else (
                    select min(o) from unnest(r_positions) with ordinality as rp(p, o)
                     where not coalesce((select max(x) from unnest(expirations) x where x < rp.p)
                                        > (select max(i) from unnest(issues) i where i < rp.p), false)) end as r
             from (
               select family_id, max(p) as position,
                      min(p) filter (where t in (${I}, ${R})) as defined_at,
                      max(p) filter (where t = ${I}) as last_issued,
                      max(p) filter (where t = ${X}) as last_expired,
                      array_agg(p) filter (where t = ${I}) as issues,
                      array_agg(p) filter (where t = ${X}) as expirations,
                      array_agg(subject) filter (where t = ${I}) as i_subject,
                      array_agg(client_id) filter (where t = ${I}) as i_client,
                      array_agg(scope) filter (where t = ${I}) as i_scope,
                      array_agg(created_at) filter (where t = ${I}) as i_created,
                      array_agg(absolute_expires_at) filter (where t = ${I}) as i_absolute,
                      array_agg(dpop_jkt) filter (where t = ${I}) as i_jkt,
                      array_agg(p) filter (where t = ${R}) as r_positions,
                      array_agg(subject) filter (where t = ${R}) as r_subject,
                      array_agg(client_id) filter (where t = ${R}) as r_client,
                      array_agg(revoked_at) filter (where t = ${R}) as r_at,
                      array_agg(reason) filter (where t = ${R}) as r_reason,
                      max(p) filter (where t in (${I}, ${ROT})) as generation_at,
                      array_agg(generation) filter (where t in (${I}, ${ROT})) as generations,
                      array_agg(idle_expires_at) filter (where t in (${I}, ${ROT})) as idle,
                      max(p) filter (where t in (${I}, ${USE})) as used_at,
                      array_agg(case when t = ${I} then created_at else occurred_at end) filter (where t in (${I}, ${USE})) as used,
                      max(p) filter (where t = ${I} or (t in (${USE}) and context is not null)) as context_at,
                      array_agg(context) filter (where t = ${I} or (t in (${USE}) and context is not null)) as contexts
                 from (
                   -- only what the fold reads, extracted before the sort
                   select position as p, type as t, (metadata ->> 'familyId') collate "C" as family_id,
                          case when type in (${I}, ${R}) then coalesce(metadata ->> 'subject', '') end as subject,
                          case when type in (${I}, ${R}) then coalesce(metadata ->> 'clientId', '') end as client_id,
                          case when type in (${USE}) then metadata ->> 'occurredAt' end as occurred_at,
                          case when type = ${I} then data -> 'scope' end as scope,
                          case when type = ${I} then data ->> 'createdAt' end as created_at,
                          case when type = ${I} then data ->> 'absoluteExpiresAt' end as absolute_expires_at,
                          case when type = ${I} and jsonb_typeof(data -> 'dpopJkt') = 'string' then data ->> 'dpopJkt' end as dpop_jkt,
                          case when type in (${I}, ${ROT}) then data ->> 'generation' end as generation,
                          case when type in (${I}, ${ROT}) then data ->> 'idleExpiresAt' end as idle_expires_at,
                          case when type = ${R} then data ->> 'revokedAt' end as revoked_at,
                          case when type = ${R} then data ->> 'reason' end as reason,
                          case when type in (${I}, ${USE}) then nullif(data -> 'context', 'null'::jsonb) end as context
                     from tl_events
                    where ${events.where} and metadata ->> 'familyId' <> ''
                    order by 3, 1
                 ) ev
                group by family_id
               having bool_or(t in (${I}, ${R}))
             ) g
         ) f`,
      events.params,
    );
  },
};
