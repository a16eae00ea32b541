import type { FamilyPolicy, RequestContext, RevocationReason } from './events';

/**
 * Everything the decider needs about one family, small enough to be snapshotted on every append.
 * Times are epoch milliseconds. Kept JSON-serialisable (it is the store snapshot).
 */
export interface FamilyState {
  /** Bumped whenever the shape changes; a snapshot of another version is ignored and the stream replayed. */
  v: 1;
  status: 'none' | 'active' | 'revoked' | 'expired';
  familyId: string;
  subject: string;
  clientId: string;
  scope: string[];
  audience: string[];
  policy: FamilyPolicy;
  createdAt: number;
  /** Live head generation (0 when none was issued). */
  generation: number;
  headHash: string;
  /** Hash of generation - 1 and when it was rotated (= when the head was created). */
  previousHash: string | null;
  rotatedAt: number | null;
  /**
   * Hashes of generations 1, 1+A, 1+2A, … (A = ANCHOR_INTERVAL): presented secrets of older
   * generations are authenticated by deriving forward to the next anchor, in at most A steps.
   */
  anchors: string[];
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  lastUsedAt: number;
  lastContext?: RequestContext;
  /** RFC 9449: the DPoP key (JWK thumbprint) every refresh must prove; absent = unbound (and in older snapshots). */
  dpopJkt?: string;
  /**
   * When the last RefreshRejected was recorded: refusals within REJECTION_RECORD_INTERVAL_MS of it
   * are tallied, not appended one by one (absent in snapshots taken before it existed: none yet).
   */
  lastRejectedAt?: number;
  revokedAt: number | null;
  revokedReason: RevocationReason | null;
  expiredReason: 'idle' | 'absolute' | null;
  /** Individually revoked access tokens still within their lifetime: jti -> exp (ms). */
  revokedJtis: Record<string, number>;
}
