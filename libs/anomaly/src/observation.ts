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
  /** How many refusals a failure stands for: an aggregated RefreshRejected's `count`, else 1. */
  weight: number;
  /**
   * A failure that is a forged token (RefreshRejected bad_secret) or a bound token without its DPoP
   * key (dpop_key_mismatch): anyone who knows a family id can cause these, so they count towards
   * storms but never make one revoke (SPEC §2 rule 4).
   */
  forged: boolean;
  /** A failure's addresses with their counts (an aggregated record names several; else `ip`). */
  sources: Array<{ ip: string; count: number }>;
  data: Record<string, unknown>;
}

/**
 * Refusals anyone who knows a family id can cause: a forged token (bad_secret), and a DPoP-bound
 * family's refresh without its key (dpop_key_mismatch: decided before the token is even
 * authenticated, docs/dpop.md) — counting them as real would hand a keyless thief a way to get
 * the user logged out by the storm rule.
 */
const ANYONE_CAN_CAUSE = new Set(['bad_secret', 'dpop_key_mismatch']);
const USES = new Set(['TokenFamilyIssued', 'TokenRotated', 'TokenRotationReplayed']);
const FAILURES = new Set(['RefreshRejected', 'TokenReuseDetected']);
const ENDS = new Set(['TokenFamilyRevoked', 'TokenFamilyExpired']);

/** Bounds what one event can add to the IP windows, whatever its payload claims. */
const MAX_SOURCES = 64;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function sourcesOf(data: Record<string, unknown>, ip: string | undefined, weight: number): Observation['sources'] {
  if (!Array.isArray(data.sources)) return ip ? [{ ip, count: weight }] : [];
  return data.sources
    .filter((s): s is { ip: string; count: number } => typeof s?.ip === 'string' && s.ip.length > 0 && isCount(s?.count))
    .slice(0, MAX_SOURCES)
    .map((s) => ({ ip: s.ip, count: Math.min(s.count, weight) }));
}

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
  const ip = str(context.ip);
  const failure = kind === 'failure';
  const weight = failure && event.type === 'RefreshRejected' && isCount(data.count) ? data.count : 1;
  return {
    eventId: event.eventId,
    position: event.position,
    type: event.type,
    familyId: event.familyId,
    subject: event.subject,
    clientId: event.clientId,
    at: Number.isNaN(at) ? 0 : at,
    ip,
    userAgent: str(context.userAgent),
    deviceId: str(context.deviceId),
    correlationId: str(event.metadata?.correlationId),
    kind,
    refresh: event.type === 'TokenRotated' || event.type === 'TokenRotationReplayed',
    weight,
    forged: failure && event.type === 'RefreshRejected' && ANYONE_CAN_CAUSE.has(data.reason as string),
    sources: failure ? sourcesOf(data, ip, weight) : [],
    data,
  };
}
