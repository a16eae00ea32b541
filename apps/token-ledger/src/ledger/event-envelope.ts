import { randomUUID } from 'node:crypto';
import { SCHEMA_VERSION, type LedgerEvent, type RequestContext } from '@token-ledger/domain';
import type { NewEvent, RecordedEvent } from '@token-ledger/event-store';

/** Who caused a command and why: recorded in every event's metadata (SPEC §2). */
export interface CommandMetadata {
  correlationId?: string;
  causationId?: string;
  actor?: string;
  context?: RequestContext;
}

/**
 * Domain events carry their header (familyId, subject, clientId, occurredAt) next to `data`; in the
 * store those header fields travel in metadata so the store stays generic.
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

export function toDomainEvent<E extends LedgerEvent = LedgerEvent>(recorded: RecordedEvent): E {
  const m = recorded.metadata as Record<string, string>;
  return {
    type: recorded.type,
    familyId: m.familyId,
    subject: m.subject,
    clientId: m.clientId,
    occurredAt: m.occurredAt,
    data: recorded.data,
  } as E;
}

/** The stable public shape of an event (audit, timeline, Kafka value; SPEC §3). */
export interface PublicEvent {
  eventId: string;
  type: string;
  familyId: string;
  subject: string;
  clientId: string;
  occurredAt: string;
  position: number;
  data: unknown;
  metadata: CommandMetadata & { schemaVersion: number };
}

export function toPublicEvent(recorded: RecordedEvent): PublicEvent {
  const { familyId, subject, clientId, occurredAt, schemaVersion, ...rest } = recorded.metadata as Record<string, unknown>;
  return {
    eventId: recorded.eventId,
    type: recorded.type,
    familyId: familyId as string,
    subject: subject as string,
    clientId: clientId as string,
    occurredAt: occurredAt as string,
    position: recorded.position,
    data: recorded.data,
    metadata: { ...(rest as CommandMetadata), schemaVersion: schemaVersion as number },
  };
}

function compact<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
