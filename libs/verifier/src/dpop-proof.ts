import { createHash, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import { normaliseHtu } from './htu';

/** Asymmetric JWS algorithms a DPoP proof may use (RFC 9449 §4.2: never `none` or a MAC). */
export const DPOP_ASYMMETRIC_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA'] as const;
export type DpopAlg = (typeof DPOP_ASYMMETRIC_ALGS)[number];
/** Default allow-list: what oauth4webapi, browsers' WebCrypto and the ledger's own keys use. */
export const DEFAULT_DPOP_ALGS: readonly DpopAlg[] = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'];

/** Members only a private or symmetric JWK has (RFC 7518 §6); a proof's `jwk` must have none. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** jti is random (RFC 9449 §4.2 suggests 96 bits): a longer one only costs cache memory. */
const MAX_JTI_LENGTH = 256;

export class DpopProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DpopProofError';
  }
}

export interface DpopProofCheck {
  /** The request's HTTP method and the URL the client used (query and fragment are ignored). */
  method: string;
  url: string;
  /** The access token presented with the proof: `ath` must be its SHA-256. */
  accessToken: string;
  algorithms: readonly string[];
  /** A proof is accepted from iat − toleranceSec until iat + maxAgeSec + toleranceSec. */
  maxAgeSec: number;
  toleranceSec: number;
  nowMs: number;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key (base64url). */
  jkt: string;
  jti: string;
  iat: number;
  /** Epoch ms after which the proof is too old anyway: how long the replay cache must remember it. */
  expiresAtMs: number;
}

/** base64url(SHA-256(access token)): the `ath` claim (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/**
 * Checks one DPoP proof JWT against a resource request (RFC 9449 §4.3 with §7.1's `ath`): everything
 * but replay, which needs state (DpopReplayCache), and the key binding, which needs the access token.
 * Throws DpopProofError (→ `invalid_dpop_proof`) with a reason safe to return to the client.
 */
export async function verifyDpopProof(proof: string, check: DpopProofCheck): Promise<VerifiedDpopProof> {
  if (!COMPACT_JWS.test(proof)) throw new DpopProofError('DPoP proof is not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new DpopProofError('DPoP proof header is malformed');
  }
  if (header.typ !== 'dpop+jwt') throw new DpopProofError('DPoP proof typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !check.algorithms.includes(header.alg)) throw new DpopProofError(`DPoP proof alg not allowed (${check.algorithms.join(' ')})`);
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw new DpopProofError('DPoP proof has no jwk header');
  if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) throw new DpopProofError('DPoP proof jwk must be a public key');

  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...check.algorithms] }));
  } catch (error) {
    if (error instanceof joseErrors.JWTClaimValidationFailed) throw new DpopProofError(`DPoP proof ${error.claim} claim invalid`);
    const reason = error instanceof joseErrors.JOSEError ? error.code : 'invalid';
    throw new DpopProofError(`DPoP proof signature or key invalid (${reason})`);
  }

  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw new DpopProofError('DPoP proof jti missing or invalid');
  if (typeof htm !== 'string' || htm !== check.method) throw new DpopProofError('DPoP proof htm does not match the request method');
  const expectedHtu = normaliseHtu(check.url);
  if (expectedHtu === undefined) throw new Error(`request URL is not an absolute http(s) URL: ${check.url}`);
  if (typeof htu !== 'string' || normaliseHtu(htu) !== expectedHtu) throw new DpopProofError('DPoP proof htu does not match the request URL');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new DpopProofError('DPoP proof iat missing');
  const nowSec = check.nowMs / 1000;
  if (iat > nowSec + check.toleranceSec) throw new DpopProofError('DPoP proof iat is in the future');
  if (iat < nowSec - check.maxAgeSec - check.toleranceSec) throw new DpopProofError('DPoP proof is too old (iat)');
  if (typeof ath !== 'string') throw new DpopProofError('DPoP proof ath missing');
  const expectedAth = Buffer.from(accessTokenHash(check.accessToken));
  const givenAth = Buffer.from(ath);
  if (givenAth.length !== expectedAth.length || !timingSafeEqual(givenAth, expectedAth)) throw new DpopProofError('DPoP proof ath does not match the access token');

  return { jkt: await calculateJwkThumbprint(jwk, 'sha256'), jti, iat, expiresAtMs: (iat + check.maxAgeSec + check.toleranceSec) * 1000 };
}
