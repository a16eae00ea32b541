/**
 * How a stored event maps to the domain and to the public shape (SPEC §3). The ledger keeps the
 * domain header (familyId, subject, clientId, occurredAt) in the store's metadata so the store stays
 * generic; these functions (and new-event.ts, the way in) are the one place that knows it.
 */
import { publicEventData, type LedgerEvent, type RequestContext } from '@token-ledger/domain';
import type { RecordedEvent } from '@token-ledger/event-store';

/** Metadata as it appears on a public event: who caused it, from where, and its chain link. */
export interface PublicEventMetadata {
  correlationId?: string;
  causationId?: string;
  actor?: string;
  context?: RequestContext;
  schemaVersion: number;
  /** Hash of the previous event in the stream (null at revision 0); absent on pre-chain events. */
  prevHash?: string | null;
  /** SHA-256 of this event's canonical form (libs/envelope/src/hash-chain.ts). */
  hash?: string;
  /** W3C trace context of the command that wrote it; only when tracing was on (trace-context.ts). */
  traceparent?: string;
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
  metadata: PublicEventMetadata;
}

/** What toPublicEvent reads of a recorded event (the rest may be there too). */
export type PublicEventSource = Pick<RecordedEvent, 'eventId' | 'type' | 'position' | 'data' | 'metadata'> & Partial<RecordedEvent>;

/**
 * The public shape. Its twin for events read as JSON text is PublicEventJson
 * (libs/forensics/src/public-event-json.ts; HEADER_NAMES there are the fields lifted here, in this order); the two must agree byte for byte —
 * public-event-json.int.spec.ts proves it for every event type on PGlite and PostgreSQL — so a
 * change here is a change there.
 */
export function toPublicEvent(recorded: PublicEventSource): PublicEvent {
  const { familyId, subject, clientId, occurredAt, schemaVersion, ...rest } = recorded.metadata as Record<string, unknown>;
  return {
    eventId: recorded.eventId,
    type: recorded.type,
    familyId: familyId as string,
    subject: subject as string,
    clientId: clientId as string,
    occurredAt: occurredAt as string,
    position: recorded.position,
    data: publicEventData(recorded.type, recorded.data),
    metadata: { ...(rest as Omit<PublicEventMetadata, 'schemaVersion'>), schemaVersion: schemaVersion as number },
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

/** When the event happened (domain time, epoch ms); the store's commit time for events without one. */
export function occurredAtMs(recorded: Pick<RecordedEvent, 'metadata' | 'recordedAt'>): number {
  return eventTimeMs((recorded.metadata as Record<string, unknown> | null)?.occurredAt, recorded.recordedAt);
}

/** occurredAt (a metadata value) as epoch ms when it is a date string, else the commit time. */
export function eventTimeMs(occurredAt: unknown, recordedAt: Date | undefined): number {
  const ms = typeof occurredAt === 'string' ? Date.parse(occurredAt) : NaN;
  return Number.isNaN(ms) ? (recordedAt?.getTime() ?? NaN) : ms;
}
