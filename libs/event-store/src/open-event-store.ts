import { EmbeddedEventStore } from './embedded-event-store';
import type { EventStore, KeyValueStore } from './event-store';
import { PostgresEventStore } from './postgres-event-store';

export type EventStoreConfig =
  | { store: 'embedded'; dataDir: string; pollIntervalMs?: number }
  | { store: 'postgres'; url: string; schema?: string; poolSize?: number; pollIntervalMs?: number }
  | {
      store: 'eventstoredb';
      /** esdb://… connection string. */
      url: string;
      /**
       * PostgreSQL for the read models. When set, the store exposes it as `sql` and keeps `kv` in its
       * tl_kv table; it is opened here and closed with the store. Without it, kv lives in ESDB.
       */
      databaseUrl?: string;
      /** Stream-name prefix; see EventStoreDbEventStoreOptions.namespace. */
      namespace?: string;
    };

/** Opens (and migrates) the configured store. */
export async function openEventStore(config: EventStoreConfig): Promise<EventStore & { kv: KeyValueStore }> {
  switch (config.store) {
    case 'embedded':
      return EmbeddedEventStore.open(config);
    case 'postgres':
      return PostgresEventStore.open(config);
    case 'eventstoredb': {
      // Loaded on demand: the gRPC client is heavy and only this store needs it.
      const { EventStoreDbEventStore } = await import('./eventstoredb-event-store');
      // Only its SqlClient (and tl_kv) is used; its event tables stay empty.
      const readModels = config.databaseUrl ? await PostgresEventStore.open({ url: config.databaseUrl }) : undefined;
      try {
        return await EventStoreDbEventStore.open({
          url: config.url,
          namespace: config.namespace,
          checkpointSql: readModels?.sql,
          onClose: readModels ? () => readModels.close() : undefined,
        });
      } catch (error) {
        await readModels?.close().catch(() => undefined);
        throw error;
      }
    }
    default:
      throw new Error(`unknown event store ${String((config as { store?: unknown }).store)}`);
  }
}
