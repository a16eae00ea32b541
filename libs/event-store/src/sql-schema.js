"use strict";
/**
 * Schema and the append function shared by the PGlite and PostgreSQL adapters.
 *
 * Everything is idempotent (IF NOT EXISTS / CREATE OR REPLACE) and runs on every open. The script is
 * sent as one multi-statement simple query, which PostgreSQL runs as one implicit transaction, so
 * the advisory lock it takes first serialises concurrent opens (two nodes starting at once would
 * otherwise race on CREATE SCHEMA / CREATE OR REPLACE FUNCTION) and is released on commit or error.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.APPEND_LOCK_KEY = exports.MIGRATION_LOCK_KEY = void 0;
exports.assertSchemaName = assertSchemaName;
exports.notifyChannel = notifyChannel;
exports.schemaScript = schemaScript;
/** Arbitrary constants, unique to this project, for pg_advisory_(xact_)lock. */
exports.MIGRATION_LOCK_KEY = 7_340_125_790_000_001;
exports.APPEND_LOCK_KEY = 7_340_125_790_000_002;
/** Lower-case identifiers only, so they never need quoting in SQL, search_path or LISTEN. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,49}$/;
function assertSchemaName(schema) {
    if (!IDENTIFIER.test(schema)) {
        throw new Error(`invalid schema name ${JSON.stringify(schema)}: use 1-50 of [a-z0-9_], not starting with a digit`);
    }
}
/**
 * NOTIFY channels are database-wide, so a non-default schema gets its own channel; otherwise
 * stores in other schemas (parallel test suites) would wake each other for nothing.
 */
function notifyChannel(schema) {
    assertSchemaName(schema);
    return schema === 'public' ? 'tl_events' : `tl_events_${schema}`;
}
function schemaScript(schema) {
    assertSchemaName(schema);
    const channel = notifyChannel(schema);
    return `
select pg_advisory_xact_lock(${exports.MIGRATION_LOCK_KEY});

create schema if not exists ${schema};

create table if not exists ${schema}.tl_streams (
  stream_id         text primary key,
  revision          bigint not null,
  snapshot          jsonb,
  snapshot_revision bigint
);

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
-- p_snapshot: stored with the events when not SQL NULL; the caller only passes it for exact kinds.
create or replace function ${schema}.tl_append(
  p_stream_id       text,
  p_expected_kind   text,
  p_expected_rev    bigint,
  p_events          jsonb,
  p_snapshot        jsonb,
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

  -- 1. Claim the revisions on the stream row. The row lock taken here makes concurrent writers to
  --    the same stream queue up; under READ COMMITTED a waiting UPDATE re-checks its WHERE against
  --    the committed row, so exactly one writer per expected revision wins.
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

  -- 2. Global order: readAll consumers checkpoint by position, so position N+1 must never become
  --    visible while N is still uncommitted. Holding this lock from nextval() to commit (xact locks
  --    are released only after the commit is visible) makes position order = commit order across
  --    all connections and nodes. Taken after the stream row lock and never the other way round,
  --    so it cannot deadlock.
  perform pg_advisory_xact_lock(${exports.APPEND_LOCK_KEY});

  with inserted as (
    insert into ${schema}.tl_events (stream_id, revision, event_id, type, data, metadata)
    select p_stream_id, v_first + e.ord - 1, (e.value ->> 'eventId')::uuid, e.value ->> 'type',
           coalesce(e.value -> 'data', 'null'::jsonb), coalesce(e.value -> 'metadata', '{}'::jsonb)
      from jsonb_array_elements(p_events) with ordinality as e(value, ord)
     order by e.ord
    returning position, revision
  )
  select array_agg(i.position order by i.revision) into positions from inserted i;

  next_revision := v_first + v_count - 1;
  -- Delivered at commit; wakes subscriptions in other processes at once (they also poll).
  perform pg_notify('${channel}', positions[v_count]::text);
end
$fn$;
`;
}
