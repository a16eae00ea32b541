import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { signCompactJws, type CompactJwsAlg } from './compact-jws';

const KEYS = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  EdDSA: generateKeyPairSync('ed25519'),
};

describe('signCompactJws', () => {
  it.each(Object.keys(KEYS) as CompactJwsAlg[])('%s: a compact JWS that jose verifies, header {alg, ...header}, payload byte for byte', async (alg) => {
    const payload = JSON.stringify({ sub: 'user-1', n: 1, text: 'äö ✓' });
    const jws = await signCompactJws(alg, KEYS[alg].privateKey, { kid: 'k1', typ: 'at+jwt' }, payload);
    expect(jws.split('.')[0]).toBe(Buffer.from(JSON.stringify({ alg, kid: 'k1', typ: 'at+jwt' })).toString('base64url'));
    expect(decodeProtectedHeader(jws)).toEqual({ alg, kid: 'k1', typ: 'at+jwt' });
    const verified = await compactVerify(jws, KEYS[alg].publicKey, { algorithms: [alg] });
    expect(Buffer.from(verified.payload).toString()).toBe(payload);
  });

  it('ES256 signatures are the 64-byte r || s of RFC 7518 §3.4, not DER', async () => {
    const jws = await signCompactJws('ES256', KEYS.ES256.privateKey, { kid: 'k1' }, '{}');
    expect(Buffer.from(jws.split('.')[2], 'base64url')).toHaveLength(64);
  });

  it('refuses a key that does not fit the algorithm (rejects; never signs with it)', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await expect(signCompactJws('ES256', KEYS.EdDSA.privateKey, {}, '{}')).rejects.toThrow(/P-256 private key/);
    await expect(signCompactJws('ES256', p384.privateKey, {}, '{}')).rejects.toThrow(/P-256 private key/);
    await expect(signCompactJws('RS256', KEYS.ES256.privateKey, {}, '{}')).rejects.toThrow(/rsa private key/);
    await expect(signCompactJws('EdDSA', KEYS.RS256.privateKey, {}, '{}')).rejects.toThrow(/ed25519 private key/);
    await expect(signCompactJws('ES256', KEYS.ES256.publicKey, {}, '{}')).rejects.toThrow(/P-256 private key/);
  });

  it('signs many at once (the signing thread answers each one its own signature)', async () => {
    const payloads = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i }));
    const signed = await Promise.all(payloads.map((p) => signCompactJws('ES256', KEYS.ES256.privateKey, { kid: 'k1' }, p)));
    const verified = await Promise.all(signed.map((jws) => compactVerify(jws, KEYS.ES256.publicKey)));
    expect(verified.map((v) => Buffer.from(v.payload).toString())).toEqual(payloads);
  });
});
