import { createHash } from 'node:crypto';

import type { SqlClient } from '@token-ledger/event-store';

/**
 * Fills an empty event store with realistic history in a few SQL statements (not timed): F token
 * families, each written as the app writes them (see libs/envelope/src/new-event.ts,
 * libs/domain/src/events.ts and the hash chain of libs/envelope):
 *
 *   subject-<sub>    FamilyLinkedToSubject           (actor admin, same request as the issue)
 *   family-<fam>     TokenFamilyIssued               revision 0, generation 1
 *   family-<fam>     TokenRotated × 7                revisions 1..7, generations 2..8, every ~5 min
 *   family-<fam>     TokenFamilyRevoked (logout)     revision 8
 *
 * 10 events per family. Families are issued 20 ms apart (50 logins/s) and rotate every 300 s
 * (+ up to 60 s of jitter), so in global position order the events of ~100,000 families interleave
 * as they would in production: a batch of a few thousand events touches a few thousand families,
 * not a few hundred (the expensive case for the family read model). Two families per subject,
 * 20 clients. Positions follow occurredAt; recorded_at = occurredAt + 4 ms.
 *
 * Differences from real events, none of which the projections look at: metadata.hash / prevHash
 * are SHA-256 hex strings chained per stream (prevHash = previous revision's hash) but are hashes of
 * "<stream>/<revision>", not of the canonical event, so `verify` would reject them; tokenHash values
 * are base64url SHA-256 of a counter; streams carry no snapshot (the app replays such a stream).
 */

export const EVENTS_PER_FAMILY = 10;
export const ROTATIONS_PER_FAMILY = 7;
export const CLIENTS = 20;
const ISSUE_GAP_MS = 20;
const ROTATION_EVERY_S = 300;
const JITTER_MS = 60_000;
const REVOKE_AFTER_S = ROTATIONS_PER_FAMILY * ROTATION_EVERY_S + 120;

export interface SeedPlan {
  families: number;
  subjects: number;
  clients: number;
  events: number;
  /** Time of the first issue (ISO); everything lies in the past. */
  t0: string;
}

export function planSeed(requestedEvents: number, now = Date.now()): SeedPlan {
  const families = Math.floor(requestedEvents / EVENTS_PER_FAMILY);
  if (families < 1) throw new RangeError(`--events must be at least ${EVENTS_PER_FAMILY}`);
  const spanMs = families * ISSUE_GAP_MS + REVOKE_AFTER_S * 1000 + JITTER_MS;
  // whole seconds, an hour of margin: every occurredAt is in the past
  const t0 = new Date(Math.floor((now - spanMs - 3_600_000) / 1000) * 1000).toISOString();
  return { families, subjects: Math.ceil(families / 2), clients: CLIENTS, events: families * EVENTS_PER_FAMILY, t0 };
}

// --- SQL building blocks (k = family index 0..F-1; $2 = subjects, $3 = clients) ---------------

/** fam_ + 26 lower-case hex chars (a subset of the Crockford alphabet the app uses). */
export const FAMILY_ID_SQL = (k: string) => `('fam_' || substr(encode(sha256(convert_to('tl-bench-family-' || ${k}, 'UTF8')), 'hex'), 1, 26))`;
const SUBJECT_SQL = (k: string) => `('user-' || lpad((${k} % $2::int)::text, 8, '0'))`;
const CLIENT_SQL = (k: string) => `('app-' || lpad((${k} % $3::int)::text, 2, '0'))`;
const ISO = (ts: string) => `to_char((${ts}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const HEX_SHA = (text: string) => `encode(sha256(convert_to(${text}, 'UTF8')), 'hex')`;
const B64URL_SHA = (text: string) => `rtrim(translate(encode(sha256(convert_to(${text}, 'UTF8')), 'base64'), '+/', '-_'), '=')`;

/** ord 0 = link (subject stream), 1 = issue, 2..8 = rotation ord-1, 9 = revoke. */
const AT_SQL = `($4::timestamptz + (k * ${ISSUE_GAP_MS}) * interval '1 millisecond' + case
    when ord <= 1 then interval '0'
    when ord = 9 then interval '${REVOKE_AFTER_S} seconds' + ((k * 7919) % ${JITTER_MS}) * interval '1 millisecond'
    else (ord - 1) * interval '${ROTATION_EVERY_S} seconds' + ((k * 7919 + ord * 104729) % ${JITTER_MS}) * interval '1 millisecond'
  end)`;

const USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'okhttp/4.12.0',
  'ExampleApp/3.2.1 (Android 14; Pixel 8)',
];

const EVENTS_SQL = `
insert into tl_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at)
select position, stream_id, revision, gen_random_uuid(), type, data,
       meta || jsonb_build_object(
         'prevHash', case when revision = 0 then null else ${HEX_SHA(`stream_id || '/' || (revision - 1)`)} end,
         'hash', ${HEX_SHA(`stream_id || '/' || revision`)}),
       at + interval '4 milliseconds'
from (
  select o.position, o.at, o.k, o.ord,
         case when o.ord = 0 then 'subject-' || f.sub else 'family-' || f.fid end as stream_id,
         case when o.ord = 0 then (o.k / $2::int)::bigint else (o.ord - 1)::bigint end as revision,
         case o.ord when 0 then 'FamilyLinkedToSubject' when 1 then 'TokenFamilyIssued' when 9 then 'TokenFamilyRevoked' else 'TokenRotated' end as type,
         case
           when o.ord = 0 then jsonb_build_object('familyId', f.fid, 'clientId', f.cid)
           when o.ord = 1 then jsonb_build_object(
             'scope', jsonb_build_array('api:read', 'api:write'),
             'audience', jsonb_build_array('https://auth.example.com'),
             'generation', 1,
             'tokenHash', ${B64URL_SHA(`'tok-' || o.k || '-1'`)},
             'createdAt', ${ISO('o.at')},
             'idleExpiresAt', ${ISO(`o.at + interval '1296000 seconds'`)},
             'absoluteExpiresAt', ${ISO(`o.at + interval '2592000 seconds'`)},
             'policy', jsonb_build_object('accessTokenTtl', 300, 'refreshIdleTtl', 1296000, 'refreshAbsoluteTtl', 2592000, 'reuseGraceSeconds', 0))
           when o.ord = 9 then jsonb_build_object(
             'reason', 'logout',
             'revokedAt', ${ISO('o.at')},
             'accessTokensValidUntil', ${ISO(`o.at + interval '300 seconds'`)})
           else jsonb_build_object(
             'fromGeneration', o.ord - 1,
             'generation', o.ord,
             'tokenHash', ${B64URL_SHA(`'tok-' || o.k || '-' || o.ord`)},
             'idleExpiresAt', ${ISO(`o.at + interval '1296000 seconds'`)},
             'scope', jsonb_build_array('api:read', 'api:write'),
             'context', f.user_ctx)
         end as data,
         jsonb_build_object(
           'familyId', f.fid, 'subject', f.sub, 'clientId', f.cid,
           'occurredAt', ${ISO('o.at')},
           'schemaVersion', 1,
           -- the link and the issue come from one admin request
           'correlationId', md5('corr-' || o.k || '-' || greatest(o.ord, 1))::uuid::text,
           'causationId', 'req-' || (o.k * 10 + greatest(o.ord, 1)),
           'actor', case when o.ord between 2 and 8 then 'client:' || f.cid else 'admin' end,
           'context', case when o.ord between 2 and 8 then f.user_ctx else f.admin_ctx end) as meta
    from (
      select k, ord, at, row_number() over (order by at, k, ord) as position
        from (select k, ord, ${AT_SQL} as at from generate_series(0, $1::int - 1) k, generate_series(0, 9) ord) t
    ) o
    cross join lateral (
      select ${FAMILY_ID_SQL('o.k')} as fid, ${SUBJECT_SQL('o.k')} as sub, ${CLIENT_SQL('o.k')} as cid,
             jsonb_build_object('ip', ((h >> 24) & 255) || '.' || ((h >> 16) & 255) || '.' || ((h >> 8) & 255) || '.' || (h & 255),
                                'userAgent', (array[${USER_AGENTS.map((u) => `'${u}'`).join(', ')}])[o.k % ${USER_AGENTS.length} + 1]) as user_ctx,
             jsonb_build_object('ip', '10.0.' || (o.k % 4) || '.' || (o.k % 250 + 2), 'userAgent', 'auth-gateway/1.4.2') as admin_ctx
        from (select (o.k::bigint * 2654435761) % 4294967296 as h) hh
    ) f
) e`;

const STREAMS_SQL = `
insert into tl_streams (stream_id, revision)
select 'family-' || ${FAMILY_ID_SQL('k')}, ${EVENTS_PER_FAMILY - 2} from generate_series(0, $1::int - 1) k
union all
select 'subject-' || ${SUBJECT_SQL('s')}, (($1::int - 1 - s) / $2::int)::bigint from generate_series(0, least($2::int, $1::int) - 1) s`;

/**
 * Seeds the plan into an empty store (one transaction), then VACUUM ANALYZE so the rebuild reads a
 * table in the state a long-lived one would be in (hint bits set, statistics current).
 */
export async function seed(sql: SqlClient, plan: SeedPlan): Promise<void> {
  const [{ n }] = await sql.query<{ n: string }>('select count(*) as n from tl_events');
  if (Number(n) !== 0) throw new Error('seed: the store is not empty');
  const params = [plan.families, plan.subjects, plan.clients, plan.t0];
  await sql.transaction(async (tx) => {
    await tx.query(`set local work_mem = '256MB'`);
    await tx.query(`set local synchronous_commit = off`);
    await tx.query(EVENTS_SQL, params);
    await tx.query(STREAMS_SQL, params.slice(0, 2));
    await tx.query(`select setval(pg_get_serial_sequence('tl_events', 'position'), $1)`, [plan.events]);
  });
  // VACUUM refuses to run in a (multi-statement, hence implicit) transaction: one statement each.
  await sql.exec('vacuum (analyze) tl_events');
  await sql.exec('vacuum (analyze) tl_streams');
}

// --- What the seed wrote for family k, computed independently of SQL and of the projections ---

export interface ExpectedFamily {
  familyId: string;
  subject: string;
  clientId: string;
  generation: number;
  status: 'revoked';
  revokedReason: string;
  createdAt: string;
  lastUsedAt: string;
  revokedAt: string;
  idleExpiresAt: string;
  absoluteExpiresAt: string;
  lastContext: { ip: string; userAgent: string };
}

export function familyIdOf(k: number): string {
  return `fam_${createHash('sha256').update(`tl-bench-family-${k}`, 'utf8').digest('hex').slice(0, 26)}`;
}

export function expectedFamily(plan: SeedPlan, k: number): ExpectedFamily {
  const issued = Date.parse(plan.t0) + k * ISSUE_GAP_MS;
  const lastRotation = issued + ROTATIONS_PER_FAMILY * ROTATION_EVERY_S * 1000 + ((k * 7919 + (ROTATIONS_PER_FAMILY + 1) * 104729) % JITTER_MS);
  const revoked = issued + REVOKE_AFTER_S * 1000 + ((k * 7919) % JITTER_MS);
  const h = (BigInt(k) * 2654435761n) % 4294967296n;
  const ip = [24n, 16n, 8n, 0n].map((s) => String((h >> s) & 255n)).join('.');
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    familyId: familyIdOf(k),
    subject: `user-${String(k % plan.subjects).padStart(8, '0')}`,
    clientId: `app-${String(k % plan.clients).padStart(2, '0')}`,
    generation: ROTATIONS_PER_FAMILY + 1,
    status: 'revoked',
    revokedReason: 'logout',
    createdAt: iso(issued),
    lastUsedAt: iso(lastRotation),
    revokedAt: iso(revoked),
    idleExpiresAt: iso(lastRotation + 1_296_000_000),
    absoluteExpiresAt: iso(issued + 2_592_000_000),
    lastContext: { ip, userAgent: USER_AGENTS[k % USER_AGENTS.length] },
  };
}
