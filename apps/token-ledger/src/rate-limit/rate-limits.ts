import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../config/ledger-config';
import type { LedgerMetrics } from '../health/metrics';
import { addressKey } from './address-key';
import { Limiter, type LimiterDeps, type LimiterName } from './limiter';
import type { LimitSetting } from './limit-spec';

/**
 * Guessing: failed client authentications (/oauth/*) and failed API-key authentications (/v1) per
 * source address. Callers ask before checking credentials and report each failure; once an address
 * has used up its window, every request from it gets 429 until the window passes, even one with
 * correct credentials (else a guesser would learn which guess was right). The check and the count
 * are separate, so guesses already in flight when the limit is reached still get their 401.
 */
export class AuthFailureLimiter {
  constructor(private readonly limiter?: Limiter) {}

  async assertNotBlocked(ip: string | undefined): Promise<void> {
    if (!this.limiter) return;
    const wait = await this.limiter.exhausted(addressKey(ip));
    if (wait !== undefined) this.limiter.refuse(wait, 'too many failed authentications from this address; try again later');
  }

  async recordFailure(ip: string | undefined): Promise<void> {
    await this.limiter?.consume(addressKey(ip));
  }
}

/** Floods of /oauth/* per source address; every request counts. */
export class OAuthFloodLimiter {
  constructor(private readonly limiter?: Limiter) {}

  get enabled(): boolean {
    return this.limiter !== undefined;
  }

  async assertWithinLimit(ip: string | undefined): Promise<void> {
    if (!this.limiter) return;
    const wait = await this.limiter.consume(addressKey(ip));
    if (wait !== undefined) this.limiter.refuse(wait, 'too many requests from this address; try again later');
  }
}

/**
 * Authenticated /v1 requests per API key. The key's identity is hashed with a server secret before it
 * names a counter, so neither Redis nor memory ever holds a key or an unkeyed hash of one.
 */
export class ApiKeyLimiter {
  constructor(
    private readonly limiter: Limiter | undefined,
    private readonly hash: (identity: string) => string,
  ) {}

  async assertWithinLimit(keyIdentity: string): Promise<void> {
    if (!this.limiter) return;
    const wait = await this.limiter.consume(this.hash(keyIdentity));
    if (wait !== undefined) this.limiter.refuse(wait, 'too many requests for this API key; try again later');
  }
}

export interface RateLimits {
  authFailures: AuthFailureLimiter;
  oauth: OAuthFloodLimiter;
  v1: ApiKeyLimiter;
  close(): Promise<void>;
}

/** Redis answers locally in well under a millisecond; a hung one must not hold requests for long. */
const REDIS_COMMAND_TIMEOUT_MS = 500;
const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

export function openRateLimits(
  config: Pick<LedgerConfig, 'rateLimits' | 'redisUrl' | 'redisKeyPrefix'>,
  deps: { metrics: LedgerMetrics; logger: Logger; hashKey: (identity: string) => string },
): RateLimits {
  const logger = deps.logger.child({ component: 'rate-limit' });
  let redis: Redis | undefined;
  if (config.redisUrl) {
    redis = new Redis(config.redisUrl, {
      // Fail fast while disconnected instead of queueing: the limiter then counts locally.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: 2_000,
    });
    let lastLog = 0;
    // ioredis reconnects by itself; without a listener its errors would be unhandled events.
    redis.on('error', (error: Error) => {
      if (Date.now() - lastLog < REDIS_ERROR_LOG_INTERVAL_MS) return;
      lastLog = Date.now();
      logger.warn({ err: error.message }, 'Redis connection failed; rate limits count on this instance until it is back');
    });
  }
  const limiterDeps: LimiterDeps = { redis, keyPrefix: config.redisKeyPrefix, metrics: deps.metrics, logger };
  const limiter = (name: LimiterName, setting: LimitSetting) => (setting === 'off' ? undefined : new Limiter(name, setting, limiterDeps));
  return {
    authFailures: new AuthFailureLimiter(limiter('auth_failures', config.rateLimits.authFailures)),
    oauth: new OAuthFloodLimiter(limiter('oauth', config.rateLimits.oauth)),
    v1: new ApiKeyLimiter(limiter('v1', config.rateLimits.v1), deps.hashKey),
    async close() {
      redis?.disconnect();
    },
  };
}
