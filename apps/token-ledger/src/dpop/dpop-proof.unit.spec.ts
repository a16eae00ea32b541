import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { OAuthError } from '../oauth/oauth-error';
import { DpopChecker, dpopHeaderOf } from './dpop-checker';
import { DpopNonces } from './dpop-nonce';
import { DPOP_SIGNING_ALGS, sameHtu, verifyDpopProof, type DpopProofExpectations } from './dpop-proof';
import { MemoryReplayCache, ReplayCacheUnavailableError, type DpopReplayCache } from './dpop-replay-cache';

const HTU = 'https://ledger.example/oauth/token';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const expect_: DpopProofExpectations = { htm: 'POST', htu: HTU, now: NOW, maxAgeSeconds: 60, clockSkewSeconds: 5 };

interface Key {
  alg: string;
  privateKey: KeyLike;
  jwk: JWK;
  jkt: string;
}

async function key(alg = 'ES256', opts: Parameters<typeof generateKeyPair>[1] = {}): Promise<Key> {
  const pair = await generateKeyPair(alg, opts);
  const jwk = await exportJWK(pair.publicKey);
  return { alg, privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

/** A proof as RFC 9449 §4.2 builds it; every part can be overridden to break one check. */
async function proof(
  k: Key,
  over: { header?: Record<string, unknown>; claims?: Record<string, unknown>; drop?: string[]; signWith?: KeyLike } = {},
): Promise<string> {
  const claims: Record<string, unknown> = { htm: 'POST', htu: HTU, iat: Math.floor(NOW / 1000), jti: randomUUID(), ...over.claims };
  for (const name of over.drop ?? []) delete claims[name];
  return new SignJWT(claims).setProtectedHeader({ alg: k.alg, typ: 'dpop+jwt', jwk: k.jwk, ...over.header } as never).sign(over.signWith ?? k.privateKey);
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; description?: string }> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(OAuthError);
    const e = error as OAuthError;
    expect(e.status).toBe(400);
    return { code: e.code, description: e.description };
  }
  throw new Error('expected a refusal');
}

describe('verifyDpopProof (RFC 9449 §4.3)', () => {
  let es256: Key;
  beforeAll(async () => {
    es256 = await key('ES256');
  });

  it.each(['ES256', 'RS256', 'PS256', 'EdDSA'])('accepts a good %s proof and answers its key thumbprint (RFC 7638)', async (alg) => {
    const k = alg === 'ES256' ? es256 : await key(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
    const jti = randomUUID();
    const verified = await verifyDpopProof(await proof(k, { claims: { jti, nonce: 'n-1' } }), expect_);
    expect(verified).toEqual({ jkt: k.jkt, jti, iat: Math.floor(NOW / 1000), nonce: 'n-1' });
  });

  it('accepts Ed25519 (RFC 9864, as oauth4webapi signs) over an Ed25519 key, and refuses it over another key or with a bad signature', async () => {
    const ed = await key('EdDSA', { crv: 'Ed25519' });
    const asEd25519 = { ...ed, alg: 'Ed25519' };
    const signed = async (k: Key, claims: Record<string, unknown> = {}) => {
      // jose 5 has no 'Ed25519' alg name: sign as EdDSA, then put the fully-specified name in the header and sign again by hand.
      const { sign } = await import('node:crypto');
      const h = Buffer.from(JSON.stringify({ alg: 'Ed25519', typ: 'dpop+jwt', jwk: k.jwk })).toString('base64url');
      const p = Buffer.from(JSON.stringify({ htm: 'POST', htu: HTU, iat: Math.floor(NOW / 1000), jti: randomUUID(), ...claims })).toString('base64url');
      const sig = sign(null, Buffer.from(`${h}.${p}`), k.privateKey as never).toString('base64url');
      return `${h}.${p}.${sig}`;
    };
    await expect(verifyDpopProof(await signed(asEd25519), expect_)).resolves.toMatchObject({ jkt: ed.jkt });
    const tampered = (await signed(asEd25519)).replace(/\.[^.]+$/, `.${Buffer.alloc(64).toString('base64url')}`);
    expect((await refusal(verifyDpopProof(tampered, expect_))).description).toMatch(/signature/);
    expect((await refusal(verifyDpopProof(await signed(asEd25519, { exp: Math.floor(NOW / 1000) - 1 }), expect_))).description).toMatch(/expired/);
    const h = Buffer.from(JSON.stringify({ alg: 'Ed25519', typ: 'dpop+jwt', jwk: es256.jwk })).toString('base64url');
    expect((await refusal(verifyDpopProof(`${h}.e30.AAAA`, expect_))).code).toBe('invalid_dpop_proof');
  });

  it('publishes at least ES256, RS256, PS256 and EdDSA, and no symmetric algorithm', () => {
    expect(DPOP_SIGNING_ALGS).toEqual(expect.arrayContaining(['ES256', 'RS256', 'PS256', 'EdDSA']));
    expect(DPOP_SIGNING_ALGS.some((a: string) => a.startsWith('HS') || a === 'none')).toBe(false);
  });

  const cases: [string, (k: Key) => Promise<string>, RegExp][] = [
    ['a wrong typ', (k) => proof(k, { header: { typ: 'JWT' } }), /typ/],
    ['no typ', (k) => proof(k, { header: { typ: undefined } }), /typ/],
    ['a private key in the jwk', async (k) => proof(k, { header: { jwk: { ...(await exportJWK(k.privateKey)) } } }), /private/],
    ['no jwk', (k) => proof(k, { header: { jwk: undefined } }), /jwk/],
    ['a signature by another key', async (k) => proof(k, { signWith: (await key('ES256')).privateKey }), /signature/],
    ['a jwk of another type than the alg', async (k) => proof(k, { header: { jwk: (await key('RS256')).jwk } }), /jwk|signature/],
    ['the wrong htm', (k) => proof(k, { claims: { htm: 'GET' } }), /htm/],
    ['no htm', (k) => proof(k, { drop: ['htm'] }), /htm/],
    ['another host in htu', (k) => proof(k, { claims: { htu: 'https://evil.example/oauth/token' } }), /htu/],
    ['another path in htu', (k) => proof(k, { claims: { htu: 'https://ledger.example/oauth/revoke' } }), /htu/],
    ['another scheme in htu', (k) => proof(k, { claims: { htu: 'http://ledger.example/oauth/token' } }), /htu/],
    ['no htu', (k) => proof(k, { drop: ['htu'] }), /htu/],
    ['an old iat', (k) => proof(k, { claims: { iat: Math.floor(NOW / 1000) - 61 } }), /too old/],
    ['an iat in the future beyond the skew', (k) => proof(k, { claims: { iat: Math.floor(NOW / 1000) + 6 } }), /future/],
    ['no iat', (k) => proof(k, { drop: ['iat'] }), /iat/],
    ['no jti', (k) => proof(k, { drop: ['jti'] }), /jti/],
    ['an empty jti', (k) => proof(k, { claims: { jti: '' } }), /jti/],
    ['a jti that is not a string', (k) => proof(k, { claims: { jti: 42 } }), /jti/],
    ['an expired exp', (k) => proof(k, { claims: { exp: Math.floor(NOW / 1000) - 1 } }), /expired/],
  ];
  it.each(cases)('refuses %s with invalid_dpop_proof', async (_name, make, description) => {
    const r = await refusal(verifyDpopProof(await make(es256), expect_));
    expect(r.code).toBe('invalid_dpop_proof');
    expect(r.description).toMatch(description);
  });

  it('refuses alg none and HS256 (symmetric) proofs', async () => {
    const [h, p] = (await proof(es256)).split('.');
    const header = (obj: object) => Buffer.from(JSON.stringify(obj)).toString('base64url');
    const none = `${header({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), alg: 'none' })}.${p}.`;
    expect((await refusal(verifyDpopProof(none, expect_))).description).toMatch(/signed with one of/);
    const secret = new TextEncoder().encode('x'.repeat(32));
    const hs = await new SignJWT({ htm: 'POST', htu: HTU, iat: Math.floor(NOW / 1000), jti: 'j' })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } } as never)
      .sign(secret);
    expect((await refusal(verifyDpopProof(hs, expect_))).description).toMatch(/signed with one of/);
  });

  it('refuses garbage and oversized headers', async () => {
    for (const bad of ['', 'abc', 'a.b.c', 'x'.repeat(9000)]) expect((await refusal(verifyDpopProof(bad, expect_))).code).toBe('invalid_dpop_proof');
  });

  it('accepts an iat within the window and the skew', async () => {
    for (const iat of [Math.floor(NOW / 1000) - 60, Math.floor(NOW / 1000) + 5]) {
      await expect(verifyDpopProof(await proof(es256, { claims: { iat } }), expect_)).resolves.toMatchObject({ iat });
    }
  });
});

describe('sameHtu (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2–6.2.3)', () => {
  it.each([
    ['https://ledger.example/oauth/token', true],
    ['HTTPS://LEDGER.EXAMPLE/oauth/token', true],
    ['https://ledger.example:443/oauth/token', true],
    ['https://ledger.example/oauth/token?x=1#f', true],
    ['https://ledger.example/oauth/./token', true],
    ['https://ledger.example/%6Fauth/token', true],
    ['https://ledger.example/OAUTH/token', false],
    ['https://ledger.example:8443/oauth/token', false],
    ['https://user@ledger.example/oauth/token', false],
    ['not a url', false],
  ])('%s → %s', (htu, same) => {
    expect(sameHtu(htu, HTU)).toBe(same);
  });
});

describe('DpopNonces (stateless, RFC 9449 §8)', () => {
  const nonces = new DpopNonces(Buffer.alloc(32, 1), 300);
  it('accepts its nonce in the current and the next slot only, and any instance with the same key accepts it', () => {
    const n = nonces.current(NOW);
    expect(new DpopNonces(Buffer.alloc(32, 1), 300).isValid(n, NOW)).toBe(true);
    expect(nonces.isValid(n, NOW + 300_000)).toBe(true);
    expect(nonces.isValid(n, NOW + 600_000)).toBe(false);
    expect(nonces.isValid(n, NOW - 300_000)).toBe(false);
    expect(new DpopNonces(Buffer.alloc(32, 2), 300).isValid(n, NOW)).toBe(false);
    for (const bad of ['', 'x', `${n}A`, n.slice(1)]) expect(nonces.isValid(bad, NOW)).toBe(false);
  });
});

describe('DpopChecker: proof, nonce, then replay', () => {
  const config = { proofMaxAgeSeconds: 60, clockSkewSeconds: 5, nonce: 'off' as const };
  let k: Key;
  beforeAll(async () => {
    k = await key('ES256');
  });
  const checker = (over: Partial<typeof config> | { nonce: 'required' } = {}, replay: DpopReplayCache = new MemoryReplayCache()) =>
    new DpopChecker({ ...config, ...over }, 'https://ledger.example', Buffer.alloc(32, 3), replay);

  it('answers the key thumbprint once; the same proof again is a replay', async () => {
    const c = checker();
    const p = await proof(k);
    expect(await c.check(p, 'POST', NOW)).toBe(k.jkt);
    const again = await refusal(c.check(p, 'POST', NOW + 1000));
    expect(again).toEqual({ code: 'invalid_dpop_proof', description: expect.stringMatching(/already been used/) });
    // Another jti of the same key is fine.
    expect(await c.check(await proof(k), 'POST', NOW)).toBe(k.jkt);
  });

  it('a proof that fails a check takes no slot in the replay cache', async () => {
    const seen: string[] = [];
    const cache: DpopReplayCache = { kind: 'memory', claim: async (jkt, jti) => (seen.push(jti), true), close: async () => undefined };
    await refusal(checker({}, cache).check(await proof(k, { claims: { htm: 'GET' } }), 'POST', NOW));
    expect(seen).toEqual([]);
  });

  it('with nonces required: use_dpop_nonce and a DPoP-Nonce header, then the nonce is accepted; a stale or foreign one is not', async () => {
    const c = checker({ nonce: 'required' });
    let error: unknown;
    try {
      await c.check(await proof(k), 'POST', NOW);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OAuthError);
    const e = error as OAuthError;
    expect(e.toJSON()).toMatchObject({ error: 'use_dpop_nonce' });
    expect(e.status).toBe(400);
    const nonce = e.headers['dpop-nonce'];
    expect(nonce).toBe(c.nonceHeader(NOW));
    expect(await c.check(await proof(k, { claims: { nonce } }), 'POST', NOW)).toBe(k.jkt);
    const stale = await proof(k, { claims: { nonce, iat: Math.floor((NOW + 700_000) / 1000) } });
    expect((await refusal(c.check(stale, 'POST', NOW + 700_000))).code).toBe('use_dpop_nonce');
    const foreign = new DpopNonces(Buffer.alloc(32, 9)).current(NOW);
    expect((await refusal(c.check(await proof(k, { claims: { nonce: foreign } }), 'POST', NOW))).code).toBe('use_dpop_nonce');
    expect(checker().nonceHeader(NOW)).toBeUndefined();
  });

  it('a replay cache that cannot answer is a 503 with Retry-After, never an unchecked proof', async () => {
    const down: DpopReplayCache = {
      kind: 'redis',
      claim: async () => {
        throw new ReplayCacheUnavailableError(new Error('ECONNREFUSED'));
      },
      close: async () => undefined,
    };
    try {
      await checker({}, down).check(await proof(k), 'POST', NOW);
      throw new Error('expected a refusal');
    } catch (error) {
      expect(error).toBeInstanceOf(OAuthError);
      expect((error as OAuthError).status).toBe(503);
      expect((error as OAuthError).code).toBe('temporarily_unavailable');
      expect((error as OAuthError).headers).toEqual({ 'retry-after': '1' });
    }
  });

  it('remembers a jti until the proof could no longer pass the iat check', async () => {
    const cache = new MemoryReplayCache();
    const c = checker({}, cache);
    const p = await proof(k);
    await c.check(p, 'POST', NOW);
    // The proof itself is too old by then; the cache forgets it only after that.
    expect(await cache.claim(k.jkt, 'other', NOW + 1000, NOW)).toBe(true);
    expect((await refusal(c.check(p, 'POST', NOW + 60_000))).description).toMatch(/already been used/);
    expect((await refusal(c.check(p, 'POST', NOW + 61_000))).description).toMatch(/too old/);
  });
});

describe('dpopHeaderOf: exactly one DPoP header (RFC 9449 §4.3 item 1)', () => {
  const request = (rawHeaders: string[]) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i].toLowerCase();
      headers[name] = headers[name] === undefined ? rawHeaders[i + 1] : `${headers[name]}, ${rawHeaders[i + 1]}`;
    }
    return { headers, raw: { rawHeaders } } as never;
  };
  it('answers none, one, or refuses two', () => {
    expect(dpopHeaderOf(request(['Content-Type', 'x']))).toBeUndefined();
    expect(dpopHeaderOf(request(['DPoP', 'a.b.c']))).toBe('a.b.c');
    expect(() => dpopHeaderOf(request(['DPoP', 'a.b.c', 'dpop', 'd.e.f']))).toThrow(/exactly one DPoP header/);
  });
});
