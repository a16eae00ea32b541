/**
 * A family as the read API shows it (SPEC §3), from the decider's own state: the live read model,
 * forensic timelines and state-at-instant all show this one shape.
 */
import { describeFamilyStatus } from './family-decider';
import type { FamilyState } from './family-state';
import type { RequestContext } from './events';
import { toIso } from './time';

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
  /** RFC 9449: the DPoP key (JWK SHA-256 thumbprint) a bound family's refreshes must prove; absent when unbound. */
  dpopJkt?: string;
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
    ...(state.dpopJkt === undefined ? {} : { dpopJkt: state.dpopJkt }),
  };
}
