import type { EventsInSql, OpenedStore, SqlBackedStore, SqlClient, SqlQueryable } from '@token-ledger/event-store';
import { anomalyProjection, anomalySqlRebuild } from './anomaly-view';
import { auditProjection, auditSqlRebuild } from './audit-view';
import { familyProjection, familySqlRebuild } from './family-view';
import type { Projection, SqlRebuild } from './projection';
import type { RebuildOptions, RebuildProgress, RebuildResult, RebuildStep } from './rebuild-types';
import { createIndexSql, createTableSql, READ_MODEL_TABLES, type ReadModelTable } from './schema';

/**
 * The set-based rebuild of each built-in projection, keyed by the projection object itself: a
 * projection wrapped around one of these (other `apply`) has none, and is rebuilt by replay.
 */
export const SQL_REBUILDS: ReadonlyMap<Projection, SqlRebuild> = new Map<Projection, SqlRebuild>([
  [familyProjection, familySqlRebuild],
  [auditProjection, auditSqlRebuild],
  [anomalyProjection, anomalySqlRebuild],
]);

/** Whether these read models can be rebuilt set-based on this store: its events must be in SQL (capabilities.eventsInSql). */
export function canRebuildInSql(
  store: OpenedStore,
  projections: readonly Projection[],
): { ok: true; events: EventsInSql } | { ok: false; reason: string } {
  const events = store.capabilities.eventsInSql;
  if (!events) return { ok: false, reason: "the events are not in the read models' database" };
  const without = projections.filter((p) => !SQL_REBUILDS.has(p) || p.tables.some((t) => !READ_MODEL_TABLES[t]));
  if (without.length > 0) return { ok: false, reason: `no SQL rebuild for ${without.map((p) => p.name).join(', ')}` };
  return { ok: true, events };
}

/** pg_try_advisory_xact_lock(int, int) key: (this, hashtext(schema)): one rebuild per schema at a time. */
const REBUILD_LOCK = 734_012_579;

/** Relative costs for progress (a row copied into rm_audit = 1), measured on PostgreSQL (bench/projections). */
const COST = { index: 0.3, primaryKey: 0.1, analyze: 0.08, count: 0.04, foldRowsPerEvent: 0.1 };

/**
 * Per build transaction: read models are derived data, so no fsync wait; room for the fold's sort
 * and the index builds (PGlite runs in a WebAssembly heap: less); the lanes are the parallelism, so
 * no parallel workers on top of them.
 */
function buildSettings(postgres: boolean): string {
  const [work, maintenance] = postgres ? ['512MB', '256MB'] : ['64MB', '64MB'];
  return `select set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true),
    set_config('work_mem', '${work}', true), set_config('maintenance_work_mem', '${maintenance}', true),
    set_config('max_parallel_maintenance_workers', '0', true)`;
}

interface Task {
  name: string;
  weight: number;
  /** Tasks that must have finished first (an index needs its table filled). */
  after: readonly Task[];
  run(q: SqlQueryable): Promise<void>;
}

interface TaskHooks {
  started(task: Task): void;
  done(task: Task, lane: number, startMs: number, ms: number): void;
}

/**
 * Where the statements run. PostgreSQL: up to `lanes` tasks at once, each in its own transaction on
 * its own pooled connection. PGlite (one connection): everything inside one transaction, in order.
 */
interface Executor {
  readonly lanes: number;
  /** False inside PGlite's one transaction: nothing can move under it, and the store cannot be read beside it. */
  readonly concurrent: boolean;
  /**
   * Runs every task once its `after` tasks are done; a free lane takes the first ready task in list
   * order. No phase barrier: a table's indexes start as soon as its own fill is done, beside a fold
   * still running on another lane.
   */
  run(tasks: readonly Task[], hooks: TaskHooks): Promise<void>;
  tx<T>(name: string, fn: (q: SqlQueryable) => Promise<T>): Promise<T>;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function schedule(tasks: readonly Task[], lanes: number, runTask: (task: Task, lane: number) => Promise<void>): Promise<void> {
  const pending = [...tasks];
  const finished = new Set<Task>();
  let running = 0;
  let failed = false;
  let wake: () => void = () => undefined;
  let changed = new Promise<void>((resolve) => (wake = resolve));
  const notify = () => {
    wake();
    changed = new Promise<void>((resolve) => (wake = resolve));
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.max(1, Math.min(lanes, pending.length)) }, async (_, lane) => {
      try {
        while (!failed && pending.length > 0) {
          const i = pending.findIndex((t) => t.after.every((d) => finished.has(d)));
          if (i < 0) {
            if (running === 0) throw new Error(`rebuild: tasks wait for each other: ${pending.map((t) => t.name).join(', ')}`);
            await changed;
            continue;
          }
          const [task] = pending.splice(i, 1);
          running++;
          try {
            await runTask(task, lane);
          } finally {
            running--;
          }
          finished.add(task);
          notify();
        }
      } catch (error) {
        failed = true; // the other lanes finish their statement and stop
        notify();
        throw error;
      }
    }),
  );
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

function singleTransaction(tx: SqlQueryable, record: (name: string, lane: number, startMs: number, ms: number) => void, t0: number): Executor {
  return {
    lanes: 1,
    concurrent: false,
    run: (tasks, hooks) =>
      schedule(tasks, 1, async (task) => {
        const start = nowMs();
        hooks.started(task);
        await task.run(tx);
        hooks.done(task, 0, start - t0, nowMs() - start);
      }),
    async tx(name, fn) {
      const start = nowMs();
      const result = await fn(tx);
      record(name, 0, start - t0, nowMs() - start);
      return result;
    },
  };
}

function pooled(sql: SqlClient, lanes: number, record: (name: string, lane: number, startMs: number, ms: number) => void, t0: number): Executor {
  const inTransaction = <T>(fn: (q: SqlQueryable) => Promise<T>) =>
    sql.transaction(async (q) => {
      await q.query(buildSettings(true));
      return fn(q);
    });
  return {
    lanes,
    concurrent: true,
    run: (tasks, hooks) =>
      schedule(tasks, lanes, async (task, lane) => {
        const start = nowMs();
        hooks.started(task);
        await inTransaction((q) => task.run(q));
        hooks.done(task, lane, start - t0, nowMs() - start);
      }),
    async tx(name, fn) {
      const start = nowMs();
      const result = await inTransaction(fn);
      record(name, 0, start - t0, nowMs() - start);
      return result;
    },
  };
}

/**
 * Rebuilds read models set-based, inside the database that holds the events:
 *
 * 1. Build copies of the tables are created in a side schema `<schema>_rm_rebuild`, without their
 *    indexes (a copy keeps its primary key only when its fill needs it), and filled straight from
 *    tl_events up to the head H as it is at the start: INSERT … SELECT per slice of the events
 *    table for per-event tables (audit), one statement per fold (families, anomalies). Nothing goes
 *    through JavaScript.
 * 2. Each table's primary key and indexes are built once its fill is done (a sort per index,
 *    instead of maintaining seven btrees row by row), then the copy is analysed. On PostgreSQL two
 *    statements run at once, on two connections, with no barrier between the steps: the audit
 *    indexes build beside the families fold.
 * 3. Catch-up: a live runner may have moved the live read models past H meanwhile. The events between
 *    are applied to the copies with the projections' own `apply` (search_path puts the copies first),
 *    until the copies are within one batch of the live checkpoints.
 * 4. Swap, in one transaction: the checkpoint rows are locked FOR UPDATE (a live runner's batch in
 *    flight finishes first; its next one waits), the last events are applied the same way, the live
 *    tables are dropped and the copies moved into their place (their index names travel with them),
 *    and each checkpoint set to the position its new table holds: the live runner's own checkpoint
 *    when it was ahead (it carries on as if nothing happened), else H (its next batch conflicts and it
 *    resumes from there). Readers wait only for this swap, and see the old tables until it commits.
 *
 * A failure before the swap leaves the live tables untouched (the side schema is dropped, and again
 * by the next rebuild). On PostgreSQL an advisory lock, held for the whole rebuild, allows one rebuild
 * per schema; on PGlite everything is one transaction.
 */
export async function rebuildInSql(store: OpenedStore & SqlBackedStore, projections: readonly Projection[], options: RebuildOptions = {}): Promise<RebuildResult> {
  const inSql = canRebuildInSql(store, projections);
  if (!inSql.ok) throw new Error(`rebuild: no set-based rebuild here: ${inSql.reason}`);
  const t0 = nowMs();
  const steps: RebuildStep[] = [];
  const record = (name: string, lane: number, startMs: number, ms: number) => steps.push({ name, lane, startMs, ms });
  if (inSql.events.engine !== 'postgres') {
    return store.sql.transaction(async (tx) => {
      await tx.query(buildSettings(false));
      return build(store, projections, options, singleTransaction(tx, record, t0), steps, t0);
    });
  }
  const lanes = Math.min(8, Math.max(1, Math.floor(options.parallelism ?? 2)));
  return store.sql.transaction(async (guard) => {
    const [{ locked }] = await guard.query<{ locked: boolean }>('select pg_try_advisory_xact_lock($1, hashtext(current_schema())) as locked', [REBUILD_LOCK]);
    if (!locked) throw new Error('another rebuild of the read models is running on this schema');
    return build(store, projections, options, pooled(store.sql, lanes, record, t0), steps, t0);
  });
}

async function build(
  store: SqlBackedStore,
  projections: readonly Projection[],
  options: RebuildOptions,
  exec: Executor,
  steps: RebuildStep[],
  t0: number,
): Promise<RebuildResult> {
  const names = projections.map((p) => p.name);
  const tables = [...new Set(projections.flatMap((p) => p.tables))].map((t) => READ_MODEL_TABLES[t]);
  const keepsPrimaryKey = new Set(projections.filter((p) => SQL_REBUILDS.get(p)!.keepsPrimaryKey).flatMap((p) => p.tables));

  // 1. The side schema and the empty copies; the head and the event count.
  const prep = await exec.tx('prepare', async (q) => {
    const [s] = await q.query<{ schema: string; path: string; head: string | number }>(
      `select current_schema() as schema, current_setting('search_path') as path,
              (select coalesce(max(position), 0) from tl_events) as head`,
    );
    const head = Number(s.head);
    // Read after the head: every event up to it lies in these pages (chunks are slices of them).
    const [{ pages }] = await q.query<{ pages: string | number }>(`select pg_relation_size('tl_events') / current_setting('block_size')::int as pages`);
    const side = `${s.schema}_rm_rebuild`;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(side)) throw new Error(`rebuild: unexpected schema name ${JSON.stringify(s.schema)}`);
    await q.query(`drop schema if exists ${side} cascade`);
    await q.query(`create schema ${side}`);
    for (const t of tables) await q.query(createTableSql(t, { as: `${side}.${t.name}`, primaryKey: keepsPrimaryKey.has(t.name) }));
    return { schema: s.schema, path: s.path, side, head, pages: Number(pages) };
  });
  const { schema, path, side, head, pages } = prep;
  // Events up to the head: positions have gaps only where appends rolled back, so the head stands in
  // (for progress and the tasks' weights) until the count, a task of its own, is done.
  let total = head;
  const copies = Object.fromEntries(tables.map((t) => [t.name, `${side}.${t.name}`]));

  try {
    // Every task's weight is its estimated share of the work, in rows of rm_audit copied (progress).
    // List order is priority: the folds first (one long statement each), then the slices, then each
    // table's primary key and indexes (biggest first) once its fill is done, then attach + analyze.
    const fills = new Map<string, Task[]>(tables.map((t) => [t.name, []]));
    const folds: Task[] = [];
    const slices: Task[] = [];
    // Per-event tables are filled by slices of the events table's pages (a TID range scan each: no
    // index, and any order, since their rows are independent), ~chunkSize events per slice.
    const chunkPages = Math.max(1, Math.ceil(((options.chunkSize ?? 50_000) * pages) / Math.max(1, head)));
    for (const p of projections) {
      const r = SQL_REBUILDS.get(p)!;
      const mine: Task[] = [];
      if (r.granularity === 'fold') {
        const events = { where: 'position <= $1', params: [head] };
        mine.push({ name: `fill ${p.name}`, weight: r.costPerEvent * head, after: [], run: (q) => r.fill(q, copies, events) });
        folds.push(...mine);
      } else {
        for (let from = 0; from < pages; from += chunkPages) {
          const to = Math.min(pages, from + chunkPages);
          const events = { where: 'position <= $1 and ctid >= $2::tid and ctid < $3::tid', params: [head, `(${from},0)`, `(${to},0)`] };
          mine.push({ name: `fill ${p.name} (pages ${from}–${to})`, weight: (r.costPerEvent * head * (to - from)) / pages, after: [], run: (q) => r.fill(q, copies, events) });
        }
        slices.push(...mine);
      }
      for (const t of p.tables) fills.get(t)!.push(...mine);
    }
    const rowsOf = (t: ReadModelTable) =>
      projections.some((p) => p.tables.includes(t.name) && SQL_REBUILDS.get(p)!.granularity === 'rows') ? head : head * COST.foldRowsPerEvent;
    // Statistics for what queries filter and sort on (jsonb payloads are never filtered, and costly to
    // sample). Before the index builds, which wait for it anyway (their locks conflict), unless the
    // table has an expression index: ANALYZE gathers that expression's statistics from the index.
    const analyze = (t: ReadModelTable, after: readonly Task[]): Task => ({
      name: `analyze ${t.name}`,
      weight: COST.analyze * rowsOf(t),
      after,
      run: (q) => q.query(`analyze ${side}.${t.name} (${scalarColumns(t).join(', ')})`).then(() => undefined),
    });
    const indexesOf = new Map<string, Task[]>();
    const finish: Task[] = [];
    for (const t of tables) {
      const early = Object.values(t.indexes).every((definition) => !/\w\(/.test(definition)) ? analyze(t, fills.get(t.name)!) : undefined;
      if (early) finish.push(early);
      const after = early ? [early] : fills.get(t.name)!;
      const mine: Task[] = [
        ...(keepsPrimaryKey.has(t.name)
          ? []
          : [{ name: `index ${t.name}_pkey`, weight: COST.primaryKey * rowsOf(t), after, run: (q: SqlQueryable) => q.query(`create unique index ${t.name}_pkey on ${side}.${t.name} (${t.primaryKey})`).then(() => undefined) }]),
        ...createIndexSql(t, { on: `${side}.${t.name}` }).map((sql, i) => ({
          name: `index ${Object.keys(t.indexes)[i]}`,
          weight: COST.index * rowsOf(t),
          after,
          run: (q: SqlQueryable) => q.query(sql).then(() => undefined),
        })),
      ];
      indexesOf.set(t.name, mine);
      if (!early) finish.push(analyze(t, mine));
      if (!keepsPrimaryKey.has(t.name)) {
        finish.push({
          name: `attach ${t.name}_pkey`,
          weight: 0,
          after: [...mine, ...finish.filter((f) => f.name === `analyze ${t.name}`)],
          run: (q) => q.query(`alter table ${side}.${t.name} add constraint ${t.name}_pkey primary key using index ${t.name}_pkey`).then(() => undefined),
        });
      }
    }
    const indexes = [...indexesOf.values()].flat().sort((a, b) => b.weight - a.weight);
    const count: Task = {
      name: 'count events',
      weight: COST.count * head,
      after: [],
      run: async (q) => {
        const [{ n }] = await q.query<{ n: string | number }>('select count(*) as n from tl_events where position <= $1', [head]);
        total = Number(n);
      },
    };
    const tasks = [count, ...folds, ...slices, ...finish.filter((f) => f.after.every((a) => !indexes.includes(a))), ...indexes, ...finish.filter((f) => f.after.some((a) => indexes.includes(a)))];
    const swapWeight = 0.01 * head;
    const totalWeight = tasks.reduce((a, t) => a + t.weight, 0) + swapWeight;
    // Progress: the weight of the finished tasks, plus, for those still running (one statement can
    // be a fifth of the rebuild), what the lanes' pace so far says they have done (at most 90%).
    let doneWeight = 0;
    let laneMs = 0;
    const running = new Map<Task, number>();
    const progress: RebuildProgress = { done: 0, total, fraction: 0, position: 0, head, phase: 'fill' };
    const report = (phase = progress.phase ?? '') => {
      const pace = laneMs > 0 ? doneWeight / laneMs : 0;
      const now = nowMs();
      let estimate = doneWeight;
      for (const [task, start] of running) estimate += Math.min(0.9 * task.weight, (now - start) * pace);
      const fraction = Math.max(progress.fraction, totalWeight > 0 ? Math.min(1, estimate / totalWeight) : 1);
      Object.assign(progress, { phase, fraction, total, done: Math.round(total * fraction) });
      options.onProgress?.({ ...progress });
    };
    let fillsLeft = folds.length + slices.length;
    const hooks: TaskHooks = {
      started: (task) => running.set(task, nowMs()),
      done: (task, lane, startMs, ms) => {
        running.delete(task);
        if (task.name.startsWith('fill ') && --fillsLeft === 0) progress.position = head;
        steps.push({ name: task.name, lane, startMs, ms });
        doneWeight += task.weight;
        laneMs += ms;
        report(task.name.split(' ')[0]);
      },
    };
    const ticker = options.onProgress ? setInterval(() => report(), 1000) : undefined;
    try {
      await exec.run(tasks, hooks);
    } finally {
      clearInterval(ticker);
    }

    // 3. Catch up with a live runner that moved past the head meanwhile (none on PGlite: one transaction).
    const built = new Map(names.map((n) => [n, head]));
    const batchSize = options.batchSize ?? 5000;
    if (exec.concurrent) {
      for (let round = 0; round < 100; round++) {
        const live = await liveCheckpoints(store.sql, names);
        const gap = Math.max(0, ...names.map((n) => live.get(n)! - built.get(n)!));
        if (gap <= batchSize) break;
        const start = nowMs();
        await catchUp(store, projections, built, live, { side, path, batchSize }, async (fn) =>
          store.sql.transaction(async (q) => {
            await q.query(buildSettings(true));
            await fn(q);
          }),
        );
        steps.push({ name: `catch up ${gap} events`, lane: 0, startMs: start - t0, ms: nowMs() - start });
      }
    }

    // 4. Swap.
    const positions = await exec.tx('swap', async (q) => {
      const live = await liveCheckpoints(q, names, { lock: true });
      const target = new Map(names.map((n) => [n, Math.max(built.get(n)!, live.get(n)!)]));
      if (names.some((n) => target.get(n)! > built.get(n)!)) {
        if (!exec.concurrent) throw new Error('rebuild: a checkpoint is past the head inside the rebuild transaction');
        await catchUp(store, projections, built, target, { side, path, batchSize }, (fn) => fn(q));
      }
      const live_ = tables.map((t) => `${schema}.${t.name}`);
      await q.query(`lock table ${live_.join(', ')} in access exclusive mode`);
      for (const t of tables) {
        await q.query(`drop table ${schema}.${t.name}`);
        await q.query(`alter table ${side}.${t.name} set schema ${schema}`);
      }
      await q.query(`drop schema ${side}`);
      await q.query(
        `update rm_checkpoints c set position = v.position, updated_at = now()
           from (select unnest($1::text[]) as projection, unnest($2::bigint[]) as position) v
          where c.projection = v.projection`,
        [names, names.map((n) => built.get(n)!)],
      );
      return built;
    });
    doneWeight += swapWeight;
    progress.position = Math.min(...positions.values());
    report('swap');
    return { ...progress, total, done: total, fraction: 1, method: 'sql', steps };
  } catch (error) {
    // The live tables are untouched; drop the copies (PGlite: the transaction's rollback does).
    if (exec.concurrent) await store.sql.query(`drop schema if exists ${side} cascade`).catch(() => undefined);
    throw error;
  }
}

/** A table's columns that are not jsonb. */
function scalarColumns(t: ReadModelTable): string[] {
  return splitTopLevel(t.columns)
    .map((c) => c.trim().split(/\s+/))
    .filter(([name, type]) => name && type !== 'jsonb')
    .map(([name]) => name);
}

/** The projections' checkpoints (0 when missing); with `lock`, the rows are created and locked FOR UPDATE. */
async function liveCheckpoints(q: SqlQueryable, names: readonly string[], opts: { lock?: boolean } = {}): Promise<Map<string, number>> {
  if (opts.lock) {
    await q.query(`insert into rm_checkpoints (projection, position) select unnest($1::text[]), 0 on conflict (projection) do nothing`, [names]);
  }
  const rows = await q.query<{ projection: string; position: string | number }>(
    `select projection, position from rm_checkpoints where projection = any($1::text[]) order by projection${opts.lock ? ' for update' : ''}`,
    [names],
  );
  const map = new Map(names.map((n) => [n, 0]));
  for (const r of rows) map.set(r.projection, Number(r.position));
  return map;
}

/**
 * Applies the events in (built, to] of each projection to its build copies with the projection's
 * own `apply`, batch by batch: search_path puts the side schema first for the batch, so `apply`'s
 * table names resolve to the copies. Moves `built` along.
 */
async function catchUp(
  store: SqlBackedStore,
  projections: readonly Projection[],
  built: Map<string, number>,
  to: ReadonlyMap<string, number>,
  ctx: { side: string; path: string; batchSize: number },
  inTransaction: (fn: (q: SqlQueryable) => Promise<void>) => Promise<void>,
): Promise<void> {
  for (;;) {
    const behind = projections.filter((p) => to.get(p.name)! > built.get(p.name)!);
    if (behind.length === 0) return;
    const after = Math.min(...behind.map((p) => built.get(p.name)!));
    const upTo = Math.max(...behind.map((p) => to.get(p.name)!));
    const events = (await store.readAll({ after, maxCount: ctx.batchSize })).filter((e) => e.position <= upTo);
    if (events.length === 0) throw new Error(`rebuild: no events after ${after} although a checkpoint is at ${upTo}`);
    const last = events[events.length - 1].position;
    await inTransaction(async (q) => {
      await q.query(`select set_config('search_path', $1, true)`, [`${ctx.side}, ${ctx.path}`]);
      for (const p of behind) {
        const from = built.get(p.name)!;
        const until = to.get(p.name)!;
        const pending = events.filter((e) => e.position > from && e.position <= until);
        if (pending.length > 0) await p.apply(q, pending);
      }
      await q.query(`select set_config('search_path', $1, true)`, [ctx.path]);
    });
    for (const p of behind) built.set(p.name, Math.max(built.get(p.name)!, Math.min(to.get(p.name)!, last)));
  }
}

/** Column definitions split at the commas outside parentheses (a generated column has some inside). */
function splitTopLevel(columns: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(columns.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(columns.slice(start));
  return parts;
}
