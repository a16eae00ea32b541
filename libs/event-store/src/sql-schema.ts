/**
 * Schema and the append function shared by the PGlite and PostgreSQL adapters.
 *
 * Everything is idempotent (IF NOT EXISTS / CREATE OR REPLACE) and runs on every open. The script is
 * sent as one multi-statement simple query, which PostgreSQL runs as one implicit transaction, so
 * the advisory lock it takes first serialises concurrent opens (two nodes starting at once would
 * otherwise race on CREATE SCHEMA / CREATE OR REPLACE FUNCTION) and is released on commit or error.
 */

/** Arbitrary constants, unique to this project, for pg_advisory_(xact_)lock. */
export const MIGRATION_LOCK_KEY = 7_340_125_790_000_001;
export const APPEND_LOCK_KEY = 7_340_125_790_000_002;

/** Lower-case identifiers only, so they never need quoting in SQL, search_path or LISTEN. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,49}$/;

export function assertSchemaName(schema: string): void {
  if (!IDENTIFIER.test(schema)) {
    throw new Error(`invalid schema name ${JSON.stringify(schema)}: use 1-50 of [a-z0-9_], not starting with a digit`);
  }
}

/**
 * NOTIFY channels are database-wide, so a non-default schema gets its own channel; otherwise
 * stores in other schemas (parallel test suites) would wake each other for nothing.
 */
export function notifyChannel(schema: string): string {
  assertSchemaName(schema);
  return schema === 'public' ? 'tl_events' : `tl_events_${schema}`;
}

export function schemaScript(schema: string): string {
  assertSchemaName(schema);
  const channel = notifyChannel(schema);
  return `
select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY});

create schema if not exists ${schema};

-- snapshot is json, not jsonb: nothing queries inside it, it is written on every append and read
-- on every load, and json is only checked on the way in and copied on the way out, where jsonb was
-- parsed into its binary form and printed back each time (bench/refresh/README.md).
create table if not exists ${schema}.tl_streams (
  stream_id         text primary key,
  revision          bigint not null,
  snapshot          json,
  snapshot_revision bigint
);
-- Databases created with a jsonb snapshot (before 2026-12) are converted once (a rewrite of
-- tl_streams under its lock); tl_load_streams, whose result type changes, is made again below.
-- Instances of the older version keep working beside this one: their appends reach the wrappers at
-- the end of this script, and their loads get the snapshot as json, which pg parses as it did jsonb.
do $migrate$
begin
  if exists (select 1 from pg_attribute where attrelid = '${schema}.tl_streams'::regclass and attname = 'snapshot' and atttypid = 'jsonb'::regtype) then
    alter table ${schema}.tl_streams alter column snapshot type json using snapshot::json;
    drop function if exists ${schema}.tl_load_streams(text[]);
  end if;
end
$migrate$;
-- Every append rewrites its stream's row (revision, snapshot): room on each page keeps those
-- updates HOT (no index entry per update, dead versions pruned on the page), so the table and its
-- index do not bloat under steady rotation, with or without autovacuum keeping up.
alter table ${schema}.tl_streams set (fillfactor = 50);

create table if not exists ${schema}.tl_events (
  position    bigserial primary key,
  stream_id   text not null,
  revision    bigint not null,
  event_id    uuid not null unique,
  type        text not null,
  data        jsonb not null,
  metadata    jsonb not null,
  recorded_at timestamptz not null default now(),
  unique (stream_id, revision)
);

create table if not exists ${schema}.tl_kv (
  key   text primary key,
  value jsonb not null
);

-- Appends in one round trip. A failed expectation is returned (conflict = true, actual_revision),
-- not raised, so the caller gets the actual revision without a second query and nothing is written.
-- p_expected_kind: 'exact' (p_expected_rev) | 'no_stream' | 'stream_exists' | 'any'.
-- p_snapshot: stored with the events when not SQL NULL (json: see tl_streams); the caller only passes it for exact kinds.
-- p_notify: false inside tl_append_batch, which notifies once for the whole batch.
drop function if exists ${schema}.tl_append(text, text, bigint, jsonb, jsonb);
create or replace function ${schema}.tl_append(
  p_stream_id       text,
  p_expected_kind   text,
  p_expected_rev    bigint,
  p_events          jsonb,
  p_snapshot        json,
  p_notify          boolean default true,
  out conflict        boolean,
  out actual_revision bigint,
  out next_revision   bigint,
  out positions       bigint[]
) language plpgsql as $fn$
declare
  v_count bigint := jsonb_array_length(p_events);
  v_first bigint;
begin
  conflict := false;
  if v_count = 0 then
    raise exception 'tl_append: no events to append' using errcode = '22023';
  end if;

  -- 0. Global order: readAll consumers checkpoint by position, so position N+1 must never become
  --    visible while N is still uncommitted. Holding this lock until commit (xact locks are released
  --    only after the commit is visible) makes position order = commit order across all connections
  --    and nodes. It is taken before any stream row lock, by every append and batch, so no one ever
  --    holds a row lock while waiting for it: no deadlock, whatever streams a batch touches. Fsync
  --    is shared per batch (tl_append_batch), which is what keeps this serialisation cheap.
  perform pg_advisory_xact_lock(${APPEND_LOCK_KEY});

  -- 1. Claim the revisions on the stream row: the expectation is checked against the committed row
  --    (appends are serialised by the lock above), so exactly one writer per expected revision wins.
  if p_expected_kind = 'no_stream' then
    insert into ${schema}.tl_streams (stream_id, revision, snapshot, snapshot_revision)
    values (p_stream_id, v_count - 1, p_snapshot, case when p_snapshot is null then null else v_count - 1 end)
    on conflict (stream_id) do nothing;
    if not found then
      conflict := true;
      select s.revision into actual_revision from ${schema}.tl_streams s where s.stream_id = p_stream_id;
      return;
    end if;
    v_first := 0;
  elsif p_expected_kind = 'exact' then
    update ${schema}.tl_streams s
       set revision = s.revision + v_count,
           snapshot = case when p_snapshot is null then s.snapshot else p_snapshot end,
           snapshot_revision = case when p_snapshot is null then s.snapshot_revision else s.revision + v_count end
     where s.stream_id = p_stream_id and s.revision = p_expected_rev;
    if not found then
      conflict := true;
      select s.revision into actual_revision from ${schema}.tl_streams s where s.stream_id = p_stream_id;
      return;
    end if;
    v_first := p_expected_rev + 1;
  elsif p_expected_kind = 'stream_exists' then
    update ${schema}.tl_streams s set revision = s.revision + v_count
     where s.stream_id = p_stream_id
    returning s.revision - v_count + 1 into v_first;
    if not found then
      conflict := true;
      return;
    end if;
  elsif p_expected_kind = 'any' then
    insert into ${schema}.tl_streams as s (stream_id, revision) values (p_stream_id, v_count - 1)
    on conflict (stream_id) do update set revision = s.revision + v_count
    returning s.revision - v_count + 1 into v_first;
  else
    raise exception 'tl_append: unknown expected kind %', p_expected_kind using errcode = '22023';
  end if;

  with inserted as (
    insert into ${schema}.tl_events (stream_id, revision, event_id, type, data, metadata, recorded_at)
    select p_stream_id, v_first + e.ord - 1, (e.value ->> 'eventId')::uuid, e.value ->> 'type',
           coalesce(e.value -> 'data', 'null'::jsonb), coalesce(e.value -> 'metadata', '{}'::jsonb),
           -- The embedded store sets it (RecentEvents hands out the same); PostgreSQL's are the database's.
           coalesce((e.value ->> 'recordedAt')::timestamptz, now())
      from jsonb_array_elements(p_events) with ordinality as e(value, ord)
     order by e.ord
    returning position, revision
  )
  select array_agg(i.position order by i.revision) into positions from inserted i;

  next_revision := v_first + v_count - 1;
  -- Delivered at commit; wakes subscriptions in other processes at once (they also poll).
  if p_notify then
    perform pg_notify('${channel}', positions[v_count]::text);
  end if;
end
$fn$;

-- Many appends (to any streams) in one transaction: one round trip, one commit, one fsync. Each
-- item is checked on its own, in order, so two items expecting the same revision of one stream
-- resolve as they would one after the other: the first wins, the second conflicts.
-- p_batch: [{streamId, kind, revision, events, hasSnapshot}, ...]; p_snapshots: the items' snapshots,
-- in the same order, as one json array (null where an item has none): json, so they are only
-- checked here, not parsed into jsonb as the rest of the batch is (see tl_streams).
-- The usual batch (every item at an exact revision of a stream no other item names: rotations) is
-- done set-based, one UPDATE of tl_streams and one INSERT of all its events (about 25 µs an append
-- less than a tl_append call per item, bench/refresh/README.md); any other batch goes item by item.
create or replace function ${schema}.tl_append_batch(p_batch jsonb, p_snapshots json)
returns table (idx integer, conflict boolean, actual_revision bigint, next_revision bigint, positions bigint[])
language plpgsql as $fn$
declare
  v_item jsonb;
  v_idx integer := 0;
  v_last bigint;
  r record;
begin
  perform pg_advisory_xact_lock(${APPEND_LOCK_KEY});
  if not exists (select 1 from jsonb_array_elements(p_batch) b where b.value ->> 'kind' is distinct from 'exact')
     and (select count(distinct b.value ->> 'streamId') = count(*) from jsonb_array_elements(p_batch) b) then
    for r in
      with items as (
        select (b.ord - 1)::integer as idx, b.value ->> 'streamId' as stream_id, (b.value ->> 'revision')::bigint as rev,
               b.value -> 'events' as events, jsonb_array_length(b.value -> 'events')::bigint as n,
               case when (b.value ->> 'hasSnapshot')::boolean then sn.value end as snap
          from jsonb_array_elements(p_batch) with ordinality as b(value, ord)
          left join json_array_elements(p_snapshots) with ordinality as sn(value, ord) on sn.ord = b.ord
      ), claimed as (
        -- 1. as tl_append: the expectation checked against the committed row (the lock above).
        update ${schema}.tl_streams s
           set revision = s.revision + i.n,
               snapshot = case when i.snap is null then s.snapshot else i.snap end,
               snapshot_revision = case when i.snap is null then s.snapshot_revision else s.revision + i.n end
          from items i
         where s.stream_id = i.stream_id and s.revision = i.rev and i.n > 0
        returning s.stream_id
      ), inserted as (
        -- 2. positions in batch order, then event order (the rows reach the insert sorted).
        insert into ${schema}.tl_events (stream_id, revision, event_id, type, data, metadata, recorded_at)
        select i.stream_id, i.rev + e.ord, (e.value ->> 'eventId')::uuid, e.value ->> 'type',
               coalesce(e.value -> 'data', 'null'::jsonb), coalesce(e.value -> 'metadata', '{}'::jsonb),
               coalesce((e.value ->> 'recordedAt')::timestamptz, now())
          from items i
          join claimed c on c.stream_id = i.stream_id
          cross join lateral jsonb_array_elements(i.events) with ordinality as e(value, ord)
         order by i.idx, e.ord
        returning tl_events.position, tl_events.stream_id
      )
      select i.idx, c.stream_id is null as conflict,
             case when c.stream_id is null then (select s.revision from ${schema}.tl_streams s where s.stream_id = i.stream_id) end as actual_revision,
             case when c.stream_id is null then null else i.rev + i.n end as next_revision,
             (select array_agg(x.position order by x.position) from inserted x where x.stream_id = i.stream_id) as positions,
             i.n
        from items i left join claimed c on c.stream_id = i.stream_id
       order by i.idx
    loop
      if r.n = 0 then
        raise exception 'tl_append: no events to append' using errcode = '22023';
      end if;
      idx := r.idx; conflict := r.conflict; actual_revision := r.actual_revision;
      next_revision := r.next_revision; positions := r.positions;
      if not r.conflict then v_last := greatest(v_last, r.positions[array_length(r.positions, 1)]); end if;
      return next;
    end loop;
  else
    for v_item in select value from jsonb_array_elements(p_batch) loop
      select * into r from ${schema}.tl_append(
        v_item ->> 'streamId', v_item ->> 'kind', (v_item ->> 'revision')::bigint,
        v_item -> 'events', case when (v_item ->> 'hasSnapshot')::boolean then p_snapshots -> v_idx end,
        false);
      idx := v_idx; conflict := r.conflict; actual_revision := r.actual_revision;
      next_revision := r.next_revision; positions := r.positions;
      if not r.conflict then v_last := r.positions[array_length(r.positions, 1)]; end if;
      v_idx := v_idx + 1;
      return next;
    end loop;
  end if;
  if v_last is not null then
    perform pg_notify('${channel}', v_last::text);
  end if;
end
$fn$;

-- The loads of many streams (SqlEventStore.loadMany): each stream row (revision, snapshot) and only
-- the events after its snapshot, through the (stream_id, revision) index. In a PL/pgSQL function
-- because its plan is made once per connection and kept: as a plain statement every load was
-- planned again, a third of its cost on PGlite (bench/refresh/README.md). LATERAL keeps this an
-- index range scan per stream whatever the (possibly stale) statistics say.
create or replace function ${schema}.tl_load_streams(p_ids text[])
returns table (loaded_stream_id text, stream_revision bigint, snapshot json, snapshot_revision bigint,
               "position" bigint, stream_id text, revision bigint, event_id uuid, type text, data jsonb,
               metadata jsonb, recorded_at timestamptz)
language plpgsql stable as $fn$
#variable_conflict use_column
begin
  return query
    select s.stream_id, s.revision, s.snapshot, s.snapshot_revision,
           e.position, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, e.recorded_at
      from ${schema}.tl_streams s
      left join lateral (
        select x.position, x.stream_id, x.revision, x.event_id, x.type, x.data, x.metadata, x.recorded_at
          from ${schema}.tl_events x
         where x.stream_id = s.stream_id and x.revision > coalesce(s.snapshot_revision, -1)
         order by x.revision
      ) e on true
     where s.stream_id = any(p_ids)
     order by s.stream_id, e.revision;
end
$fn$;

-- The signatures of the version before json snapshots, for its instances during a rolling upgrade:
-- the same appends, the snapshot converted (drop these once no such instance can be running).
create or replace function ${schema}.tl_append(
  p_stream_id text, p_expected_kind text, p_expected_rev bigint, p_events jsonb, p_snapshot jsonb, p_notify boolean default true,
  out conflict boolean, out actual_revision bigint, out next_revision bigint, out positions bigint[]
) language sql as $fn$
  select * from ${schema}.tl_append(p_stream_id, p_expected_kind, p_expected_rev, p_events, p_snapshot::json, p_notify)
$fn$;
create or replace function ${schema}.tl_append_batch(p_batch jsonb)
returns table (idx integer, conflict boolean, actual_revision bigint, next_revision bigint, positions bigint[])
language sql as $fn$
  select * from ${schema}.tl_append_batch(p_batch,
    (select json_agg((b.value -> 'snapshot')::json order by b.ord) from jsonb_array_elements(p_batch) with ordinality as b(value, ord)))
$fn$;
`;
}
