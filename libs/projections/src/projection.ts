import type { RecordedEvent, SqlQueryable } from '@token-ledger/event-store';

/**
 * A read model fed from the store's global order. `apply` gets a batch of events in position order
 * inside the transaction that also moves the projection's checkpoint, so a crash replays a batch but
 * never skips or doubles one.
 */
export interface Projection {
  readonly name: string;
  /** Tables to empty on rebuild. */
  readonly tables: readonly string[];
  apply(tx: SqlQueryable, events: readonly RecordedEvent[]): Promise<void>;
}

/** The ledger's header fields, which the envelope keeps in metadata (see event-envelope.ts). */
export function header(event: RecordedEvent): { familyId: string; subject: string; clientId: string; occurredAt: string } {
  const m = event.metadata as Record<string, string>;
  return { familyId: m.familyId ?? '', subject: m.subject ?? '', clientId: m.clientId ?? '', occurredAt: m.occurredAt };
}
