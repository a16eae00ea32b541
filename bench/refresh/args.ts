import { positive, UsageError } from '../common/driver';
import { parseArgs } from 'node:util';

export const TARGET_NAMES = ['embedded', 'postgres', 'reference', 'oidc-provider-redis', 'keycloak'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** Targets run when --targets is not given (the optional ones need Redis, Java or a download). */
export const DEFAULT_TARGETS: readonly TargetName[] = ['embedded', 'postgres', 'reference'];

/** Other names accepted by --targets. */
const TARGET_ALIASES: Readonly<Record<string, TargetName>> = {
  'ledger-embedded': 'embedded',
  'ledger-postgres': 'postgres',
  'oidc-provider': 'reference',
};

/** Targets that are not token-ledger: they run once, whatever --rate-limits says. */
export function isReference(target: TargetName): boolean {
  return target === 'reference' || target === 'oidc-provider-redis' || target === 'keycloak';
}

/** How the warm-up before each measured window ends. */
export type Warmup =
  | { mode: 'fixed'; seconds: number }
  /** Until `windows` consecutive windows of `windowSec` are within ±tolerance of their mean, or the cap. */
  | { mode: 'steady'; windowSec: number; windows: number; tolerance: number; capSec: number; keycloakCapSec: number; keycloakMinSec: number };

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
  /** The whole set of rows runs this many times, round after round (--rounds). */
  rounds: number;
  warmup: Warmup;
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
  /** Scrape each token-ledger server's /metrics every this many ms while it is loaded (--scrape). */
  scrapeMs: number | undefined;
  /** Redis for oidc-provider-redis. */
  redisUrl: string;
  /** Redis appendfsync for the oidc-provider-redis run (appendonly is switched on). */
  redisFsync: 'everysec' | 'always';
  keycloakVersion: string;
  /** Unpacked keycloak-<version> directory, or undefined: ~/.cache/token-ledger/keycloak, downloaded with mvn. */
  keycloakHome: string | undefined;
}

export const USAGE = `Usage: npm run bench:refresh -- [options]

Measures refresh-token rotation throughput and latency: N concurrent refresh chains, each
presenting its current refresh token and continuing with the rotated one, against
  embedded             token-ledger, LEDGER_STORE=embedded (fresh LEDGER_DATA_DIR per run)
                       (alias ledger-embedded)
  postgres             token-ledger, LEDGER_STORE=postgres (fresh database per run, dropped
                       afterwards) (alias ledger-postgres)
  reference            panva/oidc-provider 9 in memory: always-rotate refresh tokens, ES256
                       JWT access tokens (alias oidc-provider)
  oidc-provider-redis  the same with a Redis adapter on --redis-url, Redis switched to
                       appendonly yes + appendfsync --redis-fsync for the run (restored after)
  keycloak             Keycloak (keycloak-quarkus-dist zip, Java 17+) on a fresh PostgreSQL
                       database: realm with revokeRefreshToken, refreshTokenMaxReuse 0, ES256
Optional targets (oidc-provider-redis, keycloak) run only when named; one whose prerequisite
is missing (no Redis, no Java, no Maven to download Keycloak) is SKIPPED with the reason.

Options:
  --duration SEC        measured window per run (default 10)
  --rounds N            run every row N times, the whole set once per round (A B C, A B C, ...;
                        default 1). Each round's ratios are taken within that round; with N > 1
                        the table ends with each row's median over the rounds. This machine has
                        slow spells of 5-40 s that a single 10 s window may or may not catch.
  --warmup SEC|steady   warm-up before each measured window, discarded. steady (default):
                        2 s windows until three in a row are within ±5 % of their mean
                        and of the three before,
                        capped at --warmup-cap (Keycloak: --warmup-cap-keycloak); SEC: fixed
  --warmup-cap SEC      cap of a steady warm-up (default 30)
  --warmup-cap-keycloak SEC  cap of a steady warm-up for keycloak, whose JIT warms slowly
                        (default 90)
  --warmup-min-keycloak SEC  keycloak warms up at least this long (default 60): at a few
                        dozen rotations/s its JIT climbs too slowly for the ±5 % test
  --chains LIST         concurrent refresh chains, comma-separated (default 1,16,64)
  --targets LIST        comma-separated subset of embedded,postgres,reference,
                        oidc-provider-redis,keycloak (default embedded,postgres,reference)
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
  --scrape MS           GET token-ledger's /metrics every MS ms during warm-up and
                        measurement, as Prometheus would (default: no scrape)
  --redis-url URL       Redis for oidc-provider-redis (default $REDIS_URL or redis://127.0.0.1:6379)
  --redis-fsync MODE    everysec (default) or always
  --keycloak-version V  keycloak-quarkus-dist version (default 26.5.6)
  --keycloak-home DIR   an unpacked Keycloak (default: ~/.cache/token-ledger/keycloak/keycloak-V,
                        fetched with \`mvn dependency:copy\` and unzipped on first use)
  --start-timeout SEC   how long a server may take to become ready (default 60; keycloak
                        gets at least 900: its first start creates its schema, minutes
                        on a busy machine; building its server image, once, is not counted)
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
        rounds: { type: 'string', default: '1' },
        warmup: { type: 'string', default: 'steady' },
        'warmup-cap': { type: 'string', default: '30' },
        'warmup-cap-keycloak': { type: 'string', default: '90' },
        'warmup-min-keycloak': { type: 'string', default: '60' },
        'redis-url': { type: 'string' },
        'redis-fsync': { type: 'string', default: 'everysec' },
        'keycloak-version': { type: 'string', default: '26.5.6' },
        'keycloak-home': { type: 'string' },
        chains: { type: 'string', default: '1,16,64' },
        targets: { type: 'string', default: DEFAULT_TARGETS.join(',') },
        json: { type: 'string' },
        'database-url': { type: 'string' },
        'start-timeout': { type: 'string', default: '60' },
        'request-timeout': { type: 'string', default: '10' },
        'ledger-cli': { type: 'string', default: 'dist/apps/cli/src/main.js' },
        'rate-limits': { type: 'string', default: 'on' },
        'ledger-env': { type: 'string', multiple: true, default: [] },
        'otlp-sink': { type: 'boolean', default: false },
        scrape: { type: 'string' },
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
  for (const given of String(v.targets).split(',').map((s) => s.trim()).filter(Boolean)) {
    const raw = TARGET_ALIASES[given] ?? given;
    if (!(TARGET_NAMES as readonly string[]).includes(raw)) {
      throw new UsageError(`unknown target "${given}" (expected one of ${TARGET_NAMES.join(', ')})`);
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

  const fsync = String(v['redis-fsync']);
  if (fsync !== 'everysec' && fsync !== 'always') throw new UsageError(`--redis-fsync: expected everysec or always, got "${fsync}"`);
  const keycloakVersion = String(v['keycloak-version']);
  if (!/^\d+\.\d+\.\d+$/.test(keycloakVersion)) throw new UsageError(`--keycloak-version: expected N.N.N, got "${keycloakVersion}"`);
  const warmupArg = String(v.warmup);
  const warmup: Warmup =
    warmupArg === 'steady'
      ? {
          mode: 'steady',
          windowSec: 2,
          windows: 3,
          tolerance: 0.05,
          capSec: positive('--warmup-cap', String(v['warmup-cap'])),
          keycloakCapSec: positive('--warmup-cap-keycloak', String(v['warmup-cap-keycloak'])),
          keycloakMinSec: positive('--warmup-min-keycloak', String(v['warmup-min-keycloak']), { allowZero: true }),
        }
      : { mode: 'fixed', seconds: positive('--warmup', warmupArg, { allowZero: true }) };

  return {
    redisUrl: v['redis-url'] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisFsync: fsync,
    keycloakVersion,
    keycloakHome: v['keycloak-home'],
    warmup,
    rateLimits: [...modes[rateLimitsArg as keyof typeof modes]],
    ledgerEnv,
    otlpSink: Boolean(v['otlp-sink']),
    scrapeMs: v.scrape === undefined ? undefined : positive('--scrape', String(v.scrape)),
    durationSec: positive('--duration', String(v.duration)),
    rounds: positive('--rounds', String(v.rounds), { integer: true }),
    chains,
    targets,
    jsonFile: v.json,
    databaseUrl: v['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    startTimeoutSec: positive('--start-timeout', String(v['start-timeout'])),
    requestTimeoutSec: positive('--request-timeout', String(v['request-timeout'])),
    ledgerCli: String(v['ledger-cli']),
  };
}
