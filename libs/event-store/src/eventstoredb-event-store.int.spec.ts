import { randomBytes, randomUUID } from 'node:crypto';
import { describeWithBackend } from '../../../test/backends';
import { describeEventStoreContract } from './event-store.contract';
import { EventStoreDbEventStore } from './eventstoredb-event-store';
import { dropPostgresSchema, PostgresEventStore } from './postgres-event-store';

/** Every suite gets its own stream namespace on the shared server, so $all starts empty for it. */
const namespace = () => `t${randomBytes(6).toString('hex')}.`;

describeWithBackend('eventstoredb', 'EventStoreDbEventStore', (url) => {
  describeEventStoreContract(
    'eventstoredb',
    async () => {
      const ns = namespace();
      const store = await EventStoreDbEventStore.open({ url, namespace: ns });
      return {
        store,
        kv: store.kv,
        // Live delivery across instances comes from the server's push subscription.
        openSecondInstance: () => EventStoreDbEventStore.open({ url, namespace: ns }),
        // ESDB has no cheap "drop namespace": the streams stay, under a prefix nobody reads again.
        cleanup: () => store.close(),
      };
    },
    // No reopen: the data lives in the server, not in this process's files.
    { keyValueStore: true, secondInstance: true },
  );

  describe('EventStoreDbEventStore.open', () => {
    it('fails fast with the server unreachable', async () => {
      await expect(EventStoreDbEventStore.open({ url: 'esdb://127.0.0.1:1?tls=false' })).rejects.toThrow();
    });

    it('refuses stream ids that collide with system or side streams', async () => {
      const store = await EventStoreDbEventStore.open({ url, namespace: namespace() });
      try {
        for (const id of ['$x', 'snapshot-x', 'kv-x', '']) {
          await expect(store.append(id, [{ eventId: randomUUID(), type: 'T', data: {}, metadata: {} }], { expectedRevision: 'any' })).rejects.toThrow(
            TypeError,
          );
        }
      } finally {
        await store.close();
      }
    });
  });

  describeWithBackend('postgres', 'EventStoreDbEventStore with a read-model database', (databaseUrl) => {
    it('exposes it as capabilities.sql and keeps kv in its tl_kv table', async () => {
      const schema = `es_test_${randomBytes(6).toString('hex')}`;
      const readModels = await PostgresEventStore.open({ url: databaseUrl, schema });
      try {
        const store = await EventStoreDbEventStore.open({ url, namespace: namespace(), checkpointSql: readModels.sql });
        try {
          expect(store.capabilities).toEqual({ sql: readModels.sql });
          const key = `k-${randomUUID()}`;
          expect(await store.kv.putIfAbsent(key, { first: true })).toEqual({ first: true });
          expect(await store.kv.putIfAbsent(key, { first: false })).toEqual({ first: true });
          expect(await readModels.sql.query('select value from tl_kv where key = $1', [key])).toEqual([{ value: { first: true } }]);
        } finally {
          await store.close();
        }
      } finally {
        await readModels.close();
        await dropPostgresSchema(databaseUrl, schema);
      }
    }, 60_000);
  });
});
