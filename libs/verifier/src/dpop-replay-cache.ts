/**
 * Remembers the DPoP proofs a resource server has accepted (RFC 9449 §11.1), so the same proof
 * cannot be used twice while its `iat` is still inside the acceptance window.
 *
 * `use(key, expiresAtMs)` must be atomic: of many concurrent calls with one key, exactly one
 * resolves `true`. It throws (or rejects) when it cannot decide; the verifier then answers 503,
 * never accepts the proof unchecked.
 *
 * Several instances of one resource server MUST share one cache (e.g. RedisReplayCache): with a
 * cache per instance a captured proof could be replayed once against every other instance.
 */
export interface DpopReplayCache {
  /** true: first use of `key` (now remembered until `expiresAtMs`); false: already used. */
  use(key: string, expiresAtMs: number): Promise<boolean>;
}

/** The cache could not decide (full, or its backend is down): a 503, not an acceptance. */
export class ReplayCacheUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReplayCacheUnavailableError';
  }
}

export interface InMemoryReplayCacheOptions {
  /** Most proofs remembered at once; when all are still live a new proof is refused (503). Default 100 000. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * Single-process default, bounded in size (maxEntries) and time (each entry lives only until its
 * proof would be too old anyway). JavaScript runs `use` to completion without yielding, so the
 * check-and-set is atomic within the process.
 */
export class InMemoryReplayCache implements DpopReplayCache {
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: InMemoryReplayCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  use(key: string, expiresAtMs: number): Promise<boolean> {
    const now = this.now();
    const known = this.entries.get(key);
    if (known !== undefined && known > now) return Promise.resolve(false);
    this.entries.delete(key);
    this.evictExpired(now);
    if (this.entries.size >= this.maxEntries) {
      // Evicting a live entry would let its proof be replayed: refuse instead (bounded memory, fail closed).
      return Promise.reject(new ReplayCacheUnavailableError(`DPoP replay cache full (${this.maxEntries} live proofs)`));
    }
    this.entries.set(key, expiresAtMs);
    return Promise.resolve(true);
  }

  /** Entries arrive in roughly expiry order (one window for all): sweep from the oldest; a full sweep only when full. */
  private evictExpired(now: number): void {
    for (const [key, expiresAt] of this.entries) {
      if (expiresAt > now) break;
      this.entries.delete(key);
    }
    if (this.entries.size >= this.maxEntries) {
      for (const [key, expiresAt] of this.entries) if (expiresAt <= now) this.entries.delete(key);
    }
  }
}

/** The one Redis command RedisReplayCache needs; an ioredis or node-redis v4 client (legacy mode) fits. */
export interface RedisSetNx {
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<string | null>;
}

/**
 * Shared cache for several resource-server instances: `SET key 1 PX <ttl> NX` is atomic in Redis,
 * so exactly one instance wins a proof. A Redis error is a ReplayCacheUnavailableError (503).
 */
export class RedisReplayCache implements DpopReplayCache {
  constructor(
    private readonly redis: RedisSetNx,
    private readonly options: { keyPrefix?: string; now?: () => number } = {},
  ) {}

  async use(key: string, expiresAtMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAtMs - (this.options.now ?? Date.now)()));
    try {
      return (await this.redis.set(`${this.options.keyPrefix ?? 'dpop-jti:'}${key}`, '1', 'PX', ttl, 'NX')) === 'OK';
    } catch (error) {
      throw new ReplayCacheUnavailableError('DPoP replay cache (Redis) unavailable', { cause: error });
    }
  }
}
