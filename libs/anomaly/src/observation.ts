import type { PublicEvent } from '@token-ledger/envelope';

/** What the rules need of one event, whatever transport brought it. */
export interface Observation {
  eventId: string;
  position: number;
  type: string;
  familyId: string;
  subject: string;
  clientId: string;
  /** occurredAt, epoch ms: rules run on event time, so a replay or backtest decides the same. */
  at: number;
  ip?: string;
  userAgent?: string;
  deviceId?: string;
  correlationId?: string;
  /**
   * use: the family was used by its holder (issue, rotation, grace replay); failure: a refresh was
   * refused (RefreshRejected, TokenReuseDetected); end: the family is over; other: not a rule input.
   */
  kind: 'use' | 'failure' | 'end' | 'other';
  /** A use that was a refresh (counts towards refresh_burst). */
  refresh: boolean;
  data: Record<string, unknown>;
}

const USES = new Set(['TokenFamilyIssued', 'TokenRotated', 'TokenRotationReplayed']);
const FAILURES = new Set(['RefreshRejected', 'TokenReuseDetected']);
const ENDS = new Set(['TokenFamilyRevoked', 'TokenFamilyExpired']);

export function observe(event: PublicEvent): Observation {
  const data = (event.data ?? {}) as Record<string, unknown>;
  const context = ((data.context as Record<string, unknown> | undefined) ?? event.metadata?.context ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const at = Date.parse(event.occurredAt);
  const kind = !event.familyId
    ? 'other'
    : USES.has(event.type)
      ? 'use'
      : FAILURES.has(event.type)
        ? 'failure'
        : ENDS.has(event.type)
          ? 'end'
          : 'other';
  return {
    eventId: event.eventId,
    position: event.position,
    type: event.type,
    familyId: event.familyId,
    subject: event.subject,
    clientId: event.clientId,
    at: Number.isNaN(at) ? 0 : at,
    ip: str(context.ip),
    userAgent: str(context.userAgent),
    deviceId: str(context.deviceId),
    correlationId: str(event.metadata?.correlationId),
    kind,
    refresh: event.type === 'TokenRotated' || event.type === 'TokenRotationReplayed',
    data,
  };
}
