import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SqlClient } from '@token-ledger/event-store';

/**
 * Remembers the DPoP proofs already used (RFC 9449 §11.1), for as long as they could be accepted,
 * across every instance of the ledger: Redis when LEDGER_REDIS_URL is set, else the SQL database of
 * the store (embedded PGlite or PostgreSQL), else process memory (docs/dpop.md). A cache that
 * cannot answer throws ReplayCacheUnavailableError: a proof is never accepted unchecked.
 */
export interface DpopReplayCache {
  readonly kind: 'redis' | 'sql' | 'memory';
  /**
   * Records the proof's (jkt, jti) until `expiresAt` (epoch ms). True when it was not recorded yet
   * (the proof may be used), false when it was (a replay).
   */
  claim(jkt: string, jti: string, expiresAt: number, now: number): Promise<boolean>;
  close(): Promise<void>;
}

export class ReplayCacheUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the DPoP replay cache cannot be reached: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ReplayCacheUnavailableError';
  }
}

/** The key names no proof content but its hash: jti values are client-chosen. */
export function replayKey(jkt: string, jti: string): string {
  return createHash('sha256').update(jkt).update('\n').update(jti).digest('base64url');
}

/** Like the rate limiter's: Redis answers in well under a millisecond; a hung one must not hold requests. */
const REDIS_COMMAND_TIMEOUT_MS = 500;
const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

export class RedisReplayCache implements DpopReplayCache {
  readonly kind = 'redis';
  private readonly redis: Redis;

  constructor(url: string, private readonly prefix: string, logger: Pick<Logger, 'warn'>) {
    // No offline queue: while disconnected a claim fails at once and the request gets a 503.
    this.redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, connectTimeout: 2_000 });
    let lastLog = 0;
    this.redis.on('error', (error: Error) => {
      if (Date.now() - lastLog < REDIS_ERROR_LOG_INTERVAL_MS) return;
      lastLog = Date.now();
      logger.warn({ err: error.message }, 'Redis connection failed; DPoP requests get 503 until it is back');
    });
  }

  async claim(jkt: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
    try {
      const ok = await this.redis.set(`${this.prefix}dpop-jti:${replayKey(jkt, jti)}`, '1', 'PX', Math.max(1, expiresAt - now), 'NX');
      return ok === 'OK';
    } catch (error) {
      throw new ReplayCacheUnavailableError(error);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** Advisory lock key of the table's creation, beside the other migrations' keys. */
const DPOP_TABLE_LOCK = 7_340_125_790_000_041; // the family of the other migration locks (sql-schema.ts, …)

/** Expired rows are deleted at most this often, by the claim that comes after. */
const SQL_PRUNE_INTERVAL_MS = 60_000;

export class SqlReplayCache implements DpopReplayCache {
  readonly kind = 'sql';
  private nextPrune = 0;
  private ready: Promise<void> | undefined;

  constructor(private readonly sql: SqlClient, private readonly logger: Pick<Logger, 'warn'>) {}

  /** The table is created on first use, so a ledger that never sees a proof never has it. */
  private migrate(): Promise<void> {
    this.ready ??= this.sql
      // One implicit transaction under an advisory lock: instances starting their first DPoP request
      // together queue instead of racing on the catalogue (create … if not exists is not atomic).
      .exec(
        `select pg_advisory_xact_lock(${DPOP_TABLE_LOCK});
         create table if not exists tl_dpop_jti (key text primary key, expires_at bigint not null);
         create index if not exists tl_dpop_jti_expiry on tl_dpop_jti (expires_at)`,
      )
      .catch((error: unknown) => {
        this.ready = undefined; // try again with the next proof
        throw error;
      });
    return this.ready;
  }

  async claim(jkt: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
    try {
      await this.migrate();
      // A row that has expired (not pruned yet) is taken over; a live one makes the insert do nothing.
      const rows = await this.sql.query(
        `insert into tl_dpop_jti (key, expires_at) values ($1, $2)
         on conflict (key) do update set expires_at = excluded.expires_at where tl_dpop_jti.expires_at <= $3
         returning 1 as claimed`,
        [replayKey(jkt, jti), expiresAt, now],
      );
      if (now >= this.nextPrune) this.prune(now);
      return rows.length === 1;
    } catch (error) {
      throw new ReplayCacheUnavailableError(error);
    }
  }

  private prune(now: number): void {
    this.nextPrune = now + SQL_PRUNE_INTERVAL_MS;
    // Off the request's path; a failure only delays the clean-up.
    this.sql.query('delete from tl_dpop_jti where expires_at <= $1', [now]).catch((error: unknown) => {
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'pruning expired DPoP proofs failed; retrying later');
    });
  }

  async close(): Promise<void> {
    // The SQL client belongs to the store, which closes it.
  }
}

/** One process only: what a single embedded-less instance (EventStoreDB without DATABASE_URL) can do. */
export class MemoryReplayCache implements DpopReplayCache {
  readonly kind = 'memory';
  private readonly seen = new Map<string, number>();
  private nextPrune = 0;

  async claim(jkt: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
    if (now >= this.nextPrune) {
      this.nextPrune = now + SQL_PRUNE_INTERVAL_MS;
      for (const [key, until] of this.seen) if (until <= now) this.seen.delete(key);
    }
    const key = replayKey(jkt, jti);
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return false;
    this.seen.set(key, expiresAt);
    return true;
  }

  async close(): Promise<void> {
    this.seen.clear();
  }
}

export function openDpopReplayCache(
  config: { redisUrl?: string; redisKeyPrefix: string },
  sql: SqlClient | undefined,
  logger: Pick<Logger, 'warn'>,
): DpopReplayCache {
  if (config.redisUrl) return new RedisReplayCache(config.redisUrl, config.redisKeyPrefix, logger);
  if (sql) return new SqlReplayCache(sql, logger);
  return new MemoryReplayCache();
}
