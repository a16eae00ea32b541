/**
 * The state of a family as of an instant, rebuilt with the domain's own evolveFamily — the very
 * function the live decider folds with — so a replay and the live ledger can never disagree.
 */
import {
  describeFamilyStatus,
  evolveFamily,
  initialFamilyState,
  toIso,
  type FamilyEvent,
  type FamilyState,
  type RequestContext,
} from '@token-ledger/domain';
import type { RecordedEvent } from '@token-ledger/event-store';
import { occurredAtMs, toDomainEvent } from './envelope';

/** A family as the read API shows it (SPEC §3). Times ISO-8601 or null. */
export interface FamilyView {
  familyId: string;
  subject: string;
  clientId: string;
  scope: string[];
  status: 'active' | 'revoked' | 'expired';
  generation: number;
  createdAt: string | null;
  lastUsedAt: string | null;
  idleExpiresAt: string | null;
  absoluteExpiresAt: string | null;
  revokedAt: string | null;
  revokedReason: string | null;
  lastContext: RequestContext | null;
}

const isoOrNull = (ms: number | null): string | null => (ms === null || ms <= 0 ? null : toIso(ms));

/**
 * The SPEC §3 family shape of a decider state as seen at `at` (epoch ms): an active family past its
 * idle or absolute expiry reads as expired (describeFamilyStatus), whether or not the sweeper has
 * recorded it yet. null when the family did not exist at `at`.
 */
export function toFamilyView(state: FamilyState, at: number): FamilyView | null {
  const status = describeFamilyStatus(state, at);
  if (status === 'none') return null;
  const issued = state.createdAt > 0;
  return {
    familyId: state.familyId,
    subject: state.subject,
    clientId: state.clientId,
    scope: [...state.scope],
    status,
    generation: state.generation,
    createdAt: isoOrNull(state.createdAt),
    lastUsedAt: issued ? isoOrNull(state.lastUsedAt) : null,
    idleExpiresAt: issued ? isoOrNull(state.idleExpiresAt) : null,
    absoluteExpiresAt: issued ? isoOrNull(state.absoluteExpiresAt) : null,
    revokedAt: isoOrNull(state.revokedAt),
    revokedReason: state.revokedReason,
    lastContext: state.lastContext ? { ...state.lastContext } : null,
  };
}

/**
 * Folds a family stream's events (in revision order) that happened at or before `at`. Feed it every
 * event; it skips the later ones itself.
 */
export class FamilyStateAt {
  private current: FamilyState = initialFamilyState();
  private folded = 0;

  constructor(readonly at: number) {}

  /** True when the event counted (occurredAt <= at). */
  apply(recorded: RecordedEvent): boolean {
    if (occurredAtMs(recorded) > this.at) return false;
    this.current = evolveFamily(this.current, toDomainEvent<FamilyEvent>(recorded));
    this.folded++;
    return true;
  }

  get state(): FamilyState {
    return this.current;
  }

  /** How many events the state reflects. */
  get eventCount(): number {
    return this.folded;
  }

  view(): FamilyView | null {
    return toFamilyView(this.current, this.at);
  }
}
