import { EmbeddedEventStore } from './embedded-event-store';
import type { EventStore, KeyValueStore } from './event-store';
import { PostgresEventStore } from './postgres-event-store';

export type EventStoreConfig =
  | { store: 'embedded'; dataDir: string; pollIntervalMs?: number }
  | { store: 'postgres'; url: string; schema?: string; poolSize?: number; pollIntervalMs?: number };

/** Opens (and migrates) the configured store. The EventStoreDB adapter joins this union when it lands. */
export async function openEventStore(config: EventStoreConfig): Promise<EventStore & { kv: KeyValueStore }> {
  switch (config.store) {
    case 'embedded':
      return EmbeddedEventStore.open(config);
    case 'postgres':
      return PostgresEventStore.open(config);
    default:
      throw new Error(`unknown event store ${String((config as { store?: unknown }).store)}`);
  }
}
