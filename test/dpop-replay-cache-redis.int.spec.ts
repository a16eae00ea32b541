import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { RedisReplayCache, ReplayCacheUnavailableError, VerifyError, type Verifier } from '@token-ledger/verifier';
import { dpopKey, dpopProof, testIssuer, unitVerifier, type TestIssuer } from '../libs/verifier/src/testing/dpop-fixtures';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Several resource-server instances share one DPoP replay cache in a real Redis. */
describe('RedisReplayCache (real Redis): one proof, many instances', () => {
  const prefix = `tl-test-dpop-${randomBytes(4).toString('hex')}:`;
  const clients: Redis[] = [];
  let issuer: TestIssuer;
  const verifiers: Verifier[] = [];
  const redis = () => {
    const c = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    issuer = await testIssuer();
  });
  afterAll(async () => {
    const keys = await clients[0]?.keys(`${prefix}*`);
    if (keys?.length) await clients[0].del(...keys);
    await Promise.all(verifiers.map((v) => v.close()));
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await issuer.close();
  });

  it('of many concurrent uses of one key through several connections, exactly one wins; the entry expires with the proof', async () => {
    const caches = [redis(), redis(), redis()].map((c) => new RedisReplayCache(c, { keyPrefix: prefix }));
    const expiresAt = Date.now() + 65_000;
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => caches[i % 3].use('jti-1', expiresAt)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const ttl = await clients[0].pttl(`${prefix}jti-1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(65_000);
  });

  it('two verifier instances with the shared cache: a proof accepted by one is a replay at the other', async () => {
    const key = await dpopKey();
    const token = await issuer.accessToken({ cnf: { jkt: key.jkt } });
    const [a, b] = [0, 1].map(() => unitVerifier(issuer, { dpop: { replayCache: new RedisReplayCache(redis(), { keyPrefix: prefix }) } }));
    verifiers.push(a, b);
    const request = { method: 'GET', url: 'https://rs.example/orders', authorization: `DPoP ${token}`, dpop: await dpopProof(key, { accessToken: token }) };
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).verifyRequest(request)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'invalid_dpop_proof' });
  });

  it('Redis unreachable: ReplayCacheUnavailableError, and the verifier answers replay_cache_unavailable (never accepts)', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    clients.push(down);
    const cache = new RedisReplayCache(down, { keyPrefix: prefix });
    await expect(cache.use('x', Date.now() + 1_000)).rejects.toBeInstanceOf(ReplayCacheUnavailableError);
    const key = await dpopKey();
    const token = await issuer.accessToken({ cnf: { jkt: key.jkt } });
    const v = unitVerifier(issuer, { dpop: { replayCache: cache } });
    verifiers.push(v);
    const error = await v.verifyRequest({ method: 'GET', url: 'https://rs.example/orders', authorization: `DPoP ${token}`, dpop: await dpopProof(key, { accessToken: token }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe('replay_cache_unavailable');
  });
});
