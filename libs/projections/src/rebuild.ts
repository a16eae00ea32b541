import type { Projection } from './projection';
import { commitBatch, readCheckpoints, type SqlBackedStore } from './projection-runner';

export interface RebuildProgress {
  done: number;
  total: number;
  position: number;
  head: number;
}

/**
 * Drops the given read models and rebuilds them from position 0 up to the head as it was when the
 * rebuild started (a live runner carries on from there). Same commit path as the live runner, so
 * the result is what live projection would have produced.
 */
export async function rebuildProjections(
  store: SqlBackedStore,
  projections: readonly Projection[],
  options: { batchSize?: number; onProgress?: (p: RebuildProgress) => void } = {},
): Promise<RebuildProgress> {
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
  const [{ total }] = await store.sql.query<{ total: string | number }>('select count(*) as total from tl_events where position <= $1', [head]);
  const progress: RebuildProgress = { done: 0, total: Number(total), position: 0, head };
  let checkpoints = await readCheckpoints(store.sql, names);
  while (progress.position < head) {
    const events = (await store.readAll({ after: progress.position, maxCount: batchSize })).filter((e) => e.position <= head);
    if (events.length === 0) break;
    checkpoints = await commitBatch(store.sql, projections, checkpoints, events);
    progress.done += events.length;
    progress.position = events[events.length - 1].position;
    options.onProgress?.({ ...progress });
  }
  return progress;
}
