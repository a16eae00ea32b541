import type { SqlClient } from '@token-ledger/event-store';
import type { AnomalyStateStore, KeyState, StateMap } from './state';

/** Arbitrary constant for the schema-creation advisory lock (distinct from the other tables'). */
const ANOMALY_MIGRATION_LOCK = 7_340_125_790_000_031;

/** Windows are at most 7 days; a subject or IP quiet for longer has nothing left to remember. */
const WINDOW_STATE_RETENTION = '8 days';

/**
 * The engine's per-key state in the ledger's SQL database (PGlite or PostgreSQL): survives restarts,
 * so a sliding window spans them. One row per family, subject and IP; family rows are deleted when
 * the family ends, subject and IP rows after a week without events.
 */
export class SqlAnomalyStateStore implements AnomalyStateStore {
  constructor(private readonly sql: SqlClient) {}

  async migrate(): Promise<void> {
    await this.sql.exec(
      `select pg_advisory_xact_lock(${ANOMALY_MIGRATION_LOCK});
       create table if not exists an_state (
         key text primary key,
         state jsonb not null,
         updated_at timestamptz not null default now()
       )`,
    );
  }

  async load(keys: readonly string[]): Promise<StateMap> {
    const rows = await this.sql.query<{ key: string; state: KeyState | string }>('select key, state from an_state where key = any($1::text[])', [keys]);
    return new Map(rows.map((r) => [r.key, typeof r.state === 'string' ? (JSON.parse(r.state) as KeyState) : r.state]));
  }

  async save(states: StateMap): Promise<void> {
    const rows = [...states].map(([key, state]) => ({ key, state }));
    await this.sql.query(
      `with input as (select * from jsonb_to_recordset($1::jsonb) as r(key text, state jsonb)),
            gone as (delete from an_state where key in (select key from input where state is null))
       insert into an_state (key, state, updated_at)
       select key, state, now() from input where state is not null
       on conflict (key) do update set state = excluded.state, updated_at = now()`,
      [JSON.stringify(rows)],
    );
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
