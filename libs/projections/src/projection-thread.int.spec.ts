/**
 * ThreadedProjectionRunner on real PostgreSQL: the runner in its own worker thread, with its own
 * connections. A thread that dies mid-stream is started again and resumes from the committed
 * checkpoints: nothing lost, nothing applied twice.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { dropPostgresSchema, PostgresEventStore } from '@token-ledger/event-store';
import { describeWithBackend } from '../../../test/backends';
import { ALL_PROJECTIONS } from './index';
import { migrateReadModels } from './projection-runner';
import { ThreadedProjectionRunner } from './projection-thread';

describeWithBackend('postgres', 'ThreadedProjectionRunner on PostgreSQL', (url) => {
  let store: PostgresEventStore;
  let schema: string;

  beforeEach(async () => {
    schema = `tl_thread_${randomBytes(6).toString('hex')}`;
    store = await PostgresEventStore.open({ url, schema });
    await migrateReadModels(store.sql);
  });
  afterEach(async () => {
    await store.close();
    await dropPostgresSchema(url, schema);
  });

  const appendSome = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const familyId = `fam_${randomBytes(8).toString('hex')}`;
      await store.append(`family-${familyId}`, [
        { eventId: randomUUID(), type: 'RefreshRejected', data: { reason: 'bad_secret' }, metadata: { familyId, subject: 'alice', clientId: 'web', occurredAt: new Date().toISOString() } },
      ], { expectedRevision: 'any' });
    }
  };

  it('follows the store from another thread and mirrors its position; a dead thread restarts with nothing lost or doubled', async () => {
    const errors: Error[] = [];
    const lags: number[] = [];
    const runner = new ThreadedProjectionRunner({ location: store.capabilities.threadLocation!, projections: ALL_PROJECTIONS.map((p) => p.name) }, ALL_PROJECTIONS, {
      onBatch: (b) => lags.push(...b.lagsMs),
      onError: (e) => errors.push(e as Error),
    });
    await appendSome(20);
    await runner.start();
    try {
      expect(await runner.waitFor(await store.headPosition(), 10_000)).toBe(true);
      expect(lags.length).toBe(20);

      // Kill the thread between batches, then append more while it is down.
      await runner.kill();
      await appendSome(30);
      expect(await runner.waitFor(await store.headPosition(), 15_000)).toBe(true);
      expect(errors.map((e) => e.message).join('\n')).toMatch(/projection thread exited .* starting it again/);

      const [{ n, distinct }] = await store.sql.query<{ n: string; distinct: string }>('select count(*) as n, count(distinct position) as distinct from rm_audit');
      expect(Number(n)).toBe(50);
      expect(Number(distinct)).toBe(50);
      const [{ position }] = await store.sql.query<{ position: string }>(`select min(position) as position from rm_checkpoints`);
      expect(Number(position)).toBe(await store.headPosition());
    } finally {
      await runner.stop();
    }
  });

  it('start fails with the thread\'s reason when it cannot open the store', async () => {
    const runner = new ThreadedProjectionRunner({ location: { store: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none', schema }, projections: ['audit'] }, ALL_PROJECTIONS, {});
    await expect(runner.start()).rejects.toThrow(/ECONNREFUSED|connect/);
    await runner.stop();
  });

  it('stop ends the thread; start again resumes from the checkpoints', async () => {
    const runner = new ThreadedProjectionRunner({ location: store.capabilities.threadLocation!, projections: ALL_PROJECTIONS.map((p) => p.name) }, ALL_PROJECTIONS);
    await runner.start();
    await appendSome(5);
    expect(await runner.waitFor(await store.headPosition(), 10_000)).toBe(true);
    await runner.stop();
    await appendSome(5);
    await runner.start();
    try {
      expect(await runner.waitFor(await store.headPosition(), 10_000)).toBe(true);
      const [{ n }] = await store.sql.query<{ n: string }>('select count(*) as n from rm_audit');
      expect(Number(n)).toBe(10);
    } finally {
      await runner.stop();
    }
  });
});
