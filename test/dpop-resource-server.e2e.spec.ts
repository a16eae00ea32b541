import { Controller, Get, Module, Post, Req, UseGuards, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { request as httpRequest } from 'node:http';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { ACCESS_TOKEN_GUARD_OPTIONS, AccessTokenGuard, TOKEN_VERIFIER, createVerifier, type AccessTokenGuardOptions, type Verifier } from '@token-ledger/verifier';
import { eventually } from './support/eventually';
import { freePort } from './support/free-port';
import { discovered, libraryRefresh } from './support/dpop-suite';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

jest.setTimeout(90_000);

@Controller('orders')
@UseGuards(AccessTokenGuard)
class OrdersController {
  @Get()
  list(@Req() request: { accessToken: { sub: string }; accessTokenJkt?: string }) {
    return { sub: request.accessToken.sub, jkt: request.accessTokenJkt ?? null };
  }

  @Post()
  create(@Req() request: { accessToken: { sub: string } }) {
    return { created: true, sub: request.accessToken.sub };
  }
}

@Module({})
class ResourceServerModule {
  static with(verifier: Verifier, options?: AccessTokenGuardOptions): DynamicModule {
    return {
      module: ResourceServerModule,
      controllers: [OrdersController],
      providers: [{ provide: TOKEN_VERIFIER, useValue: verifier }, ...(options ? [{ provide: ACCESS_TOKEN_GUARD_OPTIONS, useValue: options }] : [])],
    };
  }
}

/** A real NestJS resource server on Fastify, on a free port, guarded by the SDK's AccessTokenGuard. */
async function startResourceServer(verifier: Verifier, options?: AccessTokenGuardOptions): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const app = await NestFactory.create<NestFastifyApplication>(ResourceServerModule.with(verifier, options), new FastifyAdapter(), { logger: false });
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  return { baseUrl: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** What the client library put on the wire, for replaying it by hand. */
type Sent = { url: string; method: string; headers: Record<string, string> };

/** The WWW-Authenticate challenge of a 401 that oauth4webapi raised (it throws on any challenge). */
async function challengeOf(request: Promise<Response>): Promise<{ status: number; scheme: string; error?: string; algs?: string }> {
  try {
    const res = await request;
    throw new Error(`expected a challenge, got ${res.status}`);
  } catch (error) {
    if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
    const [challenge] = error.cause;
    return { status: error.response.status, scheme: challenge.scheme, error: challenge.parameters.error, algs: challenge.parameters.algs };
  }
}

describe('DPoP-protected resource server (RFC 9449 §7) with oauth4webapi as the client', () => {
  let ledger: Ledger;
  let api: LedgerClient;
  let verifier: Verifier;
  let rs: Awaited<ReturnType<typeof startResourceServer>>;
  let family: { family_id: string; access_token: string };
  let keyPair: oauth.CryptoKeyPair;
  let boundToken: string;
  const client: oauth.Client = { client_id: 'dpop-app' };
  const insecure = { [oauth.allowInsecureRequests]: true };

  /** A ledger access token (its claims, signed with the ledger's active key) bound to `jkt` — what the AS side mints for a bound family. */
  const bind = async (accessToken: string, jkt: string) => ledger.runtime.keyRing.signJws('at+jwt', { ...decodeJwt(accessToken), cnf: { jkt } });
  const thumbprint = (pair: oauth.CryptoKeyPair) => oauth.DPoP(client, pair).calculateThumbprint();

  beforeAll(async () => {
    ledger = await startLedger();
    api = new LedgerClient(ledger.baseUrl);
    await api.registerClient({ clientId: 'dpop-app', type: 'public' });
    family = await api.issue({ subject: 'dora', clientId: 'dpop-app', scope: 'api:read' });
    verifier = createVerifier({
      issuer: ledger.baseUrl,
      jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
      revocations: { sse: { url: `${ledger.baseUrl}/v1/revocations/stream`, token: ADMIN_TOKEN } },
      failMode: 'closed',
      maxStalenessMs: 10_000,
    });
    await verifier.ready;
    rs = await startResourceServer(verifier);
    keyPair = await oauth.generateKeyPair('ES256');
    boundToken = await bind(family.access_token, await thumbprint(keyPair));
  });
  afterAll(async () => {
    await rs?.close();
    await verifier?.close();
    await ledger?.destroy();
  });

  it('a bound token with the proof oauth4webapi makes: 200, on GET and POST', async () => {
    const DPoP = oauth.DPoP(client, keyPair);
    const res = await oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders?page=1`), new Headers(), null, { DPoP, ...insecure });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sub: 'dora', jkt: await thumbprint(keyPair) });
    const post = await oauth.protectedResourceRequest(boundToken, 'POST', new URL(`${rs.baseUrl}/orders`), new Headers({ 'content-type': 'application/json' }), '{}', { DPoP, ...insecure });
    expect(post.status).toBe(201);
  });

  it('the same proof again: 401 invalid_dpop_proof (replay); a GET proof on a POST: 401 invalid_dpop_proof (htm)', async () => {
    const sent: Sent[] = [];
    const capture = (url: string, init: RequestInit) => (sent.push({ url, method: String(init.method), headers: init.headers as Record<string, string> }), fetch(url, init));
    const res = await oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, { DPoP: oauth.DPoP(client, keyPair), ...insecure, [oauth.customFetch]: capture });
    expect(res.status).toBe(200);
    const [first] = sent;
    expect(first.headers.authorization).toBe(`DPoP ${boundToken}`);

    const replay = await fetch(first.url, { headers: first.headers });
    expect(replay.status).toBe(401);
    expect(replay.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]*replayed[^"]*", algs="ES256 /);

    // A fresh GET proof (not yet used), sent on a POST.
    sent.length = 0;
    await oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, {
      DPoP: oauth.DPoP(client, keyPair),
      ...insecure,
      [oauth.customFetch]: (url: string, init: RequestInit) => (sent.push({ url, method: 'GET', headers: init.headers as Record<string, string> }), Promise.resolve(new Response('{}'))),
    });
    const asPost = await fetch(sent[0].url, { method: 'POST', headers: sent[0].headers });
    expect(asPost.status).toBe(401);
    expect(asPost.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]*htm/);
  });

  it('a proof by another key: 401 DPoP invalid_token "Invalid DPoP key binding" (RFC 9449 §7.1)', async () => {
    const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const challenge = await challengeOf(oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, { DPoP: other, ...insecure }));
    expect(challenge).toMatchObject({ status: 401, scheme: 'dpop', error: 'invalid_token', algs: expect.stringContaining('ES256') });
  });

  it('the bound token as a bearer token: 401 Bearer invalid_token (RFC 9449 §7.2); an unbound one as Bearer: 200, with DPoP: 401', async () => {
    const asBearer = await challengeOf(oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, insecure));
    expect(asBearer).toMatchObject({ status: 401, scheme: 'bearer', error: 'invalid_token' });

    const unbound = (await api.issue({ subject: 'ulla', clientId: 'dpop-app', scope: 'api:read' })).access_token as string;
    const ok = await oauth.protectedResourceRequest(unbound, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, insecure);
    expect(await ok.json()).toEqual({ sub: 'ulla', jkt: null });
    const asDpop = await challengeOf(oauth.protectedResourceRequest(unbound, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, { DPoP: oauth.DPoP(client, keyPair), ...insecure }));
    expect(asDpop).toMatchObject({ status: 401, scheme: 'dpop', error: 'invalid_token' });
  });

  it('no credentials: 401 with both challenges; two DPoP headers: 401 invalid_dpop_proof', async () => {
    const none = await fetch(`${rs.baseUrl}/orders`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer, DPoP algs="ES256 ES384 PS256 RS256 EdDSA"');

    const proofs: string[] = [];
    for (let i = 0; i < 2; i++) {
      await oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, {
        DPoP: oauth.DPoP(client, keyPair),
        ...insecure,
        [oauth.customFetch]: (_url: string, init: RequestInit) => (proofs.push((init.headers as Record<string, string>).dpop), Promise.resolve(new Response('{}'))),
      });
    }
    // Two header lines (node:http sends an array as such; fetch would join them into one value).
    const twice = await new Promise<{ status?: number; challenge?: string }>((resolve, reject) => {
      const req = httpRequest(`${rs.baseUrl}/orders`, { headers: { authorization: `DPoP ${boundToken}`, dpop: proofs } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode, challenge: res.headers['www-authenticate'] });
      });
      req.on('error', reject).end();
    });
    expect(twice.status).toBe(401);
    expect(twice.challenge).toMatch(/^DPoP error="invalid_dpop_proof", error_description="more than one DPoP header"/);
    // Joined into one value (by fetch, or a proxy): not a JWS either.
    const joined = await fetch(`${rs.baseUrl}/orders`, { headers: { authorization: `DPoP ${boundToken}`, dpop: proofs.join(', ') } });
    expect(joined.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof"/);
  });

  it('many concurrent requests with one proof: exactly one 200, the others 401 invalid_dpop_proof', async () => {
    let captured: Record<string, string> | undefined;
    await oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, {
      DPoP: oauth.DPoP(client, keyPair),
      ...insecure,
      [oauth.customFetch]: (_url: string, init: RequestInit) => ((captured = init.headers as Record<string, string>), Promise.resolve(new Response('{}'))),
    });
    const responses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${rs.baseUrl}/orders`, { headers: captured })));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(39);
    for (const r of responses) if (r.status === 401) expect(r.headers.get('www-authenticate')).toMatch(/invalid_dpop_proof/);
  });

  it('behind a proxy: the proof is for the public URL (publicBaseUrl), not the address the server listens on', async () => {
    const behind = await startResourceServer(verifier, { publicBaseUrl: 'https://API.example.test:443/shop/' });
    try {
      // The client talks to https://api.example.test/shop/orders; the "proxy" (customFetch) forwards to the server without /shop.
      const viaProxy = (url: string, init: RequestInit) => fetch(url.replace('https://api.example.test/shop', behind.baseUrl), init);
      const res = await oauth.protectedResourceRequest(boundToken, 'GET', new URL('https://api.example.test/shop/orders'), new Headers(), null, { DPoP: oauth.DPoP(client, keyPair), [oauth.customFetch]: viaProxy });
      expect(res.status).toBe(200);
      // A proof for the server's own address is refused there: it is not the URL clients use.
      const direct = await challengeOf(oauth.protectedResourceRequest(boundToken, 'GET', new URL(`${behind.baseUrl}/orders`), new Headers(), null, { DPoP: oauth.DPoP(client, keyPair), ...insecure }));
      expect(direct).toMatchObject({ status: 401, scheme: 'dpop', error: 'invalid_dpop_proof' });
    } finally {
      await behind.close();
    }
  });

  it('revoking the family at the ledger: the bound token is rejected over DPoP too (revocation feed)', async () => {
    const revoked = await api.issue({ subject: 'rita', clientId: 'dpop-app', scope: 'api:read' });
    const token = await bind(revoked.access_token, await thumbprint(keyPair));
    const call = () => oauth.protectedResourceRequest(token, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, { DPoP: oauth.DPoP(client, keyPair), ...insecure });
    expect((await call()).status).toBe(200);
    expect((await api.admin('POST', `/v1/families/${revoked.family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    await eventually(async () => {
      try {
        await call();
        return false;
      } catch (error) {
        return error instanceof oauth.WWWAuthenticateChallengeError && error.cause[0].parameters.error === 'invalid_token';
      }
    }, 'the DPoP request of a revoked family is refused');
  });

  it('end to end: a family bound at issue, refreshed at the ledger by oauth4webapi with DPoP, its access token used at the resource server with the same key', async () => {
    const as = await discovered(ledger.baseUrl);
    const key = await oauth.generateKeyPair('ES256');
    const jkt = await thumbprint(key);
    const issued = await api.issue({ subject: 'eve', clientId: 'dpop-app', scope: 'api:read', dpopJkt: jkt });
    const refreshed = await libraryRefresh(as, 'dpop-app', issued.refresh_token, oauth.DPoP(client, key));
    expect(refreshed.token_type).toBe('dpop');
    expect(decodeJwt(refreshed.access_token).cnf).toEqual({ jkt });

    const call = (pair: oauth.CryptoKeyPair) =>
      oauth.protectedResourceRequest(refreshed.access_token, 'GET', new URL(`${rs.baseUrl}/orders`), new Headers(), null, { DPoP: oauth.DPoP(client, pair), ...insecure });
    const ok = await call(key);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ sub: 'eve', jkt });
    // The ledger's token, stolen without its key: useless with another key and as a bearer token.
    expect(await challengeOf(call(await oauth.generateKeyPair('ES256')))).toMatchObject({ status: 401, scheme: 'dpop', error: 'invalid_token' });
    const bearer = await fetch(`${rs.baseUrl}/orders`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  });
});
