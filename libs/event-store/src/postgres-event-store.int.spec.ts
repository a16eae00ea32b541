import { randomBytes } from 'node:crypto';
import { describeWithBackend } from '../../../test/backends';
import { describeEventStoreContract } from './event-store.contract';
import { dropPostgresSchema, PostgresEventStore } from './postgres-event-store';

describeWithBackend('postgres', 'PostgresEventStore', (url) => {
  describeEventStoreContract('postgres', async () => {
    const schema = `es_test_${randomBytes(6).toString('hex')}`;
    const store = await PostgresEventStore.open({ url, schema });
    return {
      store,
      kv: store.kv,
      // Long fallback poll: the cross-instance test must be satisfied by LISTEN/NOTIFY.
      openSecondInstance: () => PostgresEventStore.open({ url, schema, pollIntervalMs: 60_000 }),
      cleanup: async () => {
        await store.close();
        await dropPostgresSchema(url, schema);
      },
    };
  }, { keyValueStore: true, secondInstance: true, uniqueEventIds: true });

  describe('PostgresEventStore.open', () => {
    it('migrates safely when several processes open the same new schema at once', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      try {
        const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresEventStore.open({ url, schema, poolSize: 2 })));
        await stores[0].append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0001', type: 'T', data: {}, metadata: {} }], {
          expectedRevision: 'no_stream',
        });
        for (const store of stores) expect(await store.headPosition()).toBeGreaterThan(0);
        await Promise.all(stores.map((store) => store.close()));
      } finally {
        await dropPostgresSchema(url, schema);
      }
    });
  });
});
