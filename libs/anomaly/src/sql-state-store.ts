import type { SqlClient, SqlQueryable } from '@token-ledger/event-store';
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

/** soleWriter: how many saved rows are remembered (a few kB each at most). */
const MAX_REMEMBERED_ROWS = 10_000;

const jsonOf = (state: KeyState | null): string => (state === null ? 'null' : JSON.stringify(state));

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
 *
 * With `soleWriter` (the embedded store: one process per data directory) the rows this store saved
 * are remembered, as saved, and a later batch takes them from memory instead of reading them back —
 * still with their version, so the save's check stands: a copy that went stale (a concurrent batch of
 * this process) fails the save, is forgotten, and the re-run reads the database.
 *
 * With `writeBehind` (the engine following the store, which owns its checkpoint) `save` only stages:
 * the staged rows are what later loads see, and `flush` writes them all — still checked against the
 * versions their batches loaded — in one transaction with the caller's checkpoint. A batch a second
 * then costs no row writes of its own (bench/refresh/README.md); a crash or a failed flush loses only
 * staged rows, which the caller rebuilds by replaying from that checkpoint. Batches must come one at
 * a time (the source's order), since staging checks nothing.
 */
export class SqlAnomalyStateStore implements AnomalyStateStore {
  /** The version each key had when a StateMap was loaded (0 = absent). */
  private readonly versions = new WeakMap<StateMap, Map<string, number>>();
  /** soleWriter, writeBehind: key → the JSON text and version of its row as this store last saved it (oldest first). */
  private readonly saved?: Map<string, { json: string; version: number }>;
  /**
   * writeBehind: key → the state staged for it (null: delete) and the version its batch loaded. The
   * objects themselves, handed to the next batch as they are: a failed batch drops all that is staged
   * (the caller replays), so no batch ever re-runs on a state another has changed.
   */
  private staged?: Map<string, { state: KeyState | null; version: number }>;

  constructor(
    private readonly sql: SqlClient,
    options: { soleWriter?: boolean; writeBehind?: boolean } = {},
  ) {
    if (options.soleWriter || options.writeBehind) this.saved = new Map();
    if (options.writeBehind) this.staged = new Map();
  }

  /** writeBehind: how many rows are staged and not yet flushed. */
  get stagedRows(): number {
    return this.staged?.size ?? 0;
  }

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
       alter table an_state set (fillfactor = 50);
       -- Set-based (one statement for the whole batch, not one per row: 44 % less time a rotation on
       -- PGlite, bench/refresh/README.md); raises, writing nothing, unless every row landed.
       create or replace function an_save_state(p_rows jsonb) returns void language plpgsql as $fn$
       declare
         missing text;
       begin
         with r as (
           select * from jsonb_to_recordset(p_rows) as x(key text, state jsonb, version bigint)
            where not (x.version = 0 and x.state is null) -- created and ended within the batch
         ), upd as (
           update an_state a set state = r.state, version = a.version + 1, updated_at = now()
             from r where r.version > 0 and r.state is not null and a.key = r.key and a.version = r.version
           returning a.key
         ), del as (
           delete from an_state a using r where r.version > 0 and r.state is null and a.key = r.key and a.version = r.version
           returning a.key
         ), ins as (
           insert into an_state (key, state) select r.key, r.state from r where r.version = 0
           on conflict (key) do nothing
           returning key
         ), landed as (select key from upd union all select key from del union all select key from ins)
         select r.key into missing from r where r.key not in (select key from landed) limit 1;
         if found then
           raise exception '% changed since it was loaded', missing using errcode = '${STATE_CONFLICT_SQLSTATE}';
         end if;
       end
       $fn$`,
    );
  }

  async load(keys: readonly string[]): Promise<StateMap> {
    const states: StateMap = new Map();
    const versions = new Map<string, number>();
    const unknown: string[] = [];
    for (const key of keys) {
      const staged = this.staged?.get(key);
      if (staged) {
        if (staged.state !== null) states.set(key, staged.state);
        versions.set(key, staged.version); // deleted: absent, its row (if any) still at this version
        continue;
      }
      const row = this.saved?.get(key);
      if (!row) {
        unknown.push(key);
        continue;
      }
      // A fresh copy: the rules change the states they are given, and a batch may be re-run.
      states.set(key, JSON.parse(row.json) as KeyState);
      versions.set(key, row.version);
    }
    if (unknown.length > 0) {
      const rows = await this.sql.query<{ key: string; state: KeyState | string; version: string | number }>(
        'select key, state, version from an_state where key = any($1::text[])',
        [unknown],
      );
      for (const r of rows) {
        states.set(r.key, typeof r.state === 'string' ? (JSON.parse(r.state) as KeyState) : r.state);
        versions.set(r.key, Number(r.version));
      }
    }
    this.versions.set(states, versions);
    return states;
  }

  /** Writes the states (writeBehind: stages them for `flush`). */
  async save(states: StateMap): Promise<void> {
    const loaded = this.versions.get(states) ?? new Map<string, number>();
    if (this.staged) {
      for (const [key, state] of states) this.staged.set(key, { state, version: loaded.get(key) ?? 0 });
      return;
    }
    await this.write([...states].map(([key, state]) => ({ key, json: jsonOf(state), version: loaded.get(key) ?? 0 })));
  }

  /**
   * writeBehind: writes every staged row, and whatever `alongside` writes (the checkpoint), in one
   * transaction. On any failure nothing is written and everything staged or remembered is dropped
   * (AnomalyStateConflictError when another writer moved a row on): the caller replays from its
   * checkpoint, reading the database again.
   */
  async flush(alongside?: (tx: SqlQueryable) => Promise<void>): Promise<void> {
    const staged = this.staged;
    if (!staged) throw new Error('flush() needs a writeBehind store');
    const rows = [...staged].map(([key, r]) => ({ key, json: jsonOf(r.state), version: r.version }));
    this.staged = new Map();
    await this.write(rows, alongside);
  }

  /** writeBehind: drops what was staged (and what is remembered), e.g. after the batch that staged it failed. */
  discard(): void {
    this.staged?.clear();
    this.saved?.clear();
  }

  private async write(rows: Array<{ key: string; json: string; version: number }>, alongside?: (tx: SqlQueryable) => Promise<void>): Promise<void> {
    // One statement, atomic: an_save_state raises (and writes nothing) unless every row landed.
    const save = (sql: SqlQueryable) =>
      rows.length === 0
        ? Promise.resolve()
        : sql.query('select an_save_state($1::jsonb)', [`[${rows.map((r) => `{"key":${JSON.stringify(r.key)},"state":${r.json},"version":${r.version}}`).join(',')}]`]);
    try {
      if (alongside) {
        await this.sql.transaction(async (tx) => {
          await save(tx);
          await alongside(tx);
        });
      } else await save(this.sql);
    } catch (error) {
      if (this.staged) this.discard();
      else for (const r of rows) this.saved?.delete(r.key);
      if ((error as { code?: string }).code === STATE_CONFLICT_SQLSTATE) throw new AnomalyStateConflictError((error as Error).message);
      throw error;
    }
    if (this.saved) for (const r of rows) this.remember(r.key, r.json, r.version);
  }

  /** The row as an_save_state left it: updated or inserted at version + 1, or gone. */
  private remember(key: string, json: string, version: number): void {
    const saved = this.saved!;
    saved.delete(key); // re-inserted below: the Map's order is least recently saved first
    if (json === 'null') return;
    saved.set(key, { json, version: version + 1 });
    if (saved.size > MAX_REMEMBERED_ROWS) saved.delete(saved.keys().next().value as string);
  }

  /** Drops subject and IP windows that have been quiet longer than any window can be. */
  async prune(): Promise<number> {
    const rows = await this.sql.query<{ n: string | number }>(
      `with gone as (delete from an_state where key !~ '^f:' and updated_at < now() - interval '${WINDOW_STATE_RETENTION}' returning 1)
       select count(*) as n from gone`,
    );
    // Pruned rows may be remembered: forget everything rather than find them. Staged rows stay (their
    // keys were just used); one whose row was pruned meanwhile fails the flush, and the replay starts it afresh.
    this.saved?.clear();
    return Number(rows[0]?.n ?? 0);
  }
}
