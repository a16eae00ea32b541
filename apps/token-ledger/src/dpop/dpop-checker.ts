import type { FastifyRequest } from 'fastify';
import type { DpopConfig } from '../config/ledger-config';
import { OAuthError } from '../oauth/oauth-error';
import { DpopNonces } from './dpop-nonce';
import { verifyDpopProof } from './dpop-proof';
import { ReplayCacheUnavailableError, type DpopReplayCache } from './dpop-replay-cache';

/**
 * The DPoP proof of a token request, end to end (docs/dpop.md): the proof itself (dpop-proof.ts),
 * the server nonce when required (dpop-nonce.ts), then the replay cache — last, so a proof that
 * fails anything else never takes a slot. Answers the proof's key thumbprint; the decider compares
 * it with the family's binding.
 */
export class DpopChecker {
  readonly nonces: DpopNonces | undefined;

  constructor(
    private readonly config: DpopConfig,
    /** LEDGER_ISSUER: htu must name the endpoint as published, issuer + path (not the Host header). */
    private readonly issuer: string,
    nonceKey: Buffer,
    private readonly replay: DpopReplayCache,
  ) {
    this.nonces = config.nonce === 'required' ? new DpopNonces(nonceKey) : undefined;
  }

  /** `path`: the endpoint the proof is for (/oauth/token, or /oauth/revoke for a bound family's refresh token). */
  async check(proof: string, htm: string, now: number, path = '/oauth/token'): Promise<string> {
    const verified = await verifyDpopProof(proof, {
      htm,
      htu: `${this.issuer}${path}`,
      now,
      maxAgeSeconds: this.config.proofMaxAgeSeconds,
      clockSkewSeconds: this.config.clockSkewSeconds,
    });
    if (this.nonces && (verified.nonce === undefined || !this.nonces.isValid(verified.nonce, now))) {
      // RFC 9449 §8: the client retries with the nonce it is given (a new proof, so a new jti).
      throw new OAuthError('use_dpop_nonce', 'Authorization server requires nonce in DPoP proof', undefined, { 'dpop-nonce': this.nonces.current(now) });
    }
    // Remembered for as long as the proof could pass the iat check above, rounded up to the second.
    const expiresAt = (verified.iat + this.config.proofMaxAgeSeconds + 1) * 1000;
    let fresh: boolean;
    try {
      fresh = await this.replay.claim(verified.jkt, verified.jti, Math.max(expiresAt, now + 1000), now);
    } catch (error) {
      if (!(error instanceof ReplayCacheUnavailableError)) throw error;
      throw new OAuthError('temporarily_unavailable', 'DPoP proofs cannot be checked for replay right now; try again', undefined, { 'retry-after': '1' });
    }
    if (!fresh) throw new OAuthError('invalid_dpop_proof', 'the DPoP proof has already been used (jti)');
    return verified.jkt;
  }

  /** The DPoP-Nonce header a successful answer carries when nonces are on. */
  nonceHeader(now: number): string | undefined {
    return this.nonces?.current(now);
  }
}

/**
 * The request's DPoP header, or undefined. RFC 9449 §4.3 item 1: exactly one. Node joins repeated
 * headers with ", ", which a JWT never contains, and the raw header list tells for sure.
 */
export function dpopHeaderOf(request: FastifyRequest): string | undefined {
  const value = request.headers.dpop;
  if (value === undefined) return undefined;
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'dpop') count++;
  if (count !== 1 || typeof value !== 'string' || value.includes(',')) throw new OAuthError('invalid_dpop_proof', 'exactly one DPoP header is allowed');
  return value.trim();
}
