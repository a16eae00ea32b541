/**
 * The keyed operations the decider needs, injected so the domain stays free of key management.
 * Both are deterministic functions of the server keys, which is what lets a grace-window replay
 * hand out the *same* successor without any plaintext token being stored.
 */
export interface TokenSecrets {
  /** Keyed hash (e.g. HMAC-SHA-256, base64url) of a generation's secret: the only thing stored. */
  hash(secret: Buffer): string;
  /** The secret of generation `generation`, derived from the previous generation's secret. */
  successor(previous: Buffer, familyId: string, generation: number): Buffer;
}
