import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { LedgerMetrics } from '../health/metrics';
import { LedgerError } from '../ledger/ledger-error';
import type { LimitSpec } from './limit-spec';

export type LimiterName = 'auth_failures' | 'oauth' | 'v1';

export interface LimiterDeps {
  /** Counters shared by every instance; this instance's memory without it. */
  redis?: Redis;
  keyPrefix: string;
  metrics: LedgerMetrics;
  logger: Logger;
}

/** Redis trouble is logged at most this often per limiter (it is counted every time). */
const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Fixed-window counters per key (rate-limiter-flexible), in Redis when configured. Redis trouble
 * never fails a request: the decision is then taken on this instance's own counters (counted in
 * token_ledger_rate_limit_store_errors_total and logged), so while Redis is away each limit holds
 * per instance instead of across all of them: open for the flood limits, still bounded for guessing.
 */
export class Limiter {
  private readonly local: RateLimiterMemory;
  private readonly shared?: RateLimiterRedis;
  private lastErrorLog = 0;

  constructor(
    readonly name: LimiterName,
    readonly spec: LimitSpec,
    private readonly deps: LimiterDeps,
  ) {
    const options = { points: spec.points, duration: spec.windowSeconds, keyPrefix: `${deps.keyPrefix}rl:${name}` };
    this.local = new RateLimiterMemory(options);
    if (deps.redis) this.shared = new RateLimiterRedis({ ...options, storeClient: deps.redis, rejectIfRedisNotReady: true });
  }

  /** Counts one against `key`; the seconds to wait if that went over the limit, else undefined. */
  async consume(key: string): Promise<number | undefined> {
    try {
      await this.run((limiter) => limiter.consume(key));
      return undefined;
    } catch (outcome) {
      if (outcome instanceof RateLimiterRes) return retryAfterSeconds(outcome);
      throw outcome;
    }
  }

  /** The seconds to wait if `key` has used up its window, else undefined; counts nothing. */
  async exhausted(key: string): Promise<number | undefined> {
    const state = await this.run((limiter) => limiter.get(key));
    return state && state.consumedPoints >= this.spec.points ? retryAfterSeconds(state) : undefined;
  }

  /** The 429 answer (through the exception filter), counted by limiter. */
  refuse(retryAfter: number, description: string): never {
    this.deps.metrics.rateLimited.inc({ limiter: this.name });
    throw new LedgerError('rate_limited', description, { retryAfterSeconds: retryAfter });
  }

  private async run<T>(op: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    if (!this.shared) return op(this.local);
    try {
      return await op(this.shared);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw error;
      this.storeError(error);
      return op(this.local);
    }
  }

  private storeError(error: unknown): void {
    this.deps.metrics.rateLimitStoreErrors.inc({ limiter: this.name });
    const now = Date.now();
    if (now - this.lastErrorLog < STORE_ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.deps.logger.warn({ limiter: this.name, err: error instanceof Error ? error.message : String(error) }, 'rate limit: Redis unavailable, counting on this instance only');
  }
}

function retryAfterSeconds(state: RateLimiterRes): number {
  return Math.max(1, Math.ceil(state.msBeforeNext / 1000));
}
