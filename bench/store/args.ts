import { parseArgs } from 'node:util';

import { positive, UsageError } from '../common/driver';

export const STORE_NAMES = ['embedded', 'postgres'] as const;
export type StoreName = (typeof STORE_NAMES)[number];

export interface StoreBenchOptions {
  stores: StoreName[];
  streams: number[];
  /** Run each (store, streams) cell without and/or with a competing subscriber. */
  subscriber: boolean[];
  durationSec: number;
  warmupSec: number;
  databaseUrl: string;
  jsonFile: string | undefined;
}

export const USAGE = `Usage: npm run bench:store -- [options]

The event store alone (libs/event-store, its real adapters), without HTTP or domain code: N
workers, each appending one event (with a snapshot, as a rotation does) to its own stream with
the exact expected revision, as fast as the store acknowledges. Concurrent appends share a
transaction (the store's group commit), so more streams mean bigger commits.
  embedded  PGlite in a fresh temporary directory (LEDGER_STORE=embedded)
  postgres  PostgreSQL, a fresh database tl_store_bench_<random> on --database-url, dropped after

Options:
  --stores LIST       subset of embedded,postgres (default embedded,postgres)
  --streams LIST      concurrent streams (= workers), comma-separated (default 1,16,64,256)
  --subscriber MODE   off, on (a subscriber reads every event with subscribeToAll while the
                      workers append), or both (default both)
  --duration SEC      measured window per cell (default 10)
  --warmup SEC        warm-up per cell, discarded (default 2)
  --database-url URL  server for the throw-away database (default $DATABASE_URL or
                      postgres://postgres@127.0.0.1:5432/test)
  --json FILE         also write the results as JSON
  -h, --help          show this help

Each cell opens a fresh store. The table goes to stdout, progress to stderr.`;

export function parseOptions(argv: string[]): StoreBenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        stores: { type: 'string', default: STORE_NAMES.join(',') },
        streams: { type: 'string', default: '1,16,64,256' },
        subscriber: { type: 'string', default: 'both' },
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        'database-url': { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const stores: StoreName[] = [];
  for (const raw of String(v.stores).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(STORE_NAMES as readonly string[]).includes(raw)) throw new UsageError(`unknown store "${raw}" (expected ${STORE_NAMES.join(', ')})`);
    if (!stores.includes(raw as StoreName)) stores.push(raw as StoreName);
  }
  if (stores.length === 0) throw new UsageError('--stores needs at least one value');
  const streams = [...new Set(String(v.streams).split(',').map((s) => s.trim()).filter(Boolean))].map((s) => positive('--streams', s, { integer: true }));
  if (streams.length === 0) throw new UsageError('--streams needs at least one value');
  if (streams.some((n) => n > 4096)) throw new UsageError('--streams values above 4096 are not supported');
  const modes: Record<string, boolean[]> = { off: [false], on: [true], both: [false, true] };
  const subscriber = modes[String(v.subscriber)];
  if (!subscriber) throw new UsageError(`--subscriber: expected off, on or both, got "${String(v.subscriber)}"`);
  return {
    stores,
    streams,
    subscriber,
    durationSec: positive('--duration', String(v.duration)),
    warmupSec: positive('--warmup', String(v.warmup), { allowZero: true }),
    databaseUrl: v['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    jsonFile: v.json,
  };
}
