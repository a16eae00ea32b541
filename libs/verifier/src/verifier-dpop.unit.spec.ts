import { generateSecret } from 'jose';
import { dpopKey, dpopProof, testIssuer, unitVerifier, type DpopKey, type TestIssuer } from './testing/dpop-fixtures';
import { InMemoryReplayCache, type DpopReplayCache } from './dpop-replay-cache';
import { VerifyError, type ResourceRequest, type Verifier } from './verifier';

const URL_ = 'https://rs.example/orders';

/** The VerifyError code and scheme of a rejected request (the test fails if it is accepted). */
async function rejection(verifier: Verifier, request: ResourceRequest): Promise<{ code: string; scheme?: string; message: string }> {
  try {
    await verifier.verifyRequest(request);
  } catch (error) {
    if (error instanceof VerifyError) return { code: error.code, scheme: error.scheme, message: error.message };
    throw error;
  }
  throw new Error('the request was accepted');
}

describe('Verifier.verifyRequest: DPoP (RFC 9449 §7) and Bearer', () => {
  let issuer: TestIssuer;
  let verifier: Verifier;
  let key: DpopKey;
  let bound: string;
  let unbound: string;
  const verifiers: Verifier[] = [];
  const make = (...args: Parameters<typeof unitVerifier> extends [unknown, ...infer R] ? R : never) => {
    const v = unitVerifier(issuer, ...args);
    verifiers.push(v);
    return v;
  };
  const dpopRequest = async (input: Parameters<typeof dpopProof>[1] = {}, token = bound, extra: Partial<ResourceRequest> = {}): Promise<ResourceRequest> => ({
    method: 'GET',
    url: URL_,
    authorization: `DPoP ${token}`,
    dpop: await dpopProof(key, { htu: URL_, accessToken: token, ...input }),
    ...extra,
  });

  beforeAll(async () => {
    issuer = await testIssuer();
    key = await dpopKey();
    bound = await issuer.accessToken({ cnf: { jkt: key.jkt } });
    unbound = await issuer.accessToken();
    verifier = make();
  });
  afterAll(async () => {
    await Promise.all(verifiers.map((v) => v.close()));
    await issuer.close();
  });

  describe('accepts', () => {
    it('a bound token with a valid proof: the claims and the jkt', async () => {
      const verified = await verifier.verifyRequest(await dpopRequest());
      expect(verified).toMatchObject({ scheme: 'DPoP', jkt: key.jkt, payload: { sub: 'alice', cnf: { jkt: key.jkt } } });
    });

    it('the scheme in any case, and an htu that differs only by normalisation (case, default port, query)', async () => {
      const token = bound;
      const request = await dpopRequest({ htu: 'HTTPS://RS.EXAMPLE:443/orders' }, token, { authorization: `dpop ${token}`, url: 'https://rs.example/orders?page=2' });
      expect((await verifier.verifyRequest(request)).jkt).toBe(key.jkt);
    });

    it.each(['ES384', 'PS256', 'RS256', 'EdDSA'])('a proof signed with %s (default allow-list)', async (alg) => {
      const other = await dpopKey(alg);
      const token = await issuer.accessToken({ cnf: { jkt: other.jkt } });
      const request = { method: 'POST', url: URL_, authorization: `DPoP ${token}`, dpop: await dpopProof(other, { htm: 'POST', htu: URL_, accessToken: token }) };
      expect((await verifier.verifyRequest(request)).jkt).toBe(other.jkt);
    });

    it('an unbound token as Bearer; verify(token) keeps working for it', async () => {
      expect((await verifier.verifyRequest({ method: 'GET', url: URL_, authorization: `Bearer ${unbound}` })).scheme).toBe('Bearer');
      expect((await verifier.verify(unbound)).payload.sub).toBe('alice');
    });
  });

  describe('rejects the presentation', () => {
    it('no or unparseable Authorization: invalid_request (challenge without error code)', async () => {
      for (const authorization of [undefined, '', 'Basic abc', 'DPoP', 'Bearer a b']) {
        expect((await rejection(verifier, { method: 'GET', url: URL_, authorization })).code).toBe('invalid_request');
      }
    });

    it('a bound token as Bearer (RFC 9449 §7.2), and in verify()', async () => {
      expect(await rejection(verifier, { method: 'GET', url: URL_, authorization: `Bearer ${bound}` })).toMatchObject({ code: 'invalid_token', scheme: 'Bearer' });
      await expect(verifier.verify(bound)).rejects.toMatchObject({ code: 'invalid_token' });
    });

    it('an unbound token with the DPoP scheme, even with a valid proof', async () => {
      expect(await rejection(verifier, await dpopRequest({}, unbound))).toMatchObject({ code: 'invalid_token', scheme: 'DPoP', message: expect.stringContaining('not DPoP-bound') });
    });

    it('a proof key other than the one the token is bound to (RFC 9449 §7.1: invalid_token, "Invalid DPoP key binding")', async () => {
      const other = await dpopKey();
      const request = { method: 'GET', url: URL_, authorization: `DPoP ${bound}`, dpop: await dpopProof(other, { htu: URL_, accessToken: bound }) };
      expect(await rejection(verifier, request)).toMatchObject({ code: 'invalid_token', scheme: 'DPoP', message: 'Invalid DPoP key binding' });
    });

    it('a bad access token with a good proof: invalid_token under DPoP', async () => {
      const tampered = `${bound.slice(0, -4)}AAAA`;
      expect(await rejection(verifier, await dpopRequest({}, tampered))).toMatchObject({ code: 'invalid_token', scheme: 'DPoP' });
    });

    it('a revoked bound token: token_revoked under DPoP', async () => {
      const token = await issuer.accessToken({ cnf: { jkt: key.jkt }, sid: 'fam-revoked' });
      verifier.revocations.add({ familyId: 'fam-revoked', revokedAt: new Date().toISOString(), accessTokensValidUntil: new Date(Date.now() + 600_000).toISOString() });
      expect(await rejection(verifier, await dpopRequest({}, token))).toMatchObject({ code: 'token_revoked', scheme: 'DPoP' });
    });
  });

  describe('rejects the proof: invalid_dpop_proof', () => {
    const bad = async (request: ResourceRequest, message: RegExp) => {
      const r = await rejection(verifier, request);
      expect(r).toMatchObject({ code: 'invalid_dpop_proof', scheme: 'DPoP' });
      expect(r.message).toMatch(message);
    };

    it('no DPoP header, or two', async () => {
      const request = await dpopRequest();
      await bad({ ...request, dpop: undefined }, /missing/);
      await bad({ ...request, dpop: [] }, /missing/);
      await bad({ ...request, dpop: [request.dpop as string, await dpopProof(key, { htu: URL_, accessToken: bound })] }, /more than one/);
      // Two headers joined by a proxy or by Node into one value are not a JWS.
      await bad({ ...request, dpop: `${request.dpop as string}, ${request.dpop as string}` }, /compact JWS/);
    });

    it('typ other than dpop+jwt', async () => {
      await bad(await dpopRequest({ header: { typ: 'JWT' } }), /typ/);
      await bad(await dpopRequest({ header: { typ: undefined } }), /typ/);
    });

    it('alg none, HS256, or an asymmetric alg not on the allow-list', async () => {
      const proof = await dpopProof(key, { htu: URL_, accessToken: bound });
      const [, payload] = proof.split('.');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })).toString('base64url')}.${payload}.`;
      await bad({ ...(await dpopRequest()), dpop: none }, /compact JWS/);
      const noneSigned = `${none}AAAA`;
      await bad({ ...(await dpopRequest()), dpop: noneSigned }, /alg not allowed/);
      const secret = await generateSecret('HS256', { extractable: true });
      await bad(await dpopRequest({ header: { alg: 'HS256' }, signWith: secret }), /alg not allowed/);
      const es256Only = make({ dpop: { algorithms: ['ES256'] } });
      const ps = await dpopKey('PS256');
      const token = await issuer.accessToken({ cnf: { jkt: ps.jkt } });
      const r = await rejection(es256Only, { method: 'GET', url: URL_, authorization: `DPoP ${token}`, dpop: await dpopProof(ps, { htu: URL_, accessToken: token }) });
      expect(r).toMatchObject({ code: 'invalid_dpop_proof', message: expect.stringMatching(/alg not allowed/) });
    });

    it('refuses to be configured with a symmetric or unknown algorithm', () => {
      expect(() => unitVerifier(issuer, { dpop: { algorithms: ['HS256'] } })).toThrow(/asymmetric/);
      expect(() => unitVerifier(issuer, { dpop: { algorithms: ['none'] } })).toThrow(/asymmetric/);
      expect(() => unitVerifier(issuer, { dpop: { algorithms: [] } })).toThrow(/asymmetric/);
    });

    it('no jwk, or a jwk with private members', async () => {
      await bad(await dpopRequest({ header: { jwk: undefined } }), /no jwk/);
      const privateJwk = { ...key.publicJwk, d: 'AAAA' };
      await bad(await dpopRequest({ header: { jwk: privateJwk } }), /public key/);
    });

    it('a signature by another key than the jwk header', async () => {
      const other = await dpopKey();
      await bad(await dpopRequest({ signWith: other.privateKey }), /signature/);
    });

    it('htm other than the method (GET proof on a POST)', async () => {
      await bad({ ...(await dpopRequest({ htm: 'GET' })), method: 'POST' }, /htm/);
      await bad(await dpopRequest({ htm: 'get' }), /htm/);
    });

    it('htu of another resource, host, port or scheme; no htu', async () => {
      for (const htu of ['https://rs.example/other', 'https://evil.example/orders', 'https://rs.example:8443/orders', 'http://rs.example/orders', 'https://rs.example/Orders', '/orders']) {
        await bad(await dpopRequest({ htu }), /htu/);
      }
      await bad(await dpopRequest({ claims: { htu: undefined } }), /htu/);
    });

    it('iat too old, in the future (beyond the tolerance), or missing; accepted just inside the window', async () => {
      const now = Math.floor(Date.now() / 1000);
      await bad(await dpopRequest({ claims: { iat: now - 60 - 5 - 2 } }), /too old/);
      await bad(await dpopRequest({ claims: { iat: now + 5 + 2 } }), /future/);
      await bad(await dpopRequest({ claims: { iat: undefined } }), /iat/);
      await bad(await dpopRequest({ claims: { iat: String(now) } }), /iat/);
      expect((await verifier.verifyRequest(await dpopRequest({ claims: { iat: now - 50 } }))).scheme).toBe('DPoP');
      const short = make({ dpop: { maxAgeSec: 10 } });
      expect((await rejection(short, await dpopRequest({ claims: { iat: now - 30 } }))).message).toMatch(/too old/);
    });

    it('no jti, an empty or an overlong one', async () => {
      await bad(await dpopRequest({ claims: { jti: undefined } }), /jti/);
      await bad(await dpopRequest({ claims: { jti: '' } }), /jti/);
      await bad(await dpopRequest({ claims: { jti: 'x'.repeat(257) } }), /jti/);
    });

    it('no ath, or the hash of another token', async () => {
      await bad(await dpopRequest({ claims: { ath: undefined } }), /ath missing/);
      await bad(await dpopRequest({ accessToken: unbound }), /ath does not match/);
    });

    it('a replayed proof (same jti), even on another URL-equivalent request', async () => {
      const request = await dpopRequest();
      await verifier.verifyRequest(request);
      await bad(request, /replayed/);
    });
  });

  describe('replay cache', () => {
    it('many concurrent requests with one proof: exactly one is accepted', async () => {
      const request = await dpopRequest();
      const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => verifier.verifyRequest(request)));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'invalid_dpop_proof', message: expect.stringMatching(/replayed/) });
    });

    it('a rejected request does not use up its proof; a pluggable cache is consulted once per accepted proof', async () => {
      const used: string[] = [];
      const inner = new InMemoryReplayCache();
      const cache: DpopReplayCache = { use: (k, exp) => (used.push(k), inner.use(k, exp)) };
      const v = make({ dpop: { replayCache: cache } });
      const request = await dpopRequest();
      await rejection(v, { ...request, method: 'POST' });
      expect(used).toHaveLength(0);
      await v.verifyRequest(request);
      expect(used).toHaveLength(1);
    });

    it('an unavailable cache is replay_cache_unavailable (503), not an acceptance', async () => {
      const v = make({ dpop: { replayCache: { use: () => Promise.reject(new Error('down')) } } });
      expect(await rejection(v, await dpopRequest())).toMatchObject({ code: 'replay_cache_unavailable' });
    });
  });
});
