import { eventTraceContext, inBatchSpan } from '@token-ledger/envelope';
import { BatchedConsumer, type RecordedEvent, type SqlBackedStore, type SqlClient, type SqlQueryable, type StoreCapabilities } from '@token-ledger/event-store';
import type { Projection } from './projection';
import { READ_MODEL_SCHEMA } from './schema';

/** A store with its read models' database (capabilities.sql; sqlBacked builds one from an opened store). */
export type { SqlBackedStore } from '@token-ledger/event-store';

/** Arbitrary constant for the schema-creation advisory lock. */
const READ_MODEL_MIGRATION_LOCK = 7_340_125_790_000_011;

export async function migrateReadModels(sql: SqlClient): Promise<void> {
  // One implicit transaction: concurrent starts (two nodes) queue on the lock instead of racing.
  await sql.exec(`select pg_advisory_xact_lock(${READ_MODEL_MIGRATION_LOCK});\n${READ_MODEL_SCHEMA}`);
}

export class CheckpointConflictError extends Error {
  constructor(projection: string) {
    super(`projection ${projection}: checkpoint moved under us (another runner); restarting from it`);
    this.name = 'CheckpointConflictError';
  }
}

export async function readCheckpoints(sql: SqlQueryable, names: readonly string[]): Promise<Map<string, number>> {
  const rows = await sql.query<{ projection: string; position: string | number }>(
    'select projection, position from rm_checkpoints where projection = any($1::text[])',
    [names],
  );
  const map = new Map(names.map((n) => [n, 0]));
  for (const r of rows) map.set(r.projection, Number(r.position));
  return map;
}

/**
 * Applies one batch to every projection still behind it, moving each checkpoint in the same
 * transaction. The checkpoint rows are locked first and compared with what the caller believes,
 * so two runners (two nodes, or a rebuild beside a server) never apply a batch twice: the later
 * one gets CheckpointConflictError and re-reads. Returns the new checkpoints.
 * `eventsInSql`: the events are rows of tl_events in `sql`'s database (capabilities.eventsInSql),
 * so a projection with `applyFromEventsTable` writes its rows from there.
 *
 * The statements go out together, built on the checkpoints the caller believes, without waiting for
 * the lock's answer: they run in order on the transaction's one connection, so nothing is applied
 * before the rows are locked, and if the locked rows say otherwise the transaction rolls back. With
 * PGlite in its thread each wait was a round trip during which PGlite was held for this transaction
 * (bench/refresh/README.md, "PGlite's thread kept busy").
 */
export async function commitBatch(
  sql: SqlClient,
  projections: readonly Projection[],
  expected: ReadonlyMap<string, number>,
  events: readonly RecordedEvent[],
  { eventsInSql = false }: { eventsInSql?: boolean } = {},
): Promise<Map<string, number>> {
  const last = events[events.length - 1].position;
  return sql.transaction(async (tx) => {
    const names = projections.map((p) => p.name);
    const writes: Promise<unknown>[] = [
      // Read models are derived data: a commit lost to an OS crash takes its checkpoint with it and is
      // simply re-applied, so projection commits need not wait for fsync (the events themselves do).
      tx.query('set local synchronous_commit = off'),
      tx.query(`insert into rm_checkpoints (projection, position) select unnest($1::text[]), 0 on conflict (projection) do nothing`, [names]),
    ];
    const locked = tx.query<{ projection: string; position: string | number }>(
      'select projection, position from rm_checkpoints where projection = any($1::text[]) order by projection for update',
      [names],
    );
    const next = new Map(names.map((n) => [n, expected.get(n) ?? 0]));
    for (const p of projections) {
      const pending = events.filter((e) => e.position > next.get(p.name)!);
      if (pending.length === 0) continue;
      writes.push(eventsInSql && p.applyFromEventsTable ? p.applyFromEventsTable(tx, pending) : p.apply(tx, pending));
      next.set(p.name, last);
    }
    writes.push(
      tx.query(
        `update rm_checkpoints c set position = v.position, updated_at = now()
           from (select unnest($1::text[]) as projection, unnest($2::bigint[]) as position) v
          where c.projection = v.projection`,
        [[...next.keys()], [...next.values()]],
      ),
    );
    // A conflict below leaves these to fail with the rolled-back transaction: not unhandled.
    for (const w of writes) w.catch(() => undefined);
    for (const row of await locked) {
      if (Number(row.position) !== expected.get(row.projection)) throw new CheckpointConflictError(row.projection);
    }
    await Promise.all(writes);
    return next;
  });
}

/** What the API needs of whatever keeps the read models current (ProjectionRunner, ThreadedProjectionRunner). */
export interface ReadModelRunner {
  readonly projections: readonly Projection[];
  /** Lowest committed checkpoint across the projections (0 before the first is known). */
  readonly position: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves true once the read models include `position`, false after `timeoutMs`. */
  waitFor(position: number, timeoutMs: number): Promise<boolean>;
}

/** Polls `current()` every 5 ms until it reaches `position` (true) or `timeoutMs` passes (false). */
export async function waitForPosition(current: () => number, position: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (current() < position) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

export interface ProjectionRunnerOptions {
  batchSize?: number;
  /** Called after each committed batch with the age of each of its events (ms since recorded). */
  onBatch?: (info: { count: number; position: number; lagsMs: number[] }) => void;
  onError?: (error: unknown) => void;
}

/**
 * Keeps read models up to date: follows the store's global order (catch-up, then live) through a
 * BatchedConsumer and commits batches through commitBatch. Any failure (a lost checkpoint race, a
 * database error) drops the uncommitted buffer and restarts from the committed checkpoints, so
 * nothing is skipped and nothing applied twice.
 */
export class ProjectionRunner implements ReadModelRunner {
  private checkpoints = new Map<string, number>();
  private readonly consumer: BatchedConsumer;

  constructor(
    private readonly store: SqlBackedStore & { readonly capabilities?: StoreCapabilities },
    readonly projections: readonly Projection[],
    private readonly options: ProjectionRunnerOptions = {},
  ) {
    const eventsInSql = store.capabilities?.eventsInSql !== undefined;
    this.consumer = new BatchedConsumer(
      store,
      {
        resumeAfter: async () => {
          this.checkpoints = await readCheckpoints(this.store.sql, this.projections.map((p) => p.name));
          return this.position;
        },
        commit: async (events) => {
          // With tracing on, a span in the trace of the batch's first traced event, linked to the others'.
          this.checkpoints = await inBatchSpan('projection batch', events.map((e) => eventTraceContext(e.metadata)), {}, () =>
            commitBatch(this.store.sql, this.projections, this.checkpoints, events, { eventsInSql }),
          );
          const now = Date.now();
          this.options.onBatch?.({
            count: events.length,
            position: events[events.length - 1].position,
            lagsMs: events.map((e) => now - e.recordedAt.getTime()),
          });
        },
        // A lost checkpoint race is routine (another runner moved on): re-read at once, quietly.
        onError: (error) => {
          if (!(error instanceof CheckpointConflictError)) this.options.onError?.(error);
        },
        retryDelayMs: (error) => (error instanceof CheckpointConflictError ? 10 : 500),
      },
      options.batchSize ?? 500,
    );
  }

  /** Lowest committed checkpoint across this runner's projections. */
  get position(): number {
    return this.checkpoints.size === 0 ? 0 : Math.min(...this.checkpoints.values());
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  waitFor(position: number, timeoutMs: number): Promise<boolean> {
    // Someone waits for their own write: a store that gathers wake-ups need not make them wait for it.
    if (this.position < position) this.store.wakeSubscriptionsNow?.();
    return waitForPosition(() => this.position, position, timeoutMs);
  }
}
