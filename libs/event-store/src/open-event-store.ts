import type { OpenedStore, SqlBackedStore, ThreadLocation } from './capabilities';
import { EmbeddedEventStore } from './embedded-event-store';
import { PostgresEventStore } from './postgres-event-store';

export type EventStoreConfig =
  | { store: 'embedded'; dataDir: string; pollIntervalMs?: number; thread?: boolean }
  | { store: 'postgres'; url: string; schema?: string; poolSize?: number; pollIntervalMs?: number; acquireTimeoutMs?: number }
  | {
      store: 'eventstoredb';
      /** esdb://… connection string. */
      url: string;
      /**
       * PostgreSQL for the read models. When set, the store exposes it as `capabilities.sql` and keeps `kv` in its
       * tl_kv table; it is opened here and closed with the store. Without it, kv lives in ESDB.
       */
      databaseUrl?: string;
      /** Stream-name prefix; see EventStoreDbEventStoreOptions.namespace. */
      namespace?: string;
      /** For the DATABASE_URL pool: PostgresEventStoreOptions.acquireTimeoutMs. */
      acquireTimeoutMs?: number;
    };

/** Opens (and migrates) the configured store; `capabilities` says what it can do beyond the port. */
export async function openEventStore(config: EventStoreConfig): Promise<OpenedStore> {
  switch (config.store) {
    case 'embedded':
      return EmbeddedEventStore.open(config);
    case 'postgres':
      return PostgresEventStore.open(config);
    case 'eventstoredb': {
      // Loaded on demand: the gRPC client is heavy and only this store needs it.
      const { EventStoreDbEventStore } = await import('./eventstoredb-event-store');
      // Only its SqlClient (and tl_kv) is used; its event tables stay empty.
      const readModels = config.databaseUrl ? await PostgresEventStore.open({ url: config.databaseUrl, acquireTimeoutMs: config.acquireTimeoutMs }) : undefined;
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

/** A worker thread's own connections to the store it was handed (reopenEventStore). */
export interface ThreadStoreOptions {
  /** Connections of the thread's pool. */
  poolSize?: number;
  /** Its subscriptions read this long after a wake-up (PollingSubscriptionOptions.wakeDelayMs). */
  wakeDelayMs?: number;
}

/**
 * Opens, in a worker thread, the store another thread described by `capabilities.threadLocation`,
 * with connections of its own. Only a store that keeps its SQL database beside the events has a
 * location, so the consumers a thread runs get one too.
 */
export async function reopenEventStore(location: ThreadLocation, options: ThreadStoreOptions = {}): Promise<OpenedStore & SqlBackedStore> {
  switch (location.store) {
    case 'postgres':
      return PostgresEventStore.open({
        url: location.url,
        schema: location.schema,
        pollIntervalMs: location.pollIntervalMs,
        acquireTimeoutMs: location.acquireTimeoutMs,
        ...options,
      });
    default:
      throw new Error(`no store to reopen at ${String((location as { store?: unknown }).store)}`);
  }
}
