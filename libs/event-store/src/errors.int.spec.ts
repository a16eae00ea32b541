import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { describeWithBackend } from '../../../test/backends';
import { freePort } from '../../../test/support/free-port';
import { EmbeddedEventStore } from './embedded-event-store';
import { EventStoreClosedError, isStoreUnavailable } from './errors';
import { dropPostgresSchema, PostgresEventStore } from './postgres-event-store';

/** What the real adapters raise when the store goes away is what isStoreUnavailable recognises. */
describe('isStoreUnavailable on real store errors', () => {
  it('embedded: the closed store and the closed PGlite under the read models', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-ledger-es-'));
    const store = await EmbeddedEventStore.open({ dataDir });
    await store.close();
    try {
      const closed = await (async () => store.loadStream('s'))().catch((e: unknown) => e);
      expect(closed).toBeInstanceOf(EventStoreClosedError);
      expect(isStoreUnavailable(closed)).toBe(true);
      const sql = await store.sql.query('select 1').catch((e: unknown) => e);
      expect(sql).toMatchObject({ message: expect.stringMatching(/PGlite is clos/) });
      expect(isStoreUnavailable(sql)).toBe(true);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('pg: a refused connection', async () => {
    const port = await freePort();
    const refused = await PostgresEventStore.open({ url: `postgres://postgres@127.0.0.1:${port}/test` }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ECONNREFUSED' });
    expect(isStoreUnavailable(refused)).toBe(true);
  });

  it('is false for a programming error and for a rejected statement', () => {
    expect(isStoreUnavailable(new TypeError('x is not a function'))).toBe(false);
    expect(isStoreUnavailable(Object.assign(new Error('relation "tl_nope" does not exist'), { code: '42P01' }))).toBe(false);
    expect(isStoreUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isStoreUnavailable(undefined)).toBe(false);
    expect(isStoreUnavailable('ECONNREFUSED')).toBe(false);
  });
});

describeWithBackend('postgres', 'isStoreUnavailable on a PostgreSQL connection cut mid-query', (url) => {
  it('a backend terminated by the server (57P01) is unavailable', async () => {
    const schema = `es_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema, poolSize: 1 });
    const admin = new Client({ connectionString: url });
    await admin.connect();
    try {
      const [{ pid }] = await store.sql.query<{ pid: number }>('select pg_backend_pid() as pid');
      const sleeping = store.sql.query('select pg_sleep(10)').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      await admin.query('select pg_terminate_backend($1)', [pid]);
      const error = await sleeping;
      expect(error).toMatchObject({ code: '57P01' });
      expect(isStoreUnavailable(error)).toBe(true);
    } finally {
      await admin.end();
      await store.close();
      await dropPostgresSchema(url, schema);
    }
  });
});

describeWithBackend('postgres', 'isStoreUnavailable when no PostgreSQL connection can be had in time', (url) => {
  it('an exhausted pool: the query waits acquireTimeoutMs, then fails as unavailable', async () => {
    const schema = `es_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema, poolSize: 1, acquireTimeoutMs: 300 });
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holding = store.sql.transaction(async () => {
      entered();
      await new Promise<void>((resolve) => (release = resolve));
    });
    try {
      await inside;
      for (const call of [() => store.sql.query('select 1'), () => store.ping(), () => store.headPosition()]) {
        const started = Date.now();
        const error = await call().catch((e: unknown) => e);
        const waited = Date.now() - started;
        expect(error).toMatchObject({ message: 'timeout exceeded when trying to connect' });
        expect(isStoreUnavailable(error)).toBe(true);
        expect(waited).toBeGreaterThanOrEqual(250);
        expect(waited).toBeLessThan(2000);
      }
      // The connection comes back to the pool and serves again.
      release();
      await holding;
      await expect(store.sql.query('select 1 as one')).resolves.toEqual([{ one: 1 }]);
    } finally {
      release?.();
      await holding.catch(() => undefined);
      await store.close();
      await dropPostgresSchema(url, schema);
    }
  });
});

describe('isStoreUnavailable when a database accepts connections but never answers', () => {
  it('connecting gives up after acquireTimeoutMs, as unavailable', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket.on('error', () => undefined)));
    const port = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)));
    try {
      const started = Date.now();
      const error = await PostgresEventStore.open({ url: `postgres://postgres@127.0.0.1:${port}/test`, acquireTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error).toMatchObject({ message: 'Connection terminated due to connection timeout' });
      expect(isStoreUnavailable(error)).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
