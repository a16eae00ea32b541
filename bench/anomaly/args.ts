import { positive, UsageError } from '../common/driver';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

export const PARTS = ['latency', 'backtest'] as const;
export type Part = (typeof PARTS)[number];

export interface AnomalyBenchOptions {
  parts: Part[];
  /** Latency part: the anomaly engine reads events.v1 through Kafka instead of the store in-process. */
  kafka: boolean;
  brokers: string[];
  durationSec: number;
  warmupSec: number;
  chains: number;
  probeIntervalMs: number;
  /** Latency: LEDGER_ANOMALY_RULES for the server (default: none, the built-in defaults). */
  serverRules: string | undefined;
  missTimeoutSec: number;
  targetP99Ms: number;
  events: number;
  backtestRuns: number;
  jsonFile: string | undefined;
  /** Keep the scratch directory (server log, CLI output) even after a good run. */
  keepLogs: boolean;
  databaseUrl: string;
  ledgerCli: string;
  startTimeoutSec: number;
  requestTimeoutSec: number;
}

export const USAGE = `Usage: npm run bench:anomaly -- [options]

Two measurements of the anomaly engine (libs/anomaly, SPEC §5) on PostgreSQL:
  latency   detection latency under refresh load: token-ledger serve (LEDGER_STORE=postgres, fresh
            database) runs N closed-loop refresh chains (bench/refresh's load driver) while a probe
            loop triggers a real reuse every --probe-interval ms (issue a family, refresh it, present
            the first refresh token again → 400 invalid_grant). Latency = append → AnomalyDetected: the
            probe's TokenReuseDetected seen → its AnomalyDetected (rule reuse_detected) seen, both by
            one PostgresEventStore subscription in the bench process (also reported: from the reuse
            response). Also scrapes token_ledger_anomaly_detection_lag_seconds
            from GET /metrics. Target p99 < 100 ms.
  backtest  throughput of \`token-ledger backtest --rules FILE --format json\` (the built CLI, as a child
            process) over a fresh database seeded in SQL (not timed) with realistic events that make
            every rule fire: events/s, peak RSS, detections by rule.

Options:
  --only PART            run only one part: latency or backtest (default: both)
  --kafka                latency: run the server with KAFKA_BROKERS, so the engine reads events.v1
                         through its consumer group (relay → Kafka → engine) instead of in-process
  --brokers LIST         Kafka brokers for --kafka (default $KAFKA_BROKERS or 127.0.0.1:9092)
  --duration SEC         latency: measured window (default 30)
  --warmup SEC           latency: warm-up before the window, discarded (default 5)
  --chains N             latency: concurrent refresh chains (default 64)
  --probe-interval MS    latency: a new reuse probe every MS milliseconds (default 100)
  --miss-timeout SEC     latency: a probe without its anomaly after this long is a miss (default 10)
  --target-p99 MS        latency target (default 100)
  --server-rules FILE    latency: rules file for the server (LEDGER_ANOMALY_RULES; default: the built-in
                         defaults), e.g. to see the latency without the load's refresh_burst detections
  --events N             backtest: events to seed (default 1000000)
  --backtest-runs N      backtest: timed runs of the CLI over the same data (default 1)
  --json FILE            also write the full results as JSON
  --keep-logs            keep the server log and the CLI output (kept anyway when a part fails)
  --database-url URL     server on which the throw-away databases are created and dropped
                         (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --ledger-cli PATH      token-ledger CLI (default dist/apps/cli/src/main.js)
  --start-timeout SEC    how long the server may take to become ready (default 60)
  --request-timeout SEC  per-request timeout (default 10)
  -h, --help             show this help

The table goes to stdout, progress to stderr. Exit code 1 when a part broke (server did not start,
no anomaly detected at all, the CLI failed, a rule the seed triggers detected nothing); a missed
latency target alone is shown as FAIL in the table (exit code 0). Exit code 2: usage error.`;

export { UsageError };

export function parseOptions(argv: string[]): AnomalyBenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        only: { type: 'string' },
        kafka: { type: 'boolean', default: false },
        brokers: { type: 'string' },
        duration: { type: 'string', default: '30' },
        warmup: { type: 'string', default: '5' },
        chains: { type: 'string', default: '64' },
        'probe-interval': { type: 'string', default: '100' },
        'miss-timeout': { type: 'string', default: '10' },
        'target-p99': { type: 'string', default: '100' },
        'server-rules': { type: 'string' },
        events: { type: 'string', default: '1000000' },
        'backtest-runs': { type: 'string', default: '1' },
        json: { type: 'string' },
        'keep-logs': { type: 'boolean', default: false },
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
  const chains = positive('--chains', String(v.chains), { integer: true });
  if (chains > 1024) throw new UsageError('--chains above 1024 is not supported');
  const events = positive('--events', String(v.events), { integer: true });
  if (events < 2000) throw new UsageError('--events must be at least 2000 (a few hundred families, so that every rule fires)');
  if (events > 50_000_000) throw new UsageError('--events above 50,000,000 is not supported');
  const probeIntervalMs = positive('--probe-interval', String(v['probe-interval']));
  if (probeIntervalMs < 5) throw new UsageError('--probe-interval below 5 ms is not supported');
  const durationSec = positive('--duration', String(v.duration));
  if (v['server-rules'] !== undefined && !fs.existsSync(v['server-rules'])) throw new UsageError(`--server-rules: ${v['server-rules']} does not exist`);
  if (durationSec < 2) throw new UsageError('--duration must be at least 2 s');
  const brokers = String(v.brokers ?? process.env.KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b))) {
    throw new UsageError(`--brokers must be host:port[,host:port…], got "${String(v.brokers ?? process.env.KAFKA_BROKERS)}"`);
  }

  return {
    parts,
    kafka: Boolean(v.kafka),
    brokers,
    durationSec,
    warmupSec: positive('--warmup', String(v.warmup), { allowZero: true }),
    chains,
    probeIntervalMs,
    serverRules: v['server-rules'] === undefined ? undefined : path.resolve(v['server-rules']),
    missTimeoutSec: positive('--miss-timeout', String(v['miss-timeout'])),
    targetP99Ms: positive('--target-p99', String(v['target-p99'])),
    events,
    backtestRuns: positive('--backtest-runs', String(v['backtest-runs']), { integer: true }),
    jsonFile: v.json,
    keepLogs: Boolean(v['keep-logs']),
    databaseUrl: v['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    ledgerCli: String(v['ledger-cli']),
    startTimeoutSec: positive('--start-timeout', String(v['start-timeout'])),
    requestTimeoutSec: positive('--request-timeout', String(v['request-timeout'])),
  };
}
