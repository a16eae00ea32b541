import { randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, SignJWT, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { familyStreamId } from '@token-ledger/envelope';
import { eventually } from './eventually';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

/**
 * DPoP (RFC 9449) at the token endpoint, over real HTTP on a real store, with a real client library
 * (oauth4webapi's DPoP support) as the interoperability test. Run once per store adapter.
 */

/** What oauth4webapi generates and DPoP() takes (WebCrypto; the DOM type is not in our lib set). */
type KeyPair = Parameters<typeof oauth.DPoP>[1];

export interface DpopKey {
  keyPair: KeyPair;
  jwk: JWK;
  jkt: string;
}

export async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const keyPair = await oauth.generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(keyPair.publicKey);
  return { keyPair, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

const publicClient = (clientId: string): oauth.Client => ({ client_id: clientId });

/** A proof built by hand (jose), for what a library would never send: a replay, a stale iat. */
export async function handProof(key: DpopKey, htu: string, claims: Record<string, unknown> = {}, alg = 'ES256'): Promise<string> {
  return new SignJWT({ htm: 'POST', htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: key.jwk } as never)
    .sign(key.keyPair.privateKey);
}

/** oauth4webapi's view of a ledger: discovered metadata, a public client, plain-http allowed (tests). */
export async function discovered(baseUrl: string): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(baseUrl);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** A refresh by oauth4webapi with DPoP, retrying once on use_dpop_nonce as its documentation shows. */
export async function libraryRefresh(as: oauth.AuthorizationServer, clientId: string, refreshToken: string, DPoP: oauth.DPoPHandle): Promise<oauth.TokenEndpointResponse> {
  const client: oauth.Client = { client_id: clientId };
  const attempt = async () =>
    oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken, { DPoP, [oauth.allowInsecureRequests]: true }));
  try {
    return await attempt();
  } catch (error) {
    if (oauth.isDPoPNonceError(error)) return attempt();
    throw error;
  }
}

export function dpopSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let as: oauth.AuthorizationServer;
  let tokenEndpoint: string;
  const introspector = { clientId: 'dpop-rs', secret: `secret-${randomBytes(12).toString('hex')}` };

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind(), env: { LEDGER_ANOMALY_ENGINE: 'off' } });
    api = new LedgerClient(ledger.baseUrl);
    as = await discovered(ledger.baseUrl);
    tokenEndpoint = `${ledger.baseUrl}/oauth/token`;
    await api.registerClient({ clientId: 'spa', type: 'public', reuseGraceSeconds: 30 });
    await api.registerClient({ clientId: 'spa-nograce', type: 'public' });
    await api.registerClient({ ...introspector, introspectAll: true });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  const familyEvents = async (familyId: string) => (await ledger.store.readStream(familyStreamId(familyId))).map((e) => ({ type: e.type, data: e.data as Record<string, unknown> }));
  const introspect = async (token: string) => (await api.form('/oauth/introspect', { token }, introspector)).body;
  const refreshWith = (refreshToken: string, clientId: string, proof?: string) =>
    api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { clientId }, proof === undefined ? {} : { dpop: proof });

  it('publishes dpop_signing_alg_values_supported (RFC 8414, RFC 9449 §5.1)', () => {
    expect(as.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'RS256', 'PS256', 'EdDSA']));
  });

  it.each(['ES256', 'RS256', 'PS256', 'EdDSA'])('oauth4webapi refreshes a family bound to its %s key: token_type DPoP, cnf.jkt in the JWT and in introspection', async (alg) => {
    const key = await dpopKey(alg);
    const issued = await api.issue({ subject: `ann-${alg}`, clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    expect(issued.token_type).toBe('DPoP');
    expect(decodeJwt(issued.access_token).cnf).toEqual({ jkt: key.jkt });
    expect((await familyEvents(issued.family_id))[0]).toMatchObject({ type: 'TokenFamilyIssued', data: { dpopJkt: key.jkt } });

    const DPoP = oauth.DPoP(publicClient('spa'), key.keyPair);
    const first = await libraryRefresh(as, 'spa', issued.refresh_token, DPoP);
    expect(first.token_type).toBe('dpop');
    expect(decodeJwt(first.access_token).cnf).toEqual({ jkt: key.jkt });
    const second = await libraryRefresh(as, 'spa', first.refresh_token!, DPoP);
    expect(second.refresh_token).not.toBe(first.refresh_token);

    expect(await introspect(second.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt }, sub: `ann-${alg}` });
    expect(await introspect(second.refresh_token!)).toMatchObject({ active: true, token_type: 'refresh_token', cnf: { jkt: key.jkt } });
  });

  it('a stolen bound token without the key, or with another, is 400 invalid_dpop_proof: the family stays active, the owner refreshes on', async () => {
    const key = await dpopKey();
    const thief = await dpopKey();
    const issued = await api.issue({ subject: 'bob', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    const plain = await refreshWith(issued.refresh_token, 'spa');
    expect(plain.status).toBe(400);
    expect(plain.body).toEqual({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/DPoP proof/) });
    const otherKey = await refreshWith(issued.refresh_token, 'spa', await handProof(thief, tokenEndpoint));
    expect(otherKey.status).toBe(400);
    expect(otherKey.body.error).toBe('invalid_dpop_proof');
    // Through the library too: a valid proof, for the wrong key.
    await expect(libraryRefresh(as, 'spa', issued.refresh_token, oauth.DPoP(publicClient('spa'), thief.keyPair))).rejects.toMatchObject({ error: 'invalid_dpop_proof' });

    // Recorded as refusals (the first at once, the rest tallied per interval), never as reuse.
    const events = await familyEvents(issued.family_id);
    expect(events[0].type).toBe('TokenFamilyIssued');
    expect(events.length).toBeGreaterThan(1);
    for (const e of events.slice(1)) expect(e).toMatchObject({ type: 'RefreshRejected', data: { reason: 'dpop_key_mismatch' } });
    const owner = await libraryRefresh(as, 'spa', issued.refresh_token, oauth.DPoP(publicClient('spa'), key.keyPair));
    expect(owner.token_type).toBe('dpop');
    // The family view (GET /v1/families/{id}) shows the binding, and the family active at generation 2.
    let view: Record<string, unknown> = {};
    await eventually(async () => {
      view = (await api.admin('GET', `/v1/families/${issued.family_id}`)).body ?? {};
      return view.generation === 2;
    }, 'the family view to show the rotation');
    expect(view).toMatchObject({ status: 'active', dpopJkt: key.jkt });
  });

  it('an old generation with the wrong key is refused, not reuse; the same generation with the right key is reuse, as before', async () => {
    const key = await dpopKey();
    const thief = await dpopKey();
    const issued = await api.issue({ subject: 'carl', clientId: 'spa-nograce', scope: 'api:read', dpopJkt: key.jkt });
    const DPoP = oauth.DPoP(publicClient('spa-nograce'), key.keyPair);
    const rotated = await libraryRefresh(as, 'spa-nograce', issued.refresh_token, DPoP);
    await libraryRefresh(as, 'spa-nograce', rotated.refresh_token!, DPoP); // generation 1 is two behind now

    for (const proof of [undefined, await handProof(thief, tokenEndpoint)]) {
      const res = await refreshWith(issued.refresh_token, 'spa-nograce', proof);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_dpop_proof');
    }
    expect((await familyEvents(issued.family_id)).map((e) => e.type)).not.toContain('TokenFamilyRevoked');

    const reuse = await refreshWith(issued.refresh_token, 'spa-nograce', await handProof(key, tokenEndpoint));
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    expect((await familyEvents(issued.family_id)).map((e) => e.type).slice(-2)).toEqual(['TokenReuseDetected', 'TokenFamilyRevoked']);
  });

  it('a replayed proof is invalid_dpop_proof; so are a stale one, a proof for another URL, and two DPoP headers', async () => {
    const key = await dpopKey();
    const issued = await api.issue({ subject: 'dora', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    const proof = await handProof(key, tokenEndpoint);
    const first = await refreshWith(issued.refresh_token, 'spa', proof);
    expect(first.status).toBe(200);
    const replayed = await refreshWith(first.body.refresh_token, 'spa', proof);
    expect(replayed.status).toBe(400);
    expect(replayed.body).toEqual({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/already been used/) });
    const stale = await refreshWith(first.body.refresh_token, 'spa', await handProof(key, tokenEndpoint, { iat: Math.floor(Date.now() / 1000) - 600 }));
    expect(stale.body.error_description).toMatch(/too old/);
    const elsewhere = await refreshWith(first.body.refresh_token, 'spa', await handProof(key, `${ledger.baseUrl}/oauth/revoke`));
    expect(elsewhere.body.error_description).toMatch(/htu/);
    const two = await refreshWith(first.body.refresh_token, 'spa', `${await handProof(key, tokenEndpoint)}, ${await handProof(key, tokenEndpoint)}`);
    expect(two.status).toBe(400);
    expect(two.body.error_description).toMatch(/exactly one DPoP header/);
    // None of these cost the owner anything.
    expect((await refreshWith(first.body.refresh_token, 'spa', await handProof(key, tokenEndpoint))).status).toBe(200);
  });

  it('many concurrent refreshes of one bound token with distinct proofs: one rotation, the rest grace replays of it, one live head', async () => {
    const key = await dpopKey();
    const issued = await api.issue({ subject: 'erin', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    const N = 24;
    const proofs = await Promise.all(Array.from({ length: N }, () => handProof(key, tokenEndpoint)));
    const answers = await Promise.all(proofs.map((p) => refreshWith(issued.refresh_token, 'spa', p)));
    expect(answers.map((a) => a.status)).toEqual(Array(N).fill(200));
    expect(new Set(answers.map((a) => a.body.refresh_token)).size).toBe(1);
    for (const a of answers) expect(a.body.token_type).toBe('DPoP');
    const types = (await familyEvents(issued.family_id)).map((e) => e.type);
    expect(types.filter((t) => t === 'TokenRotated')).toHaveLength(1);
    expect(types.filter((t) => t === 'TokenRotationReplayed')).toHaveLength(N - 1);
    // Concurrent thieves without the key change nothing either.
    const thief = await dpopKey();
    const stolen = await Promise.all(Array.from({ length: N }, async () => refreshWith(answers[0].body.refresh_token, 'spa', await handProof(thief, tokenEndpoint))));
    expect(stolen.map((a) => a.body.error)).toEqual(Array(N).fill('invalid_dpop_proof'));
    expect((await refreshWith(answers[0].body.refresh_token, 'spa', await handProof(key, tokenEndpoint))).status).toBe(200);
    expect((await familyEvents(issued.family_id)).map((e) => e.type)).not.toContain('TokenFamilyRevoked');
  });

  it('RFC 7009 revocation of a bound refresh token needs a proof for its key: a thief cannot log the user out that way either', async () => {
    const key = await dpopKey();
    const thief = await dpopKey();
    const issued = await api.issue({ subject: 'lou', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    const revokeEndpoint = `${ledger.baseUrl}/oauth/revoke`;
    const revoke = (proof?: string) =>
      oauth.revocationRequest(as, publicClient('spa'), oauth.None(), issued.refresh_token, {
        [oauth.allowInsecureRequests]: true,
        ...(proof === undefined ? {} : { headers: { dpop: proof } }),
      });
    for (const proof of [undefined, await handProof(thief, revokeEndpoint), await handProof(key, tokenEndpoint)]) {
      const res = await revoke(proof);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_dpop_proof');
    }
    expect((await familyEvents(issued.family_id)).map((e) => e.type)).not.toContain('TokenFamilyRevoked');
    const owner = await revoke(await handProof(key, revokeEndpoint));
    expect(owner.status).toBe(200);
    await oauth.processRevocationResponse(owner);
    expect((await familyEvents(issued.family_id)).map((e) => e.type)).toContain('TokenFamilyRevoked');
    // An unbound family's token is revoked as before, without DPoP.
    const unbound = await api.issue({ subject: 'lou', clientId: 'spa', scope: 'api:read' });
    expect((await api.form('/oauth/revoke', { token: unbound.refresh_token }, { clientId: 'spa' })).status).toBe(200);
  });

  it('an unbound family refreshed with a proof gets a DPoP-bound access token; the refresh token stays unbound', async () => {
    const key = await dpopKey();
    const issued = await api.issue({ subject: 'finn', clientId: 'spa', scope: 'api:read' });
    expect(issued.token_type).toBe('Bearer');
    expect(decodeJwt(issued.access_token).cnf).toBeUndefined();
    const bound = await libraryRefresh(as, 'spa', issued.refresh_token, oauth.DPoP(publicClient('spa'), key.keyPair));
    expect(bound.token_type).toBe('dpop');
    expect(decodeJwt(bound.access_token).cnf).toEqual({ jkt: key.jkt });
    const plain = await refreshWith(bound.refresh_token!, 'spa');
    expect(plain.status).toBe(200);
    await eventually(async () => (await api.admin('GET', `/v1/families/${issued.family_id}`)).body?.generation === 3, 'the family view to catch up');
    expect((await api.admin('GET', `/v1/families/${issued.family_id}`)).body).not.toHaveProperty('dpopJkt');
    expect(plain.body.token_type).toBe('Bearer');
    expect(await introspect(plain.body.access_token)).toMatchObject({ active: true, token_type: 'Bearer' });
    expect(await introspect(plain.body.access_token)).not.toHaveProperty('cnf');
  });

  it('requireDpop: a client that requires DPoP gets no unbound family (400 problem); PATCH turns it on and off; dpopJkt is validated', async () => {
    const created = await api.admin('POST', '/v1/clients', { clientId: 'strict-spa', type: 'public', allowedScopes: ['api:read'], requireDpop: true });
    expect(created.status).toBe(201);
    expect(created.body.requireDpop).toBe(true);
    const refused = await api.admin('POST', '/v1/families', { subject: 'gus', clientId: 'strict-spa', scope: 'api:read' });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toMatch(/requires DPoP-bound families/);
    const key = await dpopKey();
    expect((await api.admin('POST', '/v1/families', { subject: 'gus', clientId: 'strict-spa', scope: 'api:read', dpopJkt: key.jkt })).status).toBe(201);
    for (const bad of ['short', `${key.jkt}A`, `${key.jkt.slice(1)}=`, 42]) {
      const res = await api.admin('POST', '/v1/families', { subject: 'gus', clientId: 'strict-spa', scope: 'api:read', dpopJkt: bad });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(/dpopJkt/);
    }
    const off = await api.admin('PATCH', '/v1/clients/strict-spa', { requireDpop: false });
    expect(off.body.requireDpop).toBe(false);
    expect((await api.admin('POST', '/v1/families', { subject: 'gus', clientId: 'strict-spa', scope: 'api:read' })).status).toBe(201);
    expect((await api.admin('PATCH', '/v1/clients/strict-spa', { requireDpop: true })).body.requireDpop).toBe(true);
    expect((await api.admin('POST', '/v1/families', { subject: 'gus', clientId: 'strict-spa', scope: 'api:read' })).status).toBe(400);
    expect((await api.admin('GET', '/v1/clients/strict-spa')).body.requireDpop).toBe(true);
  });

  describe('with server nonces (LEDGER_DPOP_NONCE=required)', () => {
    let nonced: Ledger;
    let nonceApi: LedgerClient;
    beforeAll(async () => {
      nonced = await startLedger({ store: storeKind(), env: { LEDGER_ANOMALY_ENGINE: 'off', LEDGER_DPOP_NONCE: 'required' } });
      nonceApi = new LedgerClient(nonced.baseUrl);
      await nonceApi.registerClient({ clientId: 'spa', type: 'public' });
    });
    afterAll(async () => {
      await nonced?.destroy();
    });

    it('answers use_dpop_nonce with a DPoP-Nonce header; oauth4webapi retries with it and gets a fresh nonce with the tokens', async () => {
      const key = await dpopKey();
      const issued = await nonceApi.issue({ subject: 'hal', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
      const endpoint = `${nonced.baseUrl}/oauth/token`;
      const bare = await nonceApi.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: issued.refresh_token }, { clientId: 'spa' }, { dpop: await handProof(key, endpoint) });
      expect(bare.status).toBe(400);
      expect(bare.body.error).toBe('use_dpop_nonce');
      const nonce = bare.headers.get('dpop-nonce');
      expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const forged = await nonceApi.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: issued.refresh_token }, { clientId: 'spa' }, { dpop: await handProof(key, endpoint, { nonce: 'A'.repeat(43) }) });
      expect(forged.body.error).toBe('use_dpop_nonce');

      const nonceAs = await discovered(nonced.baseUrl);
      const DPoP = oauth.DPoP(publicClient('spa'), key.keyPair);
      const refreshed = await libraryRefresh(nonceAs, 'spa', issued.refresh_token, DPoP); // first try: use_dpop_nonce, then the retry
      expect(refreshed.token_type).toBe('dpop');
      // The library kept the nonce it was given: the next refresh needs no retry.
      const direct = await oauth.refreshTokenGrantRequest(nonceAs, { client_id: 'spa' }, oauth.None(), refreshed.refresh_token!, { DPoP, [oauth.allowInsecureRequests]: true });
      expect(direct.status).toBe(200);
      expect(direct.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // Requests without DPoP are not asked for a nonce.
      const unbound = await nonceApi.issue({ subject: 'hal', clientId: 'spa', scope: 'api:read' });
      expect((await nonceApi.refresh(unbound.refresh_token, { clientId: 'spa' })).status).toBe(200);
    });
  });
}

/**
 * Replay across instances: a proof accepted by A is refused by B, through Redis when it is
 * configured and through the shared PostgreSQL table when it is not. Nonces are required, and A's
 * nonce is good on B (stateless, keyed by the shared master secret).
 */
export function dpopTwoInstancesSuite(url: () => string, redisUrl?: () => string): void {
  let a: Ledger;
  let b: Ledger;
  beforeAll(async () => {
    const env: Record<string, string> = { LEDGER_ANOMALY_ENGINE: 'off', LEDGER_DPOP_NONCE: 'required' };
    if (redisUrl) Object.assign(env, { LEDGER_REDIS_URL: redisUrl(), LEDGER_REDIS_KEY_PREFIX: `tl-dpop-${randomBytes(4).toString('hex')}:` });
    a = await startLedger({ store: { kind: 'postgres', url: url() }, env });
    // B publishes A's issuer, as instances behind one load balancer do: proofs name that one URL.
    b = await startLedger({ store: { kind: 'postgres', url: url() }, schema: a.schema, env: { ...env, LEDGER_ISSUER: a.baseUrl } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.destroy();
  });

  it(`a proof accepted by instance A is refused by instance B (${redisUrl ? 'Redis' : 'the SQL table'}); A's nonce is good on B`, async () => {
    expect(a.runtime.dpopReplay.kind).toBe(redisUrl ? 'redis' : 'sql');
    const apiA = new LedgerClient(a.baseUrl);
    const apiB = new LedgerClient(b.baseUrl);
    const htu = `${a.baseUrl}/oauth/token`;
    await apiA.registerClient({ clientId: 'spa', type: 'public', reuseGraceSeconds: 30 });
    const key = await dpopKey();
    const issued = await apiA.issue({ subject: 'ivy', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
    const refresh = (api: LedgerClient, token: string, proof: string) =>
      api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: token }, { clientId: 'spa' }, { dpop: proof });

    const asked = await refresh(apiA, issued.refresh_token, await handProof(key, htu));
    expect(asked.body.error).toBe('use_dpop_nonce');
    const nonce = asked.headers.get('dpop-nonce')!;
    const proof = await handProof(key, htu, { nonce });
    const onA = await refresh(apiA, issued.refresh_token, proof);
    expect(onA.status).toBe(200);
    const onB = await refresh(apiB, onA.body.refresh_token, proof);
    expect(onB.status).toBe(400);
    expect(onB.body.error_description).toMatch(/already been used/);
    const fresh = await refresh(apiB, onA.body.refresh_token, await handProof(key, htu, { nonce }));
    expect(fresh.status).toBe(200);

    // One proof fired at both instances at once: exactly one request gets through.
    const once = await handProof(key, htu, { nonce });
    const N = 16;
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => refresh(i % 2 === 0 ? apiA : apiB, fresh.body.refresh_token, once)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    expect(answers.filter((r) => r.body.error === 'invalid_dpop_proof')).toHaveLength(N - 1);
  });
}
