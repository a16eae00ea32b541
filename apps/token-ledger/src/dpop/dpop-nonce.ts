import { createHmac, timingSafeEqual } from 'node:crypto';

/** A nonce is good for the slot it was made in and the next one: between NONCE_SLOT_SECONDS and twice that. */
export const NONCE_SLOT_SECONDS = 300;

/**
 * Stateless server nonces (RFC 9449 §8): HMAC-SHA256(key, time slot), with the key every instance
 * derives from the shared master secret (LedgerSecrets.dpopNonceKey). Any instance accepts any
 * instance's nonce of the current or the previous slot, with nothing stored or shared at run time.
 * A nonce says nothing but "made by this ledger recently"; replay is the jti cache's business.
 */
export class DpopNonces {
  constructor(
    private readonly key: Buffer,
    private readonly slotSeconds = NONCE_SLOT_SECONDS,
  ) {}

  /** The nonce to hand out at `now` (epoch ms). */
  current(now: number): string {
    return this.forSlot(this.slotOf(now)).toString('base64url');
  }

  /** Whether `nonce` was made in the current or the previous slot; compared in constant time. */
  isValid(nonce: string, now: number): boolean {
    const presented = Buffer.from(nonce, 'base64url');
    if (presented.length !== 32 || presented.toString('base64url') !== nonce) return false;
    const slot = this.slotOf(now);
    // Both compared, no early exit: the answer's timing does not tell which slot matched.
    const current = timingSafeEqual(presented, this.forSlot(slot));
    const previous = timingSafeEqual(presented, this.forSlot(slot - 1));
    return current || previous;
  }

  private slotOf(now: number): number {
    return Math.floor(now / 1000 / this.slotSeconds);
  }

  private forSlot(slot: number): Buffer {
    return createHmac('sha256', this.key).update(`token-ledger/dpop-nonce/${this.slotSeconds}/${slot}`).digest();
  }
}
