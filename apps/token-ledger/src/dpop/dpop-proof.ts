import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { OAuthError } from '../oauth/oauth-error';

/**
 * RFC 9449 §4.3: checks one DPoP proof JWT — everything that can be checked from the proof alone
 * (no replay cache, no nonce; see dpop-checker.ts). Any failure is 400 invalid_dpop_proof with a
 * description saying which check failed; nothing of the proof is echoed.
 */

/**
 * Asymmetric algorithms only (§4.3 item 5: never `none`, never a MAC); published as
 * dpop_signing_alg_values_supported. `Ed25519` is the fully-specified name (RFC 9864) that current
 * clients such as oauth4webapi sign with; `EdDSA` the polymorphic one.
 */
export const DPOP_SIGNING_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519'] as const;
/** What jose 5 verifies itself; Ed25519 (RFC 9864) is not among its names yet. */
const JOSE_ALGS = DPOP_SIGNING_ALGS.filter((a) => a !== 'Ed25519');

/** Proofs are small (an RSA-4096 jwk is about 1 KB): a bigger header is refused before any parsing. */
export const MAX_DPOP_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;
const MAX_NONCE_LENGTH = 256;

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export interface DpopProofExpectations {
  /** The request's method (§4.3 item 8). */
  htm: string;
  /** The endpoint's URL as this server publishes it (LEDGER_ISSUER + path); compared per §4.3 item 9. */
  htu: string;
  /** Epoch ms. */
  now: number;
  /** How old iat may be, and how far in the future (clock skew), in seconds. */
  maxAgeSeconds: number;
  clockSkewSeconds: number;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key (base64url). */
  jkt: string;
  jti: string;
  /** Epoch seconds. */
  iat: number;
  nonce?: string;
}

const invalid = (description: string) => new OAuthError('invalid_dpop_proof', description);

export async function verifyDpopProof(proof: string, expected: DpopProofExpectations): Promise<VerifiedDpopProof> {
  if (proof.length === 0 || proof.length > MAX_DPOP_PROOF_LENGTH || proof.split('.').length !== 3) {
    throw invalid('the DPoP header must hold one JWT in compact serialization');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalid('the DPoP proof is not a well-formed JWT');
  }
  if (header.typ !== 'dpop+jwt') throw invalid('the DPoP proof must have typ "dpop+jwt"');
  if (typeof header.alg !== 'string' || !(DPOP_SIGNING_ALGS as readonly string[]).includes(header.alg)) {
    throw invalid(`the DPoP proof must be signed with one of ${DPOP_SIGNING_ALGS.join(', ')}`);
  }
  const jwk = header.jwk as JWK | undefined;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalid('the DPoP proof must carry its public key in the jwk header');
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw invalid('the jwk header of the DPoP proof must not contain a private or symmetric key');

  let payload: JWTPayload;
  try {
    // EmbeddedJWK imports the header's jwk for the header's alg (a key of another type is refused) and
    // insists on a public key; jwtVerify checks the signature, typ and the algorithm list again.
    payload =
      header.alg === 'Ed25519'
        ? verifyEd25519(proof, jwk, expected.now)
        : (await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: JOSE_ALGS, currentDate: new Date(expected.now) })).payload;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw invalid('the DPoP proof signature does not verify with its jwk');
    if (code === 'ERR_JWT_EXPIRED' || code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') throw invalid('the DPoP proof is expired or not yet valid');
    throw invalid('the DPoP proof\'s jwk is not a usable public key for its alg, or its payload is not a JWT claims set');
  }

  if (payload.htm !== expected.htm) throw invalid(`the DPoP proof's htm must be ${expected.htm}`);
  if (typeof payload.htu !== 'string' || !sameHtu(payload.htu, expected.htu)) throw invalid(`the DPoP proof's htu must be ${expected.htu}`);
  const iat = payload.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('the DPoP proof must have a numeric iat');
  const nowSeconds = expected.now / 1000;
  if (nowSeconds - iat > expected.maxAgeSeconds) throw invalid('the DPoP proof is too old (iat)');
  if (iat - nowSeconds > expected.clockSkewSeconds) throw invalid('the DPoP proof is issued in the future (iat)');
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw invalid(`the DPoP proof must have a jti of 1 to ${MAX_JTI_LENGTH} characters`);
  const nonce = payload.nonce;
  if (nonce !== undefined && (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH)) throw invalid('the DPoP proof has a malformed nonce');

  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  return { jkt, jti, iat, ...(nonce === undefined ? {} : { nonce }) };
}

/**
 * RFC 9864 `Ed25519`, which is exactly EdDSA over an Ed25519 key (RFC 8037): the signature checked
 * with Node's own Ed25519, everything else as jose does it (claims set decoding, exp/nbf).
 */
function verifyEd25519(proof: string, jwk: JWK, now: number): JWTPayload {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error('not an Ed25519 key');
  const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
  const [h, p, s] = proof.split('.');
  if (!verifySignature(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) {
    throw Object.assign(new Error('signature'), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  }
  const payload = decodeJwt(proof);
  const nowSeconds = now / 1000;
  if ((typeof payload.exp === 'number' && payload.exp <= nowSeconds) || (typeof payload.nbf === 'number' && payload.nbf > nowSeconds)) {
    throw Object.assign(new Error('time'), { code: 'ERR_JWT_EXPIRED' });
  }
  return payload;
}

/**
 * §4.3 item 9: the htu matches the request's URI ignoring query and fragment, after the syntax- and
 * scheme-based normalisation of RFC 3986 §6.2.2–6.2.3 (WHATWG URL parsing lower-cases scheme and
 * host, drops the default port, resolves dot segments and gives an empty path as "/").
 */
export function sameHtu(presented: string, expected: string): boolean {
  let a: URL;
  let b: URL;
  try {
    a = new URL(presented);
    b = new URL(expected);
  } catch {
    return false;
  }
  if (a.username !== '' || a.password !== '') return false;
  return a.protocol === b.protocol && a.host === b.host && decodeUnreserved(a.pathname) === decodeUnreserved(b.pathname);
}

/** RFC 3986 §6.2.2.2: percent-encoded unreserved characters are equivalent to the characters. */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
  });
}
