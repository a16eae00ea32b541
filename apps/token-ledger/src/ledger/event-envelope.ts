import { randomUUID } from 'node:crypto';
import { SCHEMA_VERSION, type LedgerEvent, type RequestContext } from '@token-ledger/domain';
import type { NewEvent } from '@token-ledger/event-store';

/**
 * The stored → domain and stored → public mappings live in @token-ledger/forensics (which replays
 * history without the app); re-exported here so the app keeps one envelope module.
 */
export { toDomainEvent, toPublicEvent, type PublicEvent, type PublicEventMetadata } from '@token-ledger/forensics';

/** Who caused a command and why: recorded in every event's metadata (SPEC §2). */
export interface CommandMetadata {
  correlationId?: string;
  causationId?: string;
  actor?: string;
  context?: RequestContext;
}

/**
 * Domain events carry their header (familyId, subject, clientId, occurredAt) next to `data`; in the
 * store those header fields travel in metadata so the store stays generic. The hash-chain fields
 * (prevHash, hash) are added by the AggregateRepository, which knows the stream and revision.
 */
export function toNewEvent(event: LedgerEvent, meta: CommandMetadata): NewEvent {
  return {
    eventId: randomUUID(),
    type: event.type,
    data: event.data,
    metadata: {
      familyId: event.familyId,
      subject: event.subject,
      clientId: event.clientId,
      occurredAt: event.occurredAt,
      schemaVersion: SCHEMA_VERSION,
      ...compact(meta),
    },
  };
}

function compact<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
