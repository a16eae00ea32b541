import type { SqlClient, SqlQueryable } from '@token-ledger/event-store';

/** Arbitrary constant for the schema-creation advisory lock (distinct from the read models'). */
const MESSAGING_MIGRATION_LOCK = 7_340_125_790_000_023;

/**
 * Checkpoints of the relay and of in-process consumers: the last store position each has handed on.
 * Same idea as the read models' `rm_checkpoints`, in its own table so the two never interfere.
 */
export async function migrateMessaging(sql: SqlClient): Promise<void> {
  await sql.exec(
    `select pg_advisory_xact_lock(${MESSAGING_MIGRATION_LOCK});
     create table if not exists msg_checkpoints (
       name text primary key,
       position bigint not null default 0,
       updated_at timestamptz not null default now()
     )`,
  );
}

export async function readCheckpoint(sql: SqlQueryable, name: string): Promise<number> {
  const rows = await sql.query<{ position: string | number }>('select position from msg_checkpoints where name = $1', [name]);
  return rows.length === 0 ? 0 : Number(rows[0].position);
}

/** Moves the checkpoint forward only (never back), so a slower duplicate writer cannot rewind it. */
export async function writeCheckpoint(sql: SqlQueryable, name: string, position: number): Promise<void> {
  await sql.query(
    `insert into msg_checkpoints (name, position) values ($1, $2)
     on conflict (name) do update set position = greatest(msg_checkpoints.position, excluded.position), updated_at = now()`,
    [name, position],
  );
}
