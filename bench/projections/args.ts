import { positive, UsageError } from '../common/driver';
import { parseArgs } from 'node:util';

export const PARTS = ['rebuild', 'lag'] as const;
export type Part = (typeof PARTS)[number];

export const METHODS = ['auto', 'sql', 'replay'] as const;
export type Method = (typeof METHODS)[number];

/** One timed rebuild: the library's options for it. */
export interface RebuildConfig {
  method: Method;
  /** Set-based path on PostgreSQL: statements at once. */
  parallelism: number;
  /** Replay batches (and the set-based path's catch-up batches). */
  batchSize: number;
}

export interface ProjectionBenchOptions {
  parts: Part[];
  events: number;
  /** Every rebuild to time, in order (methods × parallelism or batch size, × --repeat). */
  rebuilds: RebuildConfig[];
  batchSizes: number[];
  /** Also time a bare readAll pass (with and without JSON parsing) to locate the cost of reading. */
  profile: boolean;
  durationSec: number;
  warmupSec: number;
  chains: number;
  jsonFile: string | undefined;
  databaseUrl: string;
  ledgerCli: string;
  startTimeoutSec: number;
  requestTimeoutSec: number;
}

/** The library's defaults (libs/projections/src/rebuild.ts). */
export const DEFAULT_BATCH_SIZE = 5000;
export const DEFAULT_PARALLELISM = 2;

export const USAGE = `Usage: npm run bench:projections -- [options]

Two measurements of the read models (libs/projections) on PostgreSQL:
  rebuild  throughput: a fresh database tl_bench_<random> is seeded with realistic events in SQL
           (not timed), then rebuildProjections(store, ALL_PROJECTIONS, options) — the library call
           behind \`token-ledger rebuild-projections\` — is timed and its result checked (row counts,
           every family's final state, every audit row against its event, checkpoints, spot checks).
           Target >= 50,000 events/s.
  lag      read-model lag under load: token-ledger serve (LEDGER_STORE=postgres, fresh database)
           with N refresh chains (bench/refresh's load driver); the histogram
           token_ledger_projection_lag_seconds is scraped from GET /metrics at the start and at the
           end of the measured window and its p50/p95/p99 read from the bucket bounds. Target p99 < 100 ms.

Options:
  --only PART           run only one part: rebuild or lag (default: both)
  --events N            events to seed for the rebuild, 10 per token family (default 1000000)
  --method LIST         rebuild method(s), comma-separated: auto (the library's default: sql on
                        PostgreSQL), sql (set-based, inside the database), replay (batch by batch)
                        (default auto)
  --parallel LIST       sql: statements at once, comma-separated (default ${DEFAULT_PARALLELISM}, the library's default)
  --batch-size LIST     replay: batch size(s), comma-separated (default ${DEFAULT_BATCH_SIZE}, the library's
                        default), e.g. 1000,5000,20000
  --repeat N            time every configuration N times, interleaved (default 1)
  --profile             also time a bare readAll pass over all events, with and without JSON parsing
  --duration SEC        lag: measured window (default 10)
  --warmup SEC          lag: warm-up before the window, discarded (default 2)
  --chains N            lag: concurrent refresh chains (default 64)
  --json FILE           also write the full results as JSON
  --database-url URL    server on which the throw-away databases are created and dropped
                        (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --ledger-cli PATH     token-ledger CLI for the lag part (default dist/apps/cli/src/main.js)
  --start-timeout SEC   how long the server may take to become ready (default 60)
  --request-timeout SEC per-request timeout (default 10)
  -h, --help            show this help

The table goes to stdout, progress to stderr. Exit code 1 when a part failed or a result check
failed (a missed target alone is reported as FAIL in the table, exit code 0).`;

export { UsageError };

export function parseOptions(argv: string[]): ProjectionBenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        only: { type: 'string' },
        events: { type: 'string', default: '1000000' },
        method: { type: 'string', default: 'auto' },
        parallel: { type: 'string', default: String(DEFAULT_PARALLELISM) },
        'batch-size': { type: 'string', default: String(DEFAULT_BATCH_SIZE) },
        repeat: { type: 'string', default: '1' },
        profile: { type: 'boolean', default: false },
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        chains: { type: 'string', default: '64' },
        json: { type: 'string' },
        'database-url': { type: 'string' },
        'ledger-cli': { type: 'string', default: 'dist/apps/cli/src/main.js' },
        'start-timeout': { type: 'string', default: '60' },
        'request-timeout': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';

  let parts: Part[] = [...PARTS];
  if (v.only !== undefined) {
    if (!(PARTS as readonly string[]).includes(v.only)) throw new UsageError(`--only must be one of ${PARTS.join(', ')}, got "${v.only}"`);
    parts = [v.only as Part];
  }
  const events = positive('--events', String(v.events), { integer: true });
  if (events < 10) throw new UsageError('--events must be at least 10 (one token family)');
  if (events > 50_000_000) throw new UsageError('--events above 50,000,000 is not supported');
  const batchSizes = [...new Set(String(v['batch-size']).split(',').map((s) => s.trim()).filter(Boolean))].map((s) =>
    positive('--batch-size', s, { integer: true }),
  );
  if (batchSizes.length === 0) throw new UsageError('--batch-size needs at least one value');
  if (batchSizes.some((b) => b > 200_000)) throw new UsageError('--batch-size above 200,000 is not supported');
  const list = (flag: string, raw: string) => [...new Set(raw.split(',').map((x) => x.trim()).filter(Boolean))];
  const methods = list('--method', String(v.method));
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got "${m}"`);
  if (methods.length === 0) throw new UsageError('--method needs at least one value');
  const parallels = list('--parallel', String(v.parallel)).map((x) => positive('--parallel', x, { integer: true }));
  if (parallels.length === 0 || parallels.some((n) => n > 8)) throw new UsageError('--parallel takes whole numbers from 1 to 8');
  const repeat = positive('--repeat', String(v.repeat), { integer: true });
  if (repeat > 20) throw new UsageError('--repeat above 20 is not supported');
  const configs: RebuildConfig[] = methods.flatMap((method) =>
    method === 'replay'
      ? batchSizes.map((batchSize) => ({ method: method as Method, parallelism: parallels[0], batchSize }))
      : parallels.map((parallelism) => ({ method: method as Method, parallelism, batchSize: batchSizes[0] })),
  );
  const rebuilds = Array.from({ length: repeat }, () => configs).flat();
  const chains = positive('--chains', String(v.chains), { integer: true });
  if (chains > 1024) throw new UsageError('--chains above 1024 is not supported');

  return {
    parts,
    events,
    rebuilds,
    batchSizes,
    profile: Boolean(v.profile),
    durationSec: positive('--duration', String(v.duration)),
    warmupSec: positive('--warmup', String(v.warmup), { allowZero: true }),
    chains,
    jsonFile: v.json,
    databaseUrl: v['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    ledgerCli: String(v['ledger-cli']),
    startTimeoutSec: positive('--start-timeout', String(v['start-timeout'])),
    requestTimeoutSec: positive('--request-timeout', String(v['request-timeout'])),
  };
}
