import { randomUUID } from 'node:crypto';
import { SCHEMA_VERSION, type AnomalyDetected, type LedgerEvent, type RequestContext } from '@token-ledger/domain';
import type { NewEvent } from '@token-ledger/event-store';
import { activeTraceparent } from './trace-context';

/** Who caused a command and why: recorded in every event's metadata (SPEC §2) — all but `command`. */
export interface CommandMetadata {
  correlationId?: string;
  causationId?: string;
  actor?: string;
  context?: RequestContext;
  /** The command running (`rotate_token`), for metrics labels; set by the command bus, never stored. */
  command?: string;
}

/**
 * Domain events carry their header (familyId, subject, clientId, occurredAt) next to `data`; in the
 * store those header fields travel in metadata so the store stays generic (public-event.ts reads
 * them back). The hash-chain fields (prevHash, hash) are added by sealEvents, which knows the stream
 * and revision. `eventId` is random unless the writer derives it (an anomaly's follows from its id).
 */
export function toNewEvent(event: LedgerEvent | AnomalyDetected, meta: CommandMetadata, eventId: string = randomUUID()): NewEvent {
  // With tracing on, the writer's trace context, so the relay and the consumers continue its trace
  // (trace-context.ts). Part of the record like correlationId: hashed, and in the public shape.
  const traceparent = activeTraceparent();
  return {
    eventId,
    type: event.type,
    data: event.data,
    metadata: {
      familyId: event.familyId,
      subject: event.subject,
      clientId: event.clientId,
      occurredAt: event.occurredAt,
      schemaVersion: SCHEMA_VERSION,
      ...compact(recorded(meta)),
      ...(traceparent ? { traceparent } : {}),
    },
  };
}

function recorded({ command: _label, ...rest }: CommandMetadata): Omit<CommandMetadata, 'command'> {
  return rest;
}

function compact<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
