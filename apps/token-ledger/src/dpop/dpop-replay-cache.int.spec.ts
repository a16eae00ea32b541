import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { dropPostgresSchema, openEventStore, PostgresEventStore, type OpenedStore, type SqlClient } from '@token-ledger/event-store';
import { freshEmbeddedDataDir } from '../../../../libs/event-store/src/testing/embedded-template';
import { describeWithBackend } from '../../../../test/backends';
import { eventually } from '../../../../test/support/eventually';
import { RedisReplayCache, SqlReplayCache, type DpopReplayCache } from './dpop-replay-cache';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const quiet = { warn: () => undefined };
const JKT = 'A'.repeat(43);

/** What every replay cache must do, whatever holds it. */
function replayCacheContract(
  open: () => Promise<{ cache: DpopReplayCache; second?: DpopReplayCache; rowsOf?: () => Promise<number> }>,
  opts: { sqlTable?: boolean } = {},
): void {
  let cache: DpopReplayCache;
  let second: DpopReplayCache | undefined;
  let rowsOf: (() => Promise<number>) | undefined;
  beforeAll(async () => {
    ({ cache, second, rowsOf } = await open());
  });

  it('claims a (jkt, jti) once; another jti or another key is a new claim', async () => {
    const now = Date.now();
    const jti = randomBytes(8).toString('hex');
    expect(await cache.claim(JKT, jti, now + 60_000, now)).toBe(true);
    expect(await cache.claim(JKT, jti, now + 60_000, now)).toBe(false);
    expect(await cache.claim(JKT, `${jti}x`, now + 60_000, now)).toBe(true);
    expect(await cache.claim('B'.repeat(43), jti, now + 60_000, now)).toBe(true);
    if (second) expect(await second.claim(JKT, jti, now + 60_000, now)).toBe(false);
  });

  it('of many concurrent claims of one proof exactly one wins', async () => {
    const now = Date.now();
    const jti = randomBytes(8).toString('hex');
    const caches = second ? [cache, second] : [cache];
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => caches[i % caches.length].claim(JKT, jti, now + 60_000, now)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('forgets a proof once it has expired', async () => {
    const jti = randomBytes(8).toString('hex');
    const now = Date.now();
    expect(await cache.claim(JKT, jti, now + 50, now)).toBe(true);
    await eventually(async () => cache.claim(JKT, jti, Date.now() + 60_000, Date.now()), 'the expired proof to be claimable again', 5_000);
    expect(await cache.claim(JKT, jti, Date.now() + 60_000, Date.now())).toBe(false);
  });

  if (opts.sqlTable) {
    it('prunes expired rows (at most once a minute, off the request path)', async () => {
      const later = Date.now() + 3_600_000; // a claim an hour from now: every row above has expired by then
      const fresh = new SqlReplayCache((cache as unknown as { sql: SqlClient }).sql, quiet);
      expect(await fresh.claim(JKT, randomBytes(8).toString('hex'), later + 60_000, later)).toBe(true);
      await eventually(async () => (await rowsOf!()) === 1, 'the expired rows to be deleted', 5_000);
    });
  }
}

describe('SqlReplayCache on the embedded store (PGlite)', () => {
  let store: OpenedStore;
  let dataDir: string;
  replayCacheContract(async () => {
    dataDir = await freshEmbeddedDataDir('tl-dpop-');
    store = await openEventStore({ store: 'embedded', dataDir });
    const sql = store.capabilities.sql!;
    return { cache: new SqlReplayCache(sql, quiet), rowsOf: async () => Number((await sql.query<{ n: number }>('select count(*)::int as n from tl_dpop_jti'))[0].n) };
  }, { sqlTable: true });
  afterAll(async () => {
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
});

describeWithBackend('postgres', 'SqlReplayCache on PostgreSQL, two instances on one table', (url) => {
  const schema = `tl_dpop_${randomBytes(6).toString('hex')}`;
  let a: PostgresEventStore;
  let b: PostgresEventStore;
  replayCacheContract(async () => {
    a = await PostgresEventStore.open({ url, schema });
    b = await PostgresEventStore.open({ url, schema });
    // Both create the table at once on their first claim: the advisory lock makes them queue.
    const [cache, second] = [new SqlReplayCache(a.sql, quiet), new SqlReplayCache(b.sql, quiet)];
    const now = Date.now();
    await Promise.all([cache.claim(JKT, 'warm-a', now + 60_000, now), second.claim(JKT, 'warm-b', now + 60_000, now)]);
    return { cache, second, rowsOf: async () => Number((await a.sql.query<{ n: number }>('select count(*)::int as n from tl_dpop_jti'))[0].n) };
  }, { sqlTable: true });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropPostgresSchema(url, schema);
  });
});

describe('RedisReplayCache (a real Redis), two connections', () => {
  let a: RedisReplayCache;
  let b: RedisReplayCache;
  const prefix = `tl-dpop-test-${randomBytes(4).toString('hex')}:`;
  replayCacheContract(async () => {
    a = new RedisReplayCache(REDIS_URL, prefix, quiet);
    b = new RedisReplayCache(REDIS_URL, prefix, quiet);
    await eventually(async () => a.claim(JKT, 'warm-a', Date.now() + 1000, Date.now()).then(() => true, () => false), 'Redis to answer', 5_000);
    await eventually(async () => b.claim(JKT, 'warm-b', Date.now() + 1000, Date.now()).then(() => true, () => false), 'Redis to answer', 5_000);
    return { cache: a, second: b };
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });
});
