export * from './event-store';
export * from './errors';
export * from './capabilities';
export type { SqlClient, SqlQueryable } from './sql-client';
export { SqlEventStore } from './sql-event-store';
export type { ExternalWakeups, SqlEventStoreOptions } from './sql-event-store';
export { SqlKeyValueStore } from './sql-key-value-store';
export { PollingSubscription, WakeHub } from './polling-subscription';
export type { PollingSubscriptionOptions, SubscriptionSource } from './polling-subscription';
export { EmbeddedEventStore } from './embedded-event-store';
export type { EmbeddedEventStoreOptions } from './embedded-event-store';
export { PostgresEventStore, dropPostgresSchema } from './postgres-event-store';
export type { PostgresEventStoreOptions } from './postgres-event-store';
// Types only: the gRPC client costs ~100 ms to load, so it loads when openEventStore asks for it
// (import the class from './eventstoredb-event-store' to construct one directly).
export type { EventStoreDbClientLike, EventStoreDbEventStore, EventStoreDbEventStoreOptions } from './eventstoredb-event-store';
export { MemoryDatabase, MemoryEventStore, type MemoryEventStoreOptions, type MemoryStream } from './memory-event-store';
export { MemoryKeyValueStore } from './memory-key-value-store';
export { openEventStore, reopenEventStore } from './open-event-store';
export type { EventStoreConfig, ThreadStoreOptions } from './open-event-store';
export { BatchedConsumer, type BatchedConsumerHooks } from './batched-consumer';
export { describeError, placeConsumer, preloadInStoreThreads, runThread, spawnWorker, startOnStore, SupervisedThread, type StoreConsumer, type SupervisedThreadHandlers, type ThreadError } from './store-thread';
