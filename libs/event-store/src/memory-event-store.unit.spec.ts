import { randomUUID } from 'node:crypto';
import { EventStoreClosedError } from './errors';
import { describeEventStoreContract } from './event-store.contract';
import { MemoryDatabase, MemoryEventStore } from './memory-event-store';

describeEventStoreContract('memory', async () => {
  const database = new MemoryDatabase();
  let store = new MemoryEventStore(database);
  return {
    store,
    kv: store.kv,
    // Long fallback poll: the cross-instance test must be satisfied by the database's wake-ups.
    openSecondInstance: async () => new MemoryEventStore(database, { pollIntervalMs: 60_000 }),
    reopen: async () => {
      await store.close();
      store = new MemoryEventStore(database);
      return { store, kv: store.kv };
    },
    cleanup: () => store.close(),
  };
}, { keyValueStore: true, secondInstance: true, reopen: true, uniqueEventIds: true });

describe('MemoryEventStore', () => {
  const event = () => ({ eventId: randomUUID(), type: 'T', data: { at: new Date(0), gone: undefined }, metadata: {} });

  it('refuses every call after close with EventStoreClosedError; close is idempotent', async () => {
    const store = new MemoryEventStore();
    await store.append('s', [event()], { expectedRevision: 'no_stream' });
    await store.close();
    await store.close();
    await expect(store.append('s', [event()], { expectedRevision: 0 })).rejects.toBeInstanceOf(EventStoreClosedError);
    for (const call of [store.readStream('s'), store.loadStream('s'), store.readAll(), store.headPosition(), store.ping()]) {
      await expect(call).rejects.toBeInstanceOf(EventStoreClosedError);
    }
    expect(() => store.subscribeToAll(async () => undefined)).toThrow(EventStoreClosedError);
  });

  it('stores data as JSON, as jsonb does, and hands out copies', async () => {
    const store = new MemoryEventStore();
    await store.append('s', [event()], { expectedRevision: 'no_stream' });
    const [read] = await store.readStream('s');
    expect(read.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    expect('gone' in (read.data as object)).toBe(false);
    (read.data as { at: string }).at = 'edited';
    expect((await store.readAll())[0].data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
  });

  it('refuses an invalid expected revision', async () => {
    const store = new MemoryEventStore();
    await expect(store.append('s', [event()], { expectedRevision: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.append('s', [event()], { expectedRevision: 'nope' as never })).rejects.toBeInstanceOf(RangeError);
  });
});
