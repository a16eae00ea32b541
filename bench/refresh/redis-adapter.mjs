// A durable oidc-provider adapter on Redis, for the `oidc-provider-redis` target of bench:refresh.
//
// It follows the layout of oidc-provider's example Redis adapter (example/adapters/redis.js in
// panva/node-oidc-provider), rewritten for ioredis 5 (hset instead of the deprecated hmset) and
// without lodash:
//   * consumable models (RefreshToken, AuthorizationCode, …) are hashes {payload, consumed}, so
//     consume() is one HSET and a consumed token stays readable (reuse detection needs it);
//   * other models are plain JSON strings;
//   * every token carrying a grantId is listed in `grant:<grantId>`, so revokeByGrantId (what reuse
//     detection calls) deletes them all in one MULTI;
//   * TTLs as oidc-provider passes them.
// One rotation is therefore: HGETALL (find) + HSET consumed (consume) + TTL + MULTI{HSET, EXPIRE,
// RPUSH[, EXPIRE]} (save the successor), plus the Grant's GET — each a round trip to Redis, whose
// durability (appendonly / appendfsync) the bench driver sets for the run.
import { Redis } from 'ioredis';

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Returns an adapter class bound to one Redis client; every key starts with `prefix`. */
export function redisAdapter(url, prefix) {
  const client = new Redis(url, { keyPrefix: prefix, enableAutoPipelining: false });
  const grantKey = (id) => `grant:${id}`;
  const userCodeKey = (code) => `userCode:${code}`;
  const uidKey = (uid) => `uid:${uid}`;

  class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) multi.hset(key, { payload: JSON.stringify(payload) });
      else multi.set(key, JSON.stringify(payload));
      if (expiresIn) multi.expire(key, expiresIn);

      if (GRANTABLE.has(this.name) && payload.grantId) {
        const gk = grantKey(payload.grantId);
        multi.rpush(gk, key);
        const ttl = await client.ttl(gk);
        if (expiresIn > ttl) multi.expire(gk, expiresIn);
      }
      if (payload.userCode) {
        multi.set(userCodeKey(payload.userCode), id);
        multi.expire(userCodeKey(payload.userCode), expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKey(payload.uid), id);
        multi.expire(uidKey(payload.uid), expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      if (CONSUMABLE.has(this.name)) {
        const data = await client.hgetall(this.key(id));
        if (!data || !data.payload) return undefined;
        const { payload, ...rest } = data;
        const parsed = JSON.parse(payload);
        // `consumed` is stored as a string by HSET; oidc-provider only tests it for truthiness.
        return rest.consumed ? { ...parsed, consumed: Number(rest.consumed) } : parsed;
      }
      const data = await client.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid(uid) {
      const id = await client.get(uidKey(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      // The list holds keys without the prefix (ioredis prefixes key arguments, not values).
      const keys = await client.lrange(grantKey(grantId), 0, -1);
      const multi = client.multi();
      for (const k of keys) multi.del(k);
      multi.del(grantKey(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  }

  return { RedisAdapter, close: () => client.quit().catch(() => client.disconnect()) };
}
