import { constants, type KeyObject, type SignKeyObjectInput } from 'node:crypto';

/** The algorithms the key ring signs with (key-ring.ts supportedAlgs). */
export type CompactJwsAlg = 'ES256' | 'RS256' | 'EdDSA';

/** What `crypto.sign` takes for `alg`: the digest, and the key with its options (ES256: r || s, RFC 7518 §3.4). */
export function signatureOptions(alg: CompactJwsAlg, key: KeyObject): [string | null, SignKeyObjectInput] {
  if (alg === 'ES256') return ['sha256', { key, dsaEncoding: 'ieee-p1363' }];
  if (alg === 'RS256') return ['sha256', { key, padding: constants.RSA_PKCS1_PADDING }];
  return [null, { key }];
}
