import { randomBytes } from 'node:crypto';
import { describeWithBackend } from '../../../test/backends';
import { describeEventStoreContract } from './event-store.contract';
import { reopenEventStore } from './open-event-store';
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

    it('describes its capabilities: SQL with the events in it (PostgreSQL), and a location another thread reopens', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      const store = await PostgresEventStore.open({ url, schema, poolSize: 2 });
      try {
        expect(store.capabilities.sql).toBe(store.sql);
        expect(store.capabilities.eventsInSql?.engine).toBe('postgres');
        const location = store.capabilities.threadLocation!;
        expect(structuredClone(location)).toEqual(location);
        await store.append('s', [{ eventId: '7b0c1f0e-3f7e-4a47-9a0e-1c1b7f7f0003', type: 'T', data: {}, metadata: {} }], { expectedRevision: 'no_stream' });
        const again = await reopenEventStore(structuredClone(location), { poolSize: 1 });
        try {
          expect(await again.readStream('s')).toEqual(await store.readStream('s'));
          expect(again.capabilities.threadLocation).toEqual(location);
        } finally {
          await again.close();
        }
      } finally {
        await store.close();
        await dropPostgresSchema(url, schema);
      }
    });
  });
});
