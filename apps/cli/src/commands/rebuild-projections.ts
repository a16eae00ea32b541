import type { Logger } from 'pino';
import { ALL_PROJECTIONS, rebuildProjections, type SqlBackedStore } from '@token-ledger/projections';
import type { LedgerConfig } from '../../../token-ledger/src/config/ledger-config';
import { openRuntime } from '../../../token-ledger/src/runtime';
import { ProgressBar } from './progress';

export const REBUILD_HELP = `Usage: token-ledger rebuild-projections [--projection NAME] [--batch-size N]

Drops the read models (all, or only NAME: ${ALL_PROJECTIONS.map((p) => p.name).join(', ')}) and rebuilds them from
position 0, with a progress bar on stderr. With the embedded store, stop the server first (one
process per data directory). With PostgreSQL a running server may stay up: it carries on from
the rebuilt checkpoint.
`;

export async function rebuild(config: LedgerConfig, logger: Logger, values: { projection?: string; 'batch-size'?: string }): Promise<number> {
  const selected = values.projection ? ALL_PROJECTIONS.filter((p) => p.name === values.projection) : [...ALL_PROJECTIONS];
  if (selected.length === 0) {
    process.stderr.write(`token-ledger rebuild-projections: unknown projection "${values.projection}" (one of ${ALL_PROJECTIONS.map((p) => p.name).join(', ')})\n`);
    return 2;
  }
  const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)) {
    process.stderr.write('token-ledger rebuild-projections: --batch-size must be a whole number from 1 to 100000\n');
    return 2;
  }
  const runtime = await openRuntime(config, logger);
  try {
    // Always on: a rebuild is long by nature; off a terminal it prints a line every 2 s.
    const bar = new ProgressBar(process.stderr, true, `rebuilding ${selected.map((p) => p.name).join(', ')}`, 0);
    const result = await rebuildProjections(runtime.store as unknown as SqlBackedStore, selected, {
      batchSize,
      onProgress: (p) => {
        bar.setTotal(p.total);
        bar.update(p.done);
      },
    });
    bar.finish();
    return 0;
  } finally {
    await runtime.close();
  }
}
