/**
 * DPoP (RFC 9449) binding, as far as the domain sees it: a family may be bound to one key, named by
 * its JWK SHA-256 thumbprint (RFC 7638), base64url without padding — always 43 characters. The proof
 * itself (signature, htm, htu, iat, jti, nonce) is checked at the HTTP edge; the decider only compares
 * thumbprints (docs/dpop.md).
 */
export const JWK_THUMBPRINT_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function isJwkThumbprint(value: unknown): value is string {
  return typeof value === 'string' && JWK_THUMBPRINT_PATTERN.test(value);
}

/** A family of a client with requireDpop must be issued bound; null when the issue may go ahead. */
export function dpopRequirementError(client: { requireDpop?: boolean }, dpopJkt: string | undefined): string | null {
  if (client.requireDpop === true && dpopJkt === undefined) {
    return 'this client requires DPoP-bound families (requireDpop): dpopJkt, the JWK SHA-256 thumbprint of the client\'s DPoP key, is required';
  }
  return null;
}
