import { InMemoryReplayCache, RedisReplayCache, ReplayCacheUnavailableError } from './dpop-replay-cache';

describe('InMemoryReplayCache', () => {
  it('accepts a key once until it expires, then again', async () => {
    let now = 1_000;
    const cache = new InMemoryReplayCache({ now: () => now });
    expect(await cache.use('a', 2_000)).toBe(true);
    expect(await cache.use('a', 2_000)).toBe(false);
    now = 2_000;
    expect(await cache.use('a', 3_000)).toBe(true);
  });

  it('of many concurrent uses of one key exactly one wins', async () => {
    const cache = new InMemoryReplayCache();
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.use('same', Date.now() + 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('is bounded: expired entries are evicted, and when full of live ones a new key is refused (never a live one evicted)', async () => {
    let now = 0;
    const cache = new InMemoryReplayCache({ maxEntries: 3, now: () => now });
    for (const k of ['a', 'b', 'c']) expect(await cache.use(k, 100)).toBe(true);
    await expect(cache.use('d', 100)).rejects.toBeInstanceOf(ReplayCacheUnavailableError);
    expect(await cache.use('a', 100)).toBe(false); // still remembered
    now = 100;
    expect(await cache.use('d', 200)).toBe(true);
    expect(cache.size).toBe(1);
  });
});

describe('RedisReplayCache (command shape; real Redis in test/dpop-replay-cache-redis.int.spec.ts)', () => {
  it('maps SET NX results and turns a Redis error into ReplayCacheUnavailableError', async () => {
    const calls: unknown[][] = [];
    const ok = new RedisReplayCache({ set: async (...args) => (calls.push(args), 'OK') }, { now: () => 0 });
    expect(await ok.use('k', 1_500)).toBe(true);
    expect(calls[0]).toEqual(['dpop-jti:k', '1', 'PX', 1_500, 'NX']);
    expect(await new RedisReplayCache({ set: async () => null }).use('k', Date.now() + 1_000)).toBe(false);
    await expect(new RedisReplayCache({ set: () => Promise.reject(new Error('ECONNREFUSED')) }).use('k', Date.now() + 1_000)).rejects.toBeInstanceOf(ReplayCacheUnavailableError);
  });
});
