import { constants, KeyObject, sign, type webcrypto } from 'node:crypto';
import type { KeyLike } from 'jose';

/** The algorithms the key ring signs with (key-ring.ts supportedAlgs). */
export type CompactJwsAlg = 'ES256' | 'RS256' | 'EdDSA';

/** The key type each algorithm needs (RFC 7518 §3.3/§3.4, RFC 8037): a key of another type is refused, never used. */
const KEY_TYPE: Record<CompactJwsAlg, string> = { ES256: 'ec', RS256: 'rsa', EdDSA: 'ed25519' };

/**
 * A JWS compact serialization (RFC 7515 §7.1) of `payload` under the protected header `{alg, ...header}`, signed on
 * libuv's threadpool (Node's `crypto.sign` with a callback). jose signs on the calling thread, and on
 * the token endpoint that one ES256 signature was ~7 % of the event loop's time, in front of every
 * other request (bench/refresh/README.md). Verification stays with jose; the output is what jose's
 * CompactSign produces for the same header and payload (the key-ring tests verify it with jose).
 */
export function signCompactJws(alg: CompactJwsAlg, key: KeyLike, header: Readonly<Record<string, unknown>>, payload: string): Promise<string> {
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key as webcrypto.CryptoKey);
  if (keyObject.type !== 'private' || keyObject.asymmetricKeyType !== KEY_TYPE[alg] || (alg === 'ES256' && keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1')) {
    return Promise.reject(new TypeError(`a ${alg} signature needs a ${alg === 'ES256' ? 'P-256' : KEY_TYPE[alg]} private key`));
  }
  const input = `${Buffer.from(JSON.stringify({ alg, ...header })).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, signature: Buffer): void => (error ? reject(error) : resolve(`${input}.${signature.toString('base64url')}`));
    const data = Buffer.from(input);
    if (alg === 'ES256') sign('sha256', data, { key: keyObject, dsaEncoding: 'ieee-p1363' }, done);
    else if (alg === 'RS256') sign('sha256', data, { key: keyObject, padding: constants.RSA_PKCS1_PADDING }, done);
    else sign(null, data, keyObject, done);
  });
}
