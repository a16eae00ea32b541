/**
 * How a stored event maps to the domain and to the public shape (SPEC §3). The ledger keeps the
 * domain header (familyId, subject, clientId, occurredAt) in the store's metadata so the store stays
 * generic; these functions are the one place that knows it. The app's event-envelope re-exports them.
 */
import { publicEventData, type LedgerEvent, type RequestContext } from '@token-ledger/domain';
import type { RecordedEvent } from '@token-ledger/event-store';

/** Stream naming (the app's aggregates use the same prefixes). */
export const FAMILY_STREAM_PREFIX = 'family-';
export const SUBJECT_STREAM_PREFIX = 'subject-';
export const CLIENT_STREAM_PREFIX = 'client-';

export const familyStreamId = (familyId: string): string => `${FAMILY_STREAM_PREFIX}${familyId}`;
export const subjectStreamId = (subject: string): string => `${SUBJECT_STREAM_PREFIX}${subject}`;

/** Metadata as it appears on a public event: who caused it, from where, and its chain link. */
export interface PublicEventMetadata {
  correlationId?: string;
  causationId?: string;
  actor?: string;
  context?: RequestContext;
  schemaVersion: number;
  /** Hash of the previous event in the stream (null at revision 0); absent on pre-chain events. */
  prevHash?: string | null;
  /** SHA-256 of this event's canonical form (libs/forensics/src/hash-chain.ts). */
  hash?: string;
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
export function occurredAtMs(recorded: RecordedEvent): number {
  const raw = (recorded.metadata as Record<string, unknown> | null)?.occurredAt;
  const ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
  return Number.isNaN(ms) ? recorded.recordedAt.getTime() : ms;
}
