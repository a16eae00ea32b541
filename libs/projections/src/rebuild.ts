import { sqlBacked, type OpenedStore, type SqlBackedStore } from '@token-ledger/event-store';
import type { Projection } from './projection';
import { commitBatch, readCheckpoints } from './projection-runner';
import { canRebuildInSql, rebuildInSql } from './rebuild-in-sql';
import type { RebuildOptions, RebuildProgress, RebuildResult } from './rebuild-types';

export type { RebuildOptions, RebuildProgress, RebuildResult, RebuildStep } from './rebuild-types';

/**
 * Rebuilds the given read models from position 0 up to the head as it was when the rebuild started
 * (a live runner carries on from there). Both methods produce exactly what live projection produces
 * (test/support/read-model-suite.ts, rebuild-in-sql.int.spec.ts):
 *
 * - set-based (rebuild-in-sql.ts), when the events live in the read models' database
 *   (`capabilities.eventsInSql`: embedded and PostgreSQL stores) and every projection has a SQL
 *   rebuild: build copies filled by INSERT … SELECT from tl_events, indexed once at the end, then
 *   swapped in atomically. The live tables keep serving (and a live runner keeps applying) until the swap.
 * - replay, for everything else (EventStoreDB, whose events are not in SQL; a projection without a
 *   SQL rebuild, e.g. one wrapped for instrumentation or tests): empties the tables and applies the
 *   events batch by batch through the live runner's commit path.
 */
export async function rebuildProjections(store: OpenedStore, projections: readonly Projection[], options: RebuildOptions = {}): Promise<RebuildResult> {
  const method = options.method ?? 'auto';
  const target = sqlBacked(store, 'the read models');
  const inSql = canRebuildInSql(store, projections);
  if (method === 'sql' && !inSql.ok) throw new Error(`rebuild: no set-based rebuild here: ${inSql.reason}`);
  if (method !== 'replay' && inSql.ok) return rebuildInSql(target, projections, options);
  return rebuildByReplay(target, projections, options);
}

/**
 * The generic path: drops the read models and re-applies every event through commitBatch, the live
 * runner's own commit (same checkpoints, locked FOR UPDATE, so a live runner beside it conflicts
 * rather than applying a batch twice). Read models are empty, then partial, until it finishes.
 */
export async function rebuildByReplay(
  store: OpenedStore & SqlBackedStore,
  projections: readonly Projection[],
  options: Pick<RebuildOptions, 'batchSize' | 'onProgress'> = {},
): Promise<RebuildResult> {
  const batchSize = options.batchSize ?? 5000;
  const names = projections.map((p) => p.name);
  await store.sql.transaction(async (tx) => {
    for (const table of projections.flatMap((p) => p.tables)) await tx.query(`delete from ${table}`);
    await tx.query(
      `insert into rm_checkpoints (projection, position) select unnest($1::text[]), 0
       on conflict (projection) do update set position = 0, updated_at = now()`,
      [names],
    );
  });
  const head = await store.headPosition();
  // Events in SQL are counted; EventStoreDB positions are commit offsets, so position / head is the fraction there.
  const total = store.capabilities.eventsInSql
    ? Number((await store.sql.query<{ n: string | number }>('select count(*) as n from tl_events where position <= $1', [head]))[0].n)
    : 0;
  const progress: RebuildProgress = { done: 0, total, fraction: head === 0 ? 1 : 0, position: 0, head };
  let checkpoints = await readCheckpoints(store.sql, names);
  while (progress.position < head) {
    const events = (await store.readAll({ after: progress.position, maxCount: batchSize })).filter((e) => e.position <= head);
    if (events.length === 0) break;
    checkpoints = await commitBatch(store.sql, projections, checkpoints, events, { eventsInSql: store.capabilities.eventsInSql !== undefined });
    progress.done += events.length;
    progress.position = events[events.length - 1].position;
    progress.fraction = total > 0 ? progress.done / total : progress.position / head;
    options.onProgress?.({ ...progress });
  }
  return { ...progress, fraction: 1, method: 'replay', steps: [] };
}
