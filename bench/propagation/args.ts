import { positive, UsageError } from '../common/driver';
import { parseArgs } from 'node:util';

export interface PropagationOptions {
  families: number;
  warmup: number;
  concurrency: number;
  /** Pause between two verify() calls of one poller; 0 = setImmediate. */
  pollMs: number;
  /** Per-family bound on the wait for a rejection. */
  timeoutMs: number;
  targetP99Ms: number;
  brokers: string[];
  databaseUrl: string;
  ledgerCli: string;
  startTimeoutSec: number;
  jsonFile: string | undefined;
}

export const USAGE = `Usage: npm run bench:propagation -- [options]

Revocation propagation delay: how long after POST /v1/families/{id}/revoke has answered a
resource server's verifier (libs/verifier) rejects that family's access token, over Kafka
(the compacted token-ledger.revocations.v1 topic) and over SSE (GET /v1/revocations/stream).

Starts \`token-ledger serve\` with LEDGER_STORE=postgres on a fresh database (dropped afterwards)
and KAFKA_BROKERS set. Needs a Kafka broker (\`npm run kafka:up\`) and PostgreSQL. The broker's
token-ledger.{events,revocations,anomalies}.v1 topics and the token-ledger-revocations consumer
group are DELETED and recreated empty first (token-ledger has no setting for other names).

Options:
  --families N          revocations measured, one family each (default 1000)
  --warmup N            extra families revoked first, not measured (default 20)
  --concurrency N       revocations in flight at a time (default 1: one after the other)
  --poll-ms MS          pause between two verify() calls while waiting; 0 = setImmediate (default 1)
  --timeout-ms MS       per-family bound on the wait for the rejection (default 5000)
  --target-p99 MS       pass/fail threshold for the Kafka p99 (default 100)
  --brokers LIST        Kafka bootstrap brokers (default $KAFKA_BROKERS or 127.0.0.1:9092)
  --database-url URL    server used to create the throw-away database
                        (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --ledger-cli PATH     token-ledger CLI started as \`node PATH serve\` (default dist/apps/cli/src/main.js)
  --start-timeout SEC   how long the server may take to become ready (default 60)
  --json FILE           also write the results (incl. every sample) as JSON
  -h, --help            show this help

The table goes to stdout, progress to stderr. Exit code 0 when the Kafka p99 meets the target,
1 when it does not (or the run failed), 2 for a usage error.`;

export { UsageError };

function integer(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}


export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): PropagationOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        families: { type: 'string', default: '1000' },
        warmup: { type: 'string', default: '20' },
        concurrency: { type: 'string', default: '1' },
        'poll-ms': { type: 'string', default: '1' },
        'timeout-ms': { type: 'string', default: '5000' },
        'target-p99': { type: 'string', default: '100' },
        brokers: { type: 'string' },
        'database-url': { type: 'string' },
        'ledger-cli': { type: 'string', default: 'dist/apps/cli/src/main.js' },
        'start-timeout': { type: 'string', default: '60' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const brokers = String(v.brokers ?? env.KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b))) {
    throw new UsageError(`--brokers: expected host:port[,host:port…], got "${v.brokers ?? env.KAFKA_BROKERS}"`);
  }
  return {
    families: integer('--families', String(v.families), 1, 100_000),
    warmup: integer('--warmup', String(v.warmup), 0, 10_000),
    concurrency: integer('--concurrency', String(v.concurrency), 1, 64),
    pollMs: integer('--poll-ms', String(v['poll-ms']), 0, 1000),
    timeoutMs: integer('--timeout-ms', String(v['timeout-ms']), 10, 600_000),
    targetP99Ms: positive('--target-p99', String(v['target-p99'])),
    brokers,
    databaseUrl: v['database-url'] ?? env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    ledgerCli: String(v['ledger-cli']),
    startTimeoutSec: positive('--start-timeout', String(v['start-timeout'])),
    jsonFile: v.json,
  };
}
