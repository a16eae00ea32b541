import { sqlBacked, type OpenedStore, type StoreCapabilities } from './capabilities';
import type { SqlClient } from './sql-client';
import { placeConsumer, type StoreConsumer } from './store-thread';

/** A store that only answers headPosition and describes the capabilities it is given. */
function storeWith(capabilities: StoreCapabilities): OpenedStore {
  const unused = () => {
    throw new Error('not used here');
  };
  return {
    kv: { get: unused, putIfAbsent: unused, put: unused },
    capabilities,
    append: unused,
    readStream: unused,
    loadStream: unused,
    readAll: unused,
    headPosition: async () => 42,
    subscribeToAll: unused,
    ping: unused,
    close: async () => undefined,
  };
}

const sql = { query: async () => [] } as unknown as SqlClient;
const location = { store: 'postgres', url: 'postgres://127.0.0.1/x', schema: 'public' } as const;

describe('placeConsumer', () => {
  type Placed = StoreConsumer & { where: string; location?: unknown };
  const consumer = (where: string, location?: unknown): Placed => ({ where, location, start: async () => undefined, stop: async () => undefined });
  const placed = (capabilities: StoreCapabilities) =>
    placeConsumer<Placed>(storeWith(capabilities), { thread: (l) => consumer('thread', l), inline: () => consumer('inline') });

  it('runs a consumer in a thread of its own where the store can be opened again there', () => {
    expect(placed({ sql, threadLocation: location })).toMatchObject({ where: 'thread', location });
  });

  it('runs it inline where it cannot (PGlite, EventStoreDB)', () => {
    expect(placed({ sql, eventsInSql: { engine: 'pglite', readAllJsonText: async () => [] } }).where).toBe('inline');
    expect(placed({ sql }).where).toBe('inline');
  });
});

describe('sqlBacked', () => {
  it("puts the store's read-model database beside its methods", async () => {
    const store = storeWith({ sql });
    const backed = sqlBacked(store, 'the read models');
    expect(backed.sql).toBe(sql);
    expect(backed.capabilities).toBe(store.capabilities);
    expect(await backed.headPosition()).toBe(42);
  });

  it('names what needed the database when the store keeps none', () => {
    expect(() => sqlBacked(storeWith({}), 'the read models')).toThrow('this store keeps no SQL database for the read models');
  });
});
