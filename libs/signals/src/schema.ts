import type { SqlClient } from '@token-ledger/event-store';

/** Arbitrary constant for the schema-creation advisory lock (distinct from the read models' and messaging's). */
const SIGNALS_MIGRATION_LOCK = 7_340_125_790_000_037;

/**
 * The transmitter's delivery state, in the store's SQL database beside its checkpoint. NOT a read
 * model: rebuild-projections never touches these tables (a rebuild would re-send history), and the
 * outbox is the only copy of what receivers have not yet acknowledged.
 *
 * - ssf_checkpoints: the last store position the outbox consumer handled (same transaction as its rows).
 * - ssf_streams / ssf_subjects: routing, folded from the Ssf* events (status, method, aud, events delivered, subjects).
 * - ssf_families: granted and last access-token scope of families whose subject a stream follows (token-claims-change).
 * - ssf_subject_revocations: followed subjects whose revocation is under way (its family revocations send nothing more).
 * - ssf_outbox: one row per SET per stream, in `seq` order; deleted once delivered (push 2xx, poll ack).
 * - ssf_leases: which instance pushes a stream right now (expires, so a dead instance's streams move on).
 */
export const SIGNALS_SCHEMA = `
create table if not exists ssf_checkpoints (
  name text primary key,
  position bigint not null default 0,
  updated_at timestamptz not null default now()
);
create table if not exists ssf_streams (
  stream_id text primary key,
  status text not null,
  method text not null,
  endpoint_url text not null,
  authorization_sealed text,
  aud jsonb not null,
  events_delivered jsonb not null
);
create table if not exists ssf_subjects (
  stream_id text not null,
  subject_key text not null,
  primary key (stream_id, subject_key)
);
create index if not exists ssf_subjects_by_key on ssf_subjects (subject_key);
create table if not exists ssf_families (
  family_id text primary key,
  granted jsonb not null,
  last_scope jsonb not null
);
create table if not exists ssf_subject_revocations (
  subject_key text primary key
);
create table if not exists ssf_outbox (
  seq bigserial primary key,
  stream_id text not null,
  jti text not null unique,
  event_type text not null,
  claims jsonb not null,
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  failed_at timestamptz
);
create index if not exists ssf_outbox_by_stream on ssf_outbox (stream_id, seq);
create table if not exists ssf_leases (
  stream_id text primary key,
  owner text not null,
  expires_at timestamptz not null
);
`;

export async function migrateSignals(sql: SqlClient): Promise<void> {
  // One implicit transaction: concurrent starts (two nodes) queue on the lock instead of racing.
  await sql.exec(`select pg_advisory_xact_lock(${SIGNALS_MIGRATION_LOCK});\n${SIGNALS_SCHEMA}`);
}
