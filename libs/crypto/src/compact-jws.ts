import { KeyObject, type webcrypto } from 'node:crypto';
import type { KeyLike } from 'jose';
import { SignThread } from './sign-thread';
import type { CompactJwsAlg } from './signature-options';

export type { CompactJwsAlg } from './signature-options';

/** The key type each algorithm needs (RFC 7518 §3.3/§3.4, RFC 8037): a key of another type is refused, never used. */
const KEY_TYPE: Record<CompactJwsAlg, string> = { ES256: 'ec', RS256: 'rsa', EdDSA: 'ed25519' };

let signer: SignThread | undefined;

/**
 * A JWS compact serialization (RFC 7515 §7.1) of `payload` under the protected header `{alg, ...header}`, signed off
 * the event loop in the signing thread (sign-thread.ts). jose signs on the calling thread, and on
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
  signer ??= new SignThread();
  return signer.sign(alg, keyObject, input).then((signature) => `${input}.${signature}`);
}
