import type { Logger } from 'pino';
import { ALL_PROJECTIONS, rebuildProjections } from '@token-ledger/projections';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import { openRuntime } from '../../../token-ledger/src/runtime';
import { ProgressBar } from './progress';

const METHODS = ['auto', 'sql', 'replay'] as const;

export const REBUILD_HELP = `Usage: token-ledger rebuild-projections [--projection NAME] [--method auto|sql|replay]
                                        [--batch-size N] [--parallel N]

Rebuilds the read models (all, or only NAME: ${ALL_PROJECTIONS.map((p) => p.name).join(', ')}) from position 0,
with a progress bar on stderr (events/s and ETA over the whole rebuild).

Embedded and postgres stores (the events are in the read models' database): set-based, inside the
database. Build copies of the tables are filled straight from the events table, indexed at the end,
caught up with a live server's projection, and swapped in atomically; the read models keep
answering until the swap. EventStoreDB: replay, as the live runner applies events, batch by batch
(--batch-size, default 5000); the read models are empty, then partial, until it finishes.

With the embedded store, stop the server first (one process per data directory). With PostgreSQL a
running server may stay up: it keeps projecting during the rebuild and carries on after the swap.
One rebuild per schema at a time.

Options:
  --projection NAME   rebuild only this read model (default: all)
  --method M          auto (default: sql where the store allows it), sql, or replay
  --batch-size N      events per replayed or caught-up batch, 1–100000 (default 5000)
  --parallel N        PostgreSQL, sql method: statements run at once, 1–8 (default 2)
`;

function wholeNumber(raw: string | undefined, flag: string, max: number): number | undefined | Error {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : new Error(`${flag} must be a whole number from 1 to ${max}`);
}

export async function rebuild(
  config: LedgerConfig,
  logger: Logger,
  values: { projection?: string; method?: string; 'batch-size'?: string; parallel?: string },
): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`token-ledger rebuild-projections: ${message}\n`);
    return 2;
  };
  const selected = values.projection ? ALL_PROJECTIONS.filter((p) => p.name === values.projection) : [...ALL_PROJECTIONS];
  if (selected.length === 0) return fail(`unknown projection "${values.projection}" (one of ${ALL_PROJECTIONS.map((p) => p.name).join(', ')})`);
  const method = (values.method ?? 'auto') as (typeof METHODS)[number];
  if (!METHODS.includes(method)) return fail(`--method must be one of ${METHODS.join(', ')}`);
  const batchSize = wholeNumber(values['batch-size'], '--batch-size', 100_000);
  if (batchSize instanceof Error) return fail(batchSize.message);
  const parallelism = wholeNumber(values.parallel, '--parallel', 8);
  if (parallelism instanceof Error) return fail(parallelism.message);
  const runtime = await openRuntime(config, logger);
  // Always on: a rebuild is long by nature; off a terminal it prints a line every 2 s.
  const bar = new ProgressBar(process.stderr, true, `rebuilding ${selected.map((p) => p.name).join(', ')}`, 0);
  try {
    const result = await rebuildProjections(runtime.store, selected, {
      method,
      batchSize,
      parallelism,
      onProgress: (p) => {
        bar.setTotal(p.total);
        // The set-based path reports the work done in events (copying, folding and indexing each
        // weighted by its share), so the bar's events/s and ETA hold for the whole rebuild.
        bar.update(p.done, p.fraction);
      },
    });
    bar.update(result.done, 1);
    bar.finish();
    logger.info({ method: result.method, events: result.total, head: result.head }, 'read models rebuilt');
    return 0;
  } catch (error) {
    bar.clear();
    throw error;
  } finally {
    await runtime.close();
  }
}
