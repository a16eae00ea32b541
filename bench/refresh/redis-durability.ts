import { Redis } from 'ioredis';

import { registerCleanup, sleep } from './processes';
import { PrerequisiteMissing } from './prerequisites';

export interface RedisRun {
  /** What the run was measured with, for the report. */
  readonly statement: string;
  /** Restores appendonly/appendfsync and deletes the run's keys. */
  restore(): Promise<void>;
}

/**
 * Switches the Redis server at `url` to `appendonly yes` + `appendfsync <fsync>` for one run, so the
 * oidc-provider-redis row has a durability statement comparable to a database commit: with
 * `everysec` a crash loses at most about a second of acknowledged writes, with `always` none.
 * Waits for the rewrite that enabling the AOF starts, so it does not run inside the window.
 * `restore()` (also run on SIGINT) puts back the previous settings and deletes `keyPrefix*`.
 */
export async function makeRedisDurable(url: string, fsync: 'everysec' | 'always', keyPrefix: string, log: (line: string) => void): Promise<RedisRun> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new PrerequisiteMissing(`no Redis at ${url} (${(err as Error).message})`);
  }
  let before: { appendonly: string; appendfsync: string };
  let version: string;
  try {
    const [, appendonly] = (await client.config('GET', 'appendonly')) as string[];
    const [, appendfsync] = (await client.config('GET', 'appendfsync')) as string[];
    before = { appendonly, appendfsync };
    version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
    await client.config('SET', 'appendfsync', fsync);
    await client.config('SET', 'appendonly', 'yes');
  } catch (err) {
    client.disconnect();
    throw new PrerequisiteMissing(`Redis at ${url} refuses CONFIG GET/SET (${(err as Error).message}): cannot set its durability`);
  }

  let restored = false;
  const restore = async (): Promise<void> => {
    if (restored) return;
    restored = true;
    unregister();
    try {
      // the run's keys: a SCAN over the prefix (never FLUSHDB: the server is shared)
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) deleted += await client.unlink(...keys);
      } while (cursor !== '0');
      await client.config('SET', 'appendonly', before.appendonly);
      await client.config('SET', 'appendfsync', before.appendfsync);
      log(`Redis restored to appendonly ${before.appendonly}, appendfsync ${before.appendfsync}; ${deleted} bench keys deleted`);
    } finally {
      client.disconnect();
    }
  };
  const unregister = registerCleanup(restore);

  // Enabling the AOF forks a rewrite of the whole dataset; wait for it (bounded) before measuring.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const info = await client.info('persistence');
    const inProgress = /aof_rewrite_in_progress:1/.test(info) || /aof_rewrite_scheduled:1/.test(info);
    if (/aof_enabled:1/.test(info) && !inProgress) break;
    if (Date.now() > deadline) {
      await restore();
      throw new Error(`Redis at ${url}: the AOF rewrite did not finish within 60 s`);
    }
    await sleep(100);
  }
  const [, nowAppendonly] = (await client.config('GET', 'appendonly')) as string[];
  const [, nowFsync] = (await client.config('GET', 'appendfsync')) as string[];
  const statement = `Redis ${version}: appendonly ${nowAppendonly}, appendfsync ${nowFsync} for the run (was appendonly ${before.appendonly}, appendfsync ${before.appendfsync}; restored after)`;
  log(statement);
  return { statement, restore };
}
