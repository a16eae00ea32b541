import { positive, UsageError } from '../common/driver';
import { parseArgs } from 'node:util';

export const TARGET_NAMES = ['embedded', 'postgres', 'reference'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** token-ledger with its default rate limits (`on`) or with every limit `off`. */
export type RateLimitMode = 'on' | 'off';

/** What `off` passes to token-ledger (README "Rate limits"). */
export const RATE_LIMITS_OFF_ENV: Readonly<Record<string, string>> = {
  LEDGER_RATE_LIMIT_AUTH_FAILURES: 'off',
  LEDGER_RATE_LIMIT_OAUTH: 'off',
  LEDGER_RATE_LIMIT_V1: 'off',
};

export interface BenchOptions {
  durationSec: number;
  warmupSec: number;
  chains: number[];
  targets: TargetName[];
  jsonFile: string | undefined;
  databaseUrl: string;
  startTimeoutSec: number;
  requestTimeoutSec: number;
  /** token-ledger CLI entry point (absolute or relative to the repo root). */
  ledgerCli: string;
  /** token-ledger rows run once per mode, in this order. */
  rateLimits: RateLimitMode[];
  /** Extra environment for token-ledger servers (--ledger-env KEY=VALUE). */
  ledgerEnv: Record<string, string>;
  /** Tracing on in every token-ledger server, exporting to a local OTLP sink (--otlp-sink). */
  otlpSink: boolean;
}

export const USAGE = `Usage: npm run bench:refresh -- [options]

Measures refresh-token rotation throughput and latency: N concurrent refresh chains, each
presenting its current refresh token and continuing with the rotated one, against
  embedded   token-ledger, LEDGER_STORE=embedded (fresh LEDGER_DATA_DIR per run)
  postgres   token-ledger, LEDGER_STORE=postgres (fresh database per run, dropped afterwards)
  reference  panva/oidc-provider 9: always-rotate refresh tokens, ES256 JWT access tokens

Options:
  --duration SEC        measured window per run (default 10)
  --warmup SEC          warm-up before each measured window, discarded (default 2)
  --chains LIST         concurrent refresh chains, comma-separated (default 1,16,64)
  --targets LIST        comma-separated subset of embedded,postgres,reference
                        (default embedded,postgres,reference)
  --json FILE           also write the full results (incl. per-second series) as JSON
  --database-url URL    server used to create the throw-away database for "postgres"
                        (default $DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --ledger-cli PATH     token-ledger CLI started as \`node PATH serve\`
                        (default dist/apps/cli/src/main.js)
  --rate-limits MODE    token-ledger's rate limits: on (its defaults), off (every
                        LEDGER_RATE_LIMIT_* off), or both: each token-ledger row twice,
                        and what the limits cost per rotation under the table (default on)
  --ledger-env KEY=VAL  extra environment for token-ledger servers, repeatable
                        (e.g. --ledger-env LEDGER_REDIS_URL=redis://127.0.0.1:6379)
  --otlp-sink           tracing on: start a local OTLP/HTTP sink that discards what it
                        gets and point token-ledger at it (OTEL_EXPORTER_OTLP_ENDPOINT,
                        http/protobuf); without it OTEL_* variables of this shell are
                        not passed on, so a row never traces by accident
  --start-timeout SEC   how long a server may take to become ready (default 60)
  --request-timeout SEC per-request timeout (default 10)
  -h, --help            show this help

Each (target, chains) cell runs on a freshly started server, one server at a time.
The table goes to stdout, progress to stderr. Exit code 1 if any cell failed.`;

export { UsageError };

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        chains: { type: 'string', default: '1,16,64' },
        targets: { type: 'string', default: TARGET_NAMES.join(',') },
        json: { type: 'string' },
        'database-url': { type: 'string' },
        'start-timeout': { type: 'string', default: '60' },
        'request-timeout': { type: 'string', default: '10' },
        'ledger-cli': { type: 'string', default: 'dist/apps/cli/src/main.js' },
        'rate-limits': { type: 'string', default: 'on' },
        'ledger-env': { type: 'string', multiple: true, default: [] },
        'otlp-sink': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';

  const chains = [...new Set(String(v.chains).split(',').map((s) => s.trim()).filter(Boolean))].map((s) =>
    positive('--chains', s, { integer: true }),
  );
  if (chains.length === 0) throw new UsageError('--chains needs at least one value');
  if (chains.some((c) => c > 1024)) throw new UsageError('--chains values above 1024 are not supported');

  const targets: TargetName[] = [];
  for (const raw of String(v.targets).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(TARGET_NAMES as readonly string[]).includes(raw)) {
      throw new UsageError(`unknown target "${raw}" (expected one of ${TARGET_NAMES.join(', ')})`);
    }
    if (!targets.includes(raw as TargetName)) targets.push(raw as TargetName);
  }
  if (targets.length === 0) throw new UsageError('--targets needs at least one value');

  const modes = { on: ['on'], off: ['off'], both: ['on', 'off'] } as const;
  const rateLimitsArg = String(v['rate-limits']);
  if (!Object.hasOwn(modes, rateLimitsArg)) throw new UsageError(`--rate-limits: expected on, off or both, got "${rateLimitsArg}"`);
  const ledgerEnv: Record<string, string> = {};
  for (const pair of v['ledger-env'] ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(pair);
    if (!m) throw new UsageError(`--ledger-env: expected KEY=VALUE, got "${pair}"`);
    ledgerEnv[m[1]] = m[2];
  }

  return {
    rateLimits: [...modes[rateLimitsArg as keyof typeof modes]],
    ledgerEnv,
    otlpSink: Boolean(v['otlp-sink']),
    durationSec: positive('--duration', String(v.duration)),
    warmupSec: positive('--warmup', String(v.warmup), { allowZero: true }),
    chains,
    targets,
    jsonFile: v.json,
    databaseUrl: v['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    startTimeoutSec: positive('--start-timeout', String(v['start-timeout'])),
    requestTimeoutSec: positive('--request-timeout', String(v['request-timeout'])),
    ledgerCli: String(v['ledger-cli']),
  };
}
