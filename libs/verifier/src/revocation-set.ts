/**
 * Revocation record as published on revocations.v1 and the SSE stream (the payload of the signed
 * value, see @token-ledger/messaging): `subjectHash` is a keyed hash, never the subject.
 */
export interface RevocationEntry {
  familyId: string;
  subjectHash?: string;
  reason?: string;
  revokedAt: string;
  accessTokensValidUntil: string;
  jti?: string;
  position?: number;
}

/**
 * The live set a resource server checks tokens against. Family records revoke every access token
 * whose `sid` is that family (family ids are never reused, and no token is minted for a family after
 * its revocation); jti records revoke one token. Entries are dropped once `accessTokensValidUntil`
 * has passed: every token they could reject has expired by then.
 */
export class RevocationSet {
  private readonly families = new Map<string, number>();
  private readonly jtis = new Map<string, number>();
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  add(entry: RevocationEntry): void {
    const until = Date.parse(entry.accessTokensValidUntil);
    if (!Number.isFinite(until) || until <= this.now()) return;
    const map = entry.jti ? this.jtis : this.families;
    const key = entry.jti ?? entry.familyId;
    map.set(key, Math.max(until, map.get(key) ?? 0));
    if (this.now() - this.lastPrune > 60_000) this.prune();
  }

  /** The reason a token is revoked, or undefined. */
  check(claims: { sid?: unknown; jti?: unknown }): 'family_revoked' | 'token_revoked' | undefined {
    const now = this.now();
    if (typeof claims.sid === 'string' && (this.families.get(claims.sid) ?? 0) > now) return 'family_revoked';
    if (typeof claims.jti === 'string' && (this.jtis.get(claims.jti) ?? 0) > now) return 'token_revoked';
    return undefined;
  }

  get size(): number {
    return this.families.size + this.jtis.size;
  }

  prune(): void {
    const now = (this.lastPrune = this.now());
    for (const map of [this.families, this.jtis]) for (const [k, until] of map) if (until <= now) map.delete(k);
  }
}
