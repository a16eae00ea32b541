/**
 * What a store can do beyond the port (event-store.ts), as the store itself describes it: callers
 * ask `store.capabilities`, never which adapter class they hold. Each capability is present only
 * where the store has it.
 *
 * | capability     | embedded (PGlite) | PostgreSQL       | EventStoreDB      |
 * |----------------|-------------------|------------------|-------------------|
 * | sql            | yes               | yes              | with DATABASE_URL |
 * | eventsInSql    | yes ('pglite')    | yes ('postgres') | no                |
 * | threadLocation | no                | yes              | no                |
 */
import type { EventStore, KeyValueStore } from './event-store';
import type { SqlClient } from './sql-client';

export interface StoreCapabilities {
  /**
   * The read models' database: read models, their checkpoints, the messaging checkpoints and the
   * anomaly engine's state live there, so each consumer commits its rows and its checkpoint together.
   * The events' own database on the SQL stores; DATABASE_URL beside EventStoreDB.
   */
  readonly sql?: SqlClient;
  /**
   * The events are in `tl_events` of that same database (`sql` is then present): the read models can
   * be rebuilt set-based, by SQL over the events (libs/projections rebuild-in-sql.ts), and an export
   * can copy the stored JSON text (libs/forensics ndjson.ts).
   */
  readonly eventsInSql?: EventsInSql;
  /**
   * The store can be opened again in a worker thread (reopenEventStore), so a consumer that does not
   * serve requests can run there, away from the API's load (placeConsumer, store-thread.ts).
   */
  readonly threadLocation?: ThreadLocation;
}

export interface EventsInSql {
  /**
   * PostgreSQL (a pool: statements run side by side on several connections, advisory locks hold
   * across them) or PGlite (one connection, in this thread's memory).
   */
  readonly engine: 'postgres' | 'pglite';
  /**
   * Like readAll, but `data` and `metadata` as the stored JSON text (jsonb's output form) instead
   * of parsed values, with only the columns an export needs, so a caller that copies JSON through
   * skips a JSON.parse and a JSON.stringify per event.
   */
  readAllJsonText(options: ReadAllJsonTextOptions): Promise<JsonTextEvent[]>;
}

/** An event as readAllJsonText hands it over: data and metadata as JSON text. */
export interface JsonTextEvent {
  position: number;
  eventId: string;
  type: string;
  /** The stored payload as JSON text (jsonb output form). */
  data: string;
  /** The stored metadata as JSON text (jsonb output form). */
  metadata: string;
  /** Commit time; only when asked for (ReadAllJsonTextOptions.recordedAt). */
  recordedAt?: Date;
}

export interface ReadAllJsonTextOptions {
  /** Exclusive lower bound on position; default 0. */
  after?: number;
  /** Inclusive upper bound on position; default none. */
  until?: number;
  maxCount?: number;
  /** Also return recordedAt (the commit time). */
  recordedAt?: boolean;
}

/**
 * Where a worker thread opens the store again (reopenEventStore, open-event-store.ts). Callers treat
 * it as opaque and only pass it on, in a thread's workerData: it is plain data, so it survives the
 * structured clone.
 */
export type ThreadLocation = {
  readonly store: 'postgres';
  readonly url: string;
  readonly schema: string;
  readonly pollIntervalMs?: number;
  /** The opening thread's bound on waiting for a connection (PostgresEventStoreOptions.acquireTimeoutMs). */
  readonly acquireTimeoutMs?: number;
};

/** A store as openEventStore returns it, and as every adapter is: the port, its key/value table, what else it can do. */
export interface OpenedStore extends EventStore {
  readonly kv: KeyValueStore;
  readonly capabilities: StoreCapabilities;
}

/** A store with the database its consumers keep their state in (the projection runner, the Kafka relay, the anomaly engine). */
export type SqlBackedStore = EventStore & { readonly sql: SqlClient };

/**
 * The store with its read models' database (capabilities.sql) beside it, as the consumers that keep
 * their state there take it; throws, naming `forWhat`, when the store keeps no SQL database
 * (EventStoreDB without DATABASE_URL). A view: the store's own methods, nothing opened or copied.
 */
export function sqlBacked(store: OpenedStore, forWhat: string): OpenedStore & SqlBackedStore {
  const sql = store.capabilities.sql;
  if (!sql) throw new Error(`this store keeps no SQL database for ${forWhat}`);
  return {
    sql,
    kv: store.kv,
    capabilities: store.capabilities,
    append: (streamId, events, options) => store.append(streamId, events, options),
    readStream: (streamId, options) => store.readStream(streamId, options),
    loadStream: (streamId) => store.loadStream(streamId),
    readAll: (options) => store.readAll(options),
    headPosition: () => store.headPosition(),
    subscribeToAll: (handler, options) => store.subscribeToAll(handler, options),
    wakeSubscriptionsNow: () => store.wakeSubscriptionsNow?.(),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
