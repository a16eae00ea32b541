import type { SqlClient } from '@token-ledger/event-store';
import type { AnomalyStateStore, KeyState, StateMap } from './state';

/** Arbitrary constant for the schema-creation advisory lock (distinct from the other tables'). */
const ANOMALY_MIGRATION_LOCK = 7_340_125_790_000_031;

/** Another engine (a concurrent batch or node) saved one of the keys since this batch loaded it. */
export class AnomalyStateConflictError extends Error {
  constructor(detail: string) {
    super(`anomaly engine state changed under this batch (${detail}); re-run it`);
    this.name = 'AnomalyStateConflictError';
  }
}

/** Raised by an_save_state when a row is not at the version its batch loaded. */
const STATE_CONFLICT_SQLSTATE = 'TLA01';

/** Windows are at most 7 days; a subject or IP quiet for longer has nothing left to remember. */
const WINDOW_STATE_RETENTION = '8 days';

/**
 * The engine's per-key state in the ledger's SQL database (PGlite or PostgreSQL): survives restarts,
 * so a sliding window spans them. One row per family, subject and IP; family rows are deleted when
 * the family ends, subject and IP rows after a week without events.
 *
 * Saves are optimistic: each row carries a version, and a save only lands if every row is still at
 * the version its batch loaded (or still absent), else AnomalyStateConflictError and nothing is
 * written. So batches may run concurrently (Kafka partitions, several nodes) — the per-IP windows
 * they share are never updated from a stale copy; the loser re-runs its batch.
 */
export class SqlAnomalyStateStore implements AnomalyStateStore {
  /** The version each key had when a StateMap was loaded (0 = absent). */
  private readonly versions = new WeakMap<StateMap, Map<string, number>>();

  constructor(private readonly sql: SqlClient) {}

  async migrate(): Promise<void> {
    await this.sql.exec(
      `select pg_advisory_xact_lock(${ANOMALY_MIGRATION_LOCK});
       create table if not exists an_state (
         key text primary key,
         state jsonb not null,
         version bigint not null default 1,
         updated_at timestamptz not null default now()
       );
       alter table an_state add column if not exists version bigint not null default 1;
       create or replace function an_save_state(p_rows jsonb) returns void language plpgsql as $fn$
       declare
         r record;
         n int;
       begin
         for r in select * from jsonb_to_recordset(p_rows) as x(key text, state jsonb, version bigint) loop
           if r.version = 0 and r.state is null then
             continue; -- created and ended within the batch
           elsif r.version = 0 then
             insert into an_state (key, state) values (r.key, r.state) on conflict (key) do nothing;
           elsif r.state is null then
             delete from an_state where key = r.key and version = r.version;
           else
             update an_state set state = r.state, version = version + 1, updated_at = now()
              where key = r.key and version = r.version;
           end if;
           get diagnostics n = row_count;
           if n = 0 then
             raise exception '% changed since it was loaded', r.key using errcode = '${STATE_CONFLICT_SQLSTATE}';
           end if;
         end loop;
       end
       $fn$`,
    );
  }

  async load(keys: readonly string[]): Promise<StateMap> {
    const rows = await this.sql.query<{ key: string; state: KeyState | string; version: string | number }>(
      'select key, state, version from an_state where key = any($1::text[])',
      [keys],
    );
    const states: StateMap = new Map(rows.map((r) => [r.key, typeof r.state === 'string' ? (JSON.parse(r.state) as KeyState) : r.state]));
    this.versions.set(states, new Map(rows.map((r) => [r.key, Number(r.version)])));
    return states;
  }

  async save(states: StateMap): Promise<void> {
    const loaded = this.versions.get(states) ?? new Map<string, number>();
    const rows = [...states].map(([key, state]) => ({ key, state, version: loaded.get(key) ?? 0 }));
    try {
      // One round trip, atomic: an_save_state raises (and writes nothing) unless every row landed.
      await this.sql.query('select an_save_state($1::jsonb)', [JSON.stringify(rows)]);
    } catch (error) {
      if ((error as { code?: string }).code === STATE_CONFLICT_SQLSTATE) throw new AnomalyStateConflictError((error as Error).message);
      throw error;
    }
  }

  /** Drops subject and IP windows that have been quiet longer than any window can be. */
  async prune(): Promise<number> {
    const rows = await this.sql.query<{ n: string | number }>(
      `with gone as (delete from an_state where key !~ '^f:' and updated_at < now() - interval '${WINDOW_STATE_RETENTION}' returning 1)
       select count(*) as n from gone`,
    );
    return Number(rows[0]?.n ?? 0);
  }
}
