import type { SqlClient } from '@token-ledger/event-store';

import type { IpPool } from './ip-pool';

/**
 * Fills an empty event store with realistic history for the backtest, in a few SQL statements (not
 * timed). Shaped like bench/projections/seed.ts (events as the app writes them: envelope metadata,
 * request contexts, chained prevHash/hash), but with what the anomaly rules look at: request contexts
 * with public IPv4 addresses from thousands of networks (located by the engine's own database, see
 * ip-pool.ts), user agents of several families, device ids, and a few families per hundred whose
 * history makes a rule fire. Family k belongs to class k % 100:
 *
 *   class  events  history                                                          fires
 *   -----  ------  ---------------------------------------------------------------  ----------------------------
 *   other      10  link, issue, 7 rotations ~5 min apart, revoke (logout)            nothing
 *   11         10  like other, but rotations 5–7 come from another country ≥500 km  geo_mismatch, impossible_travel
 *   22         10  like other, but from rotation 4 on another device id and UA      device_change
 *   33          8  link, issue, 4 rotations, reuse of generation 3 from elsewhere,  reuse_detected
 *                  revoke (reuse_detected)
 *   44         27  link, issue, 24 rotations 2 s apart, revoke                       refresh_burst (per family)
 *   55         30  link, issue, 2 rotations, 25 rejected refreshes (bad_secret) 3 s  failed_refresh_storm (per
 *                  apart from one of 8 attacker addresses, revoke (admin)           subject; per IP now and then)
 *   66         10  like other, from a private address (10/8, 192.168/16)            nothing (never located)
 *   77         10  like other, from an address known only to country level          nothing
 *
 * Everything else is ordinary: every third family sends a device id; in families with k % 10 = 3
 * the app updates itself from rotation 6 on (same user-agent family, new version: no device change).
 * Families are issued 20 ms apart; two families per subject, 20 clients; positions follow occurredAt.
 * As in bench:projections, hashes are chained but not hashes of the canonical event, token hashes
 * are hashes of a counter, and streams carry no snapshot: nothing the backtest looks at.
 */

export const CLIENTS = 20;
const ISSUE_GAP_MS = 20;
const ROTATION_EVERY_S = 300;
const JITTER_MS = 60_000;
const REVOKE_AFTER_S = 7 * ROTATION_EVERY_S + 120;

export const CLASS = { travel: 11, device: 22, reuse: 33, burst: 44, storm: 55, private: 66, countryOnly: 77 } as const;

/** Events per family of class c (k % 100). */
export function eventsOfClass(c: number): number {
  return c === CLASS.reuse ? 8 : c === CLASS.burst ? 27 : c === CLASS.storm ? 30 : 10;
}
const NEV_SQL = (c: string) => `(case ${c} when ${CLASS.reuse} then 8 when ${CLASS.burst} then 27 when ${CLASS.storm} then 30 else 10 end)`;

export const USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'okhttp/4.12.0',
  'ExampleApp/3.2.1 (Android 14; Pixel 8)',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
  'ExampleApp/3.2.1 CFNetwork/1494.0.7 Darwin/23.4.0',
];
/** The same agents one version later: the same user-agent family. */
export const USER_AGENTS_UPDATED = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36',
  'okhttp/4.12.1',
  'ExampleApp/3.3.0 (Android 14; Pixel 8)',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36 Edg/127.0.0.0',
  'ExampleApp/3.3.0 CFNetwork/1496.0.7 Darwin/23.5.0',
];
/** Class 22 switches from USER_AGENTS[i] to USER_AGENTS[(i + 3) % n], a different family. */
export const DEVICE_SWITCH = 3;

export interface SeedPlan {
  families: number;
  subjects: number;
  clients: number;
  events: number;
  /** Time of the first issue (ISO); everything lies in the past. */
  t0: string;
  familiesByClass: Record<string, number>;
  /** What the default rules must detect (exact), or at least (failed_refresh_storm: `min`). */
  expected: Record<string, { exact?: number; min?: number }>;
}

function countEvents(families: number): number {
  const full = Math.floor(families / 100);
  let n = full * [...Array(100).keys()].reduce((a, c) => a + eventsOfClass(c), 0);
  for (let c = 0; c < families % 100; c++) n += eventsOfClass(c);
  return n;
}

export function planSeed(requestedEvents: number, pool: IpPool, now = Date.now()): SeedPlan {
  let families = Math.floor((requestedEvents * 100) / 1035);
  while (countEvents(families + 1) <= requestedEvents) families++;
  while (families > 0 && countEvents(families) > requestedEvents) families--;
  if (families < 100) throw new RangeError('--events too small: the seed needs at least 100 families');
  const spanMs = families * ISSUE_GAP_MS + REVOKE_AFTER_S * 1000 + JITTER_MS;
  const t0 = new Date(Math.floor((now - spanMs - 3_600_000) / 1000) * 1000).toISOString();
  const subjects = Math.ceil(families / 2);

  const byClass: Record<string, number> = {};
  let travelFiring = 0;
  for (let k = 0; k < families; k++) {
    const c = k % 100;
    const name = (Object.entries(CLASS).find(([, v]) => v === c)?.[0] ?? 'other') as string;
    byClass[name] = (byClass[name] ?? 0) + 1;
    if (c === CLASS.travel && pool.away[(k * 7919) % pool.home.length] >= 0) travelFiring++;
  }
  return {
    families,
    subjects,
    clients: CLIENTS,
    events: countEvents(families),
    t0,
    familiesByClass: byClass,
    expected: {
      reuse_detected: { exact: byClass.reuse ?? 0 },
      impossible_travel: { exact: travelFiring },
      geo_mismatch: { exact: travelFiring },
      refresh_burst: { exact: byClass.burst ?? 0 },
      // one per storm family (per subject) — when a subject's two families are > 300 s apart — plus
      // the per-IP ones
      failed_refresh_storm: { min: Math.min(1, byClass.storm ?? 0) },
      device_change: { exact: byClass.device ?? 0 },
    },
  };
}

// --- SQL building blocks ----------------------------------------------------------------------
// $1 families, $2 subjects, $3 clients, $4 t0, $5 number of home addresses (rows of the temporary
// table bench_addr: i 0-based, ip, away_ip), $6 country-only ips, $7 attacker ips, $8 user agents,
// $9 updated user agents. Large arrays as parameters are slow to subscript (text
// arrays are walked element by element), hence the table for the thousands of home addresses.

export const FAMILY_ID_SQL = (k: string) => `('fam_' || substr(encode(sha256(convert_to('tl-bench-anomaly-family-' || ${k}, 'UTF8')), 'hex'), 1, 26))`;
const SUBJECT_SQL = (k: string) => `('user-' || lpad((${k} % $2::int)::text, 8, '0'))`;
const CLIENT_SQL = (k: string) => `('app-' || lpad((${k} % $3::int)::text, 2, '0'))`;
const ISO = (ts: string) => `to_char((${ts}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const HEX_SHA = (text: string) => `encode(sha256(convert_to(${text}, 'UTF8')), 'hex')`;
const B64URL_SHA = (text: string) => `rtrim(translate(encode(sha256(convert_to(${text}, 'UTF8')), 'base64'), '+/', '-_'), '=')`;
const MS = (expr: string) => `(${expr}) * interval '1 millisecond'`;

const KIND_SQL = `(case
    when ord = 0 then 'link'
    when ord = 1 then 'issue'
    when ord = nev - 1 then 'revoke'
    when c = ${CLASS.reuse} and ord = 6 then 'reuse'
    when c = ${CLASS.storm} and ord >= 4 then 'reject'
    else 'rotate' end)`;

const AT_SQL = `($4::timestamptz + ${MS(`k * ${ISSUE_GAP_MS}`)} + case
    when ord <= 1 then interval '0'
    when kind = 'reuse' or (kind = 'revoke' and c = ${CLASS.reuse}) then interval '${5 * ROTATION_EVERY_S} seconds' + ${MS(`(k * 7919 + 6 * 104729) % ${JITTER_MS}`)}
    when kind = 'revoke' then interval '${REVOKE_AFTER_S} seconds' + ${MS(`(k * 7919) % ${JITTER_MS}`)}
    when kind = 'reject' then interval '900 seconds' + (ord - 4) * interval '3 seconds'
    when c = ${CLASS.burst} then (ord - 1) * interval '2 seconds' + ${MS(`(k * 31 + ord * 7) % 500`)}
    else (ord - 1) * interval '${ROTATION_EVERY_S} seconds' + ${MS(`(k * 7919 + ord * 104729) % ${JITTER_MS}`)}
  end)`;

/** The end user's address for a use (issue or rotation) of family k. */
const USER_IP_SQL = `(case
    when c = ${CLASS.private} then case when k % 2 = 0
      then '10.' || ((k / 250) % 250) || '.' || (k % 250) || '.' || (1 + k % 253)
      else '192.168.' || (k % 250) || '.' || (1 + k % 253) end
    when c = ${CLASS.countryOnly} and cardinality($6::text[]) > 0 then ($6::text[])[(1 + k % cardinality($6::text[]))::int]
    when c = ${CLASS.travel} and ord >= 6 and away_ip is not null then away_ip
    else home_ip end)`;

const USER_AGENT_SQL = `(case
    when c = ${CLASS.device} and ord >= 5 then ($8::text[])[(1 + (k + ${DEVICE_SWITCH}) % cardinality($8::text[]))::int]
    when k % 10 = 3 and ord >= 7 then ($9::text[])[(1 + k % cardinality($9::text[]))::int]
    else ($8::text[])[(1 + k % cardinality($8::text[]))::int] end)`;

const DEVICE_SQL = `(case
    when c = ${CLASS.device} and ord >= 5 then 'dev-' || substr(md5('dev-' || k || '-b'), 1, 16)
    when c = ${CLASS.device} or k % 3 = 0 then 'dev-' || substr(md5('dev-' || k), 1, 16)
    else null end)`;

const EVENTS_SQL = `
insert into tl_events (position, stream_id, revision, event_id, type, data, metadata, recorded_at)
select position, stream_id, revision, gen_random_uuid(), type, data,
       meta || jsonb_build_object(
         'prevHash', case when revision = 0 then null else ${HEX_SHA(`stream_id || '/' || (revision - 1)`)} end,
         'hash', ${HEX_SHA(`stream_id || '/' || revision`)}),
       at + interval '4 milliseconds'
from (
  select o.position, o.at,
         case when o.kind = 'link' then 'subject-' || f.sub else 'family-' || f.fid end as stream_id,
         case when o.kind = 'link' then (o.k / $2::int)::bigint else (o.ord - 1)::bigint end as revision,
         case o.kind when 'link' then 'FamilyLinkedToSubject' when 'issue' then 'TokenFamilyIssued' when 'revoke' then 'TokenFamilyRevoked'
                     when 'reuse' then 'TokenReuseDetected' when 'reject' then 'RefreshRejected' else 'TokenRotated' end as type,
         case o.kind
           when 'link' then jsonb_build_object('familyId', f.fid, 'clientId', f.cid)
           when 'issue' then jsonb_build_object(
             'scope', jsonb_build_array('api:read', 'api:write'),
             'audience', jsonb_build_array('https://auth.example.com'),
             'generation', 1,
             'tokenHash', ${B64URL_SHA(`'tok-' || o.k || '-1'`)},
             'createdAt', ${ISO('o.at')},
             'idleExpiresAt', ${ISO(`o.at + interval '1296000 seconds'`)},
             'absoluteExpiresAt', ${ISO(`o.at + interval '2592000 seconds'`)},
             'policy', jsonb_build_object('accessTokenTtl', 300, 'refreshIdleTtl', 1296000, 'refreshAbsoluteTtl', 2592000, 'reuseGraceSeconds', 0),
             'context', x.ctx)
           when 'revoke' then jsonb_build_object(
             'reason', case when o.c = ${CLASS.reuse} then 'reuse_detected' when o.c = ${CLASS.storm} then 'admin' else 'logout' end,
             'revokedAt', ${ISO('o.at')},
             'accessTokensValidUntil', ${ISO(`o.at + interval '300 seconds'`)})
           when 'reuse' then jsonb_build_object('presentedGeneration', 3, 'headGeneration', 5, 'context', x.ctx)
           when 'reject' then jsonb_build_object('reason', 'bad_secret', 'presentedGeneration', 3, 'context', x.ctx)
           else jsonb_build_object(
             'fromGeneration', o.ord - 1,
             'generation', o.ord,
             'tokenHash', ${B64URL_SHA(`'tok-' || o.k || '-' || o.ord`)},
             'idleExpiresAt', ${ISO(`o.at + interval '1296000 seconds'`)},
             'scope', jsonb_build_array('api:read', 'api:write'),
             'context', x.ctx)
         end as data,
         jsonb_build_object(
           'familyId', f.fid, 'subject', f.sub, 'clientId', f.cid,
           'occurredAt', ${ISO('o.at')},
           'schemaVersion', 1,
           -- the link and the issue come from one admin request
           'correlationId', md5('corr-' || o.k || '-' || greatest(o.ord, 1))::uuid::text,
           'causationId', 'req-' || (o.k * 100 + greatest(o.ord, 1)),
           'actor', case when o.kind in ('link', 'issue') or (o.kind = 'revoke' and o.c <> ${CLASS.reuse}) then 'admin' else 'client:' || f.cid end,
           'context', x.ctx) as meta
    from (
      select k, c, nev, ord, kind, at, row_number() over (order by at, k, ord) as position
        from generate_series(0::bigint, $1::bigint - 1) k
        cross join lateral (select (k % 100)::int as c) cc
        cross join lateral (select ${NEV_SQL('c')} as nev) nn
        cross join lateral generate_series(0, nev - 1) ord
        cross join lateral (select ${KIND_SQL} as kind) kk
        cross join lateral (select ${AT_SQL} as at) tt
    ) o
    cross join lateral (
      select ${FAMILY_ID_SQL('o.k')} as fid, ${SUBJECT_SQL('o.k')} as sub, ${CLIENT_SQL('o.k')} as cid offset 0
    ) f
    cross join lateral (
      select case
        when o.kind in ('link', 'issue', 'rotate') then jsonb_strip_nulls(jsonb_build_object('ip', u.ip, 'userAgent', u.ua, 'deviceId', u.dev))
        when o.kind = 'reuse' then jsonb_build_object('ip', (select a.ip from bench_addr a where a.i = (o.k * 104729 + 17) % $5::int), 'userAgent', 'python-requests/2.31.0')
        when o.kind = 'reject' then jsonb_build_object('ip', ($7::text[])[(1 + (o.k / 100) % cardinality($7::text[]))::int], 'userAgent', 'curl/8.5.0')
        else jsonb_build_object('ip', '10.0.' || (o.k % 4) || '.' || (o.k % 250 + 2), 'userAgent', 'auth-gateway/1.4.2')
      end as ctx
      from (
        select ${USER_IP_SQL} as ip, ${USER_AGENT_SQL} as ua, ${DEVICE_SQL} as dev
          from (select o.k as k, o.c as c, o.ord as ord, a.ip as home_ip, a.away_ip from bench_addr a where a.i = (o.k * 7919) % $5::int) h
      ) u
      offset 0
    ) x
    offset 0
) e`;

const STREAMS_SQL = `
insert into tl_streams (stream_id, revision)
select 'family-' || ${FAMILY_ID_SQL('k')}, ${NEV_SQL('(k % 100)::int')} - 2 from generate_series(0::bigint, $1::bigint - 1) k
union all
select 'subject-' || ${SUBJECT_SQL('s')}, (($1::int - 1 - s) / $2::int)::bigint from generate_series(0, least($2::int, $1::int) - 1) s`;

/**
 * Seeds the plan into an empty store (one transaction), then VACUUM ANALYZE so the backtest reads a
 * table in the state a long-lived one would be in.
 */
export async function seed(sql: SqlClient, plan: SeedPlan, pool: IpPool): Promise<void> {
  const [{ n }] = await sql.query<{ n: string }>('select count(*) as n from tl_events');
  if (Number(n) !== 0) throw new Error('seed: the store is not empty');
  const params = [
    plan.families,
    plan.subjects,
    plan.clients,
    plan.t0,
    pool.home.length,
    pool.countryOnly.map((a) => a.ip),
    pool.attackers.map((a) => a.ip),
    USER_AGENTS,
    USER_AGENTS_UPDATED,
  ];
  await sql.transaction(async (tx) => {
    await tx.query(`set local work_mem = '256MB'`);
    await tx.query(`set local synchronous_commit = off`);
    await tx.query(`create temporary table bench_addr (i int primary key, ip text not null, away_ip text) on commit drop`);
    await tx.query(
      `insert into bench_addr (i, ip, away_ip) select i - 1, ip, case when away >= 0 then ($1::text[])[away + 1] end
         from unnest($1::text[], $2::int[]) with ordinality as t(ip, away, i)`,
      [pool.home.map((a) => a.ip), pool.away],
    );
    await tx.query('analyze bench_addr');
    await tx.query(EVENTS_SQL, params);
    await tx.query(STREAMS_SQL, params.slice(0, 2));
    await tx.query(`select setval(pg_get_serial_sequence('tl_events', 'position'), $1)`, [plan.events]);
  });
  const [{ count }] = await sql.query<{ count: string }>('select count(*) as count from tl_events');
  if (Number(count) !== plan.events) throw new Error(`seed: wrote ${count} events, planned ${plan.events}`);
  await sql.exec('vacuum (analyze) tl_events');
  await sql.exec('vacuum (analyze) tl_streams');
}
