import { request } from 'undici';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

/**
 * What browsers are told (README "Browsers: CORS and security headers"): security headers on every
 * answer, HSTS only behind an https issuer, and CORS only for the token endpoints and the metadata,
 * only for configured origins, never with credentials. Over real HTTP with real Origin headers. A
 * refused preflight finds no route: 404, or 400 invalid_request under /oauth (RFC 6749 shapes).
 */
const APP = 'https://app.example.com';

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

async function call(ledger: Ledger, method: string, route: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  // The real address: the issuer may name a host that does not exist (the https case).
  const res = await request(`http://127.0.0.1:${ledger.runtime.config.port}${route}`, { method: method as 'GET', headers, body });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const preflight = (ledger: Ledger, route: string, origin: string) =>
  call(ledger, 'OPTIONS', route, { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });

const corsHeaders = (a: Answer) => Object.keys(a.headers).filter((h) => h.startsWith('access-control-'));

function expectSecurityHeaders(a: Answer, hsts: boolean): void {
  expect(a.headers).toMatchObject({
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  });
  if (hsts) expect(a.headers['strict-transport-security']).toBe('max-age=31536000');
  else expect(a.headers['strict-transport-security']).toBeUndefined();
}

describe('browser policy: the default (no CORS origin, http issuer)', () => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await startLedger();
  }, 60_000);
  afterAll(() => ledger?.destroy());

  it('sends security headers on every kind of answer, and no HSTS over http', async () => {
    const answers = await Promise.all([
      call(ledger, 'GET', '/healthz'),
      call(ledger, 'GET', '/.well-known/jwks.json'),
      call(ledger, 'POST', '/oauth/token', { 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=refresh_token'),
      call(ledger, 'GET', '/v1/families/nope'),
      call(ledger, 'GET', '/no-such-route'),
      call(ledger, 'POST', '/oauth/token', { 'content-type': 'application/json' }, '{not json'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 401, 401, 404, 400]);
    for (const a of answers) expectSecurityHeaders(a, false);
  });

  it('answers no CORS at all: no preflight, no Access-Control-* header', async () => {
    // No OPTIONS route: not found, which under /oauth is an RFC 6749 invalid_request (400).
    const pre = await preflight(ledger, '/oauth/token', APP);
    expect(pre.status).toBe(400);
    expect(corsHeaders(pre)).toEqual([]);
    const post = await call(ledger, 'POST', '/oauth/token', { origin: APP, 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=refresh_token');
    expect(post.status).toBe(401);
    expect(corsHeaders(post)).toEqual([]);
  });
});

describe('browser policy: LEDGER_CORS_ORIGINS and an https issuer', () => {
  let ledger: Ledger;
  let api: LedgerClient;
  beforeAll(async () => {
    ledger = await startLedger({ env: { LEDGER_CORS_ORIGINS: `${APP}, http://localhost:5173`, LEDGER_ISSUER: 'https://ledger.example.com' } });
    api = new LedgerClient(`http://127.0.0.1:${ledger.runtime.config.port}`);
  }, 60_000);
  afterAll(() => ledger?.destroy());

  it('answers a preflight from an allowed origin for the token and revocation endpoints', async () => {
    for (const route of ['/oauth/token', '/oauth/revoke']) {
      const pre = await preflight(ledger, route, APP);
      expect({ route, status: pre.status }).toEqual({ route, status: 204 });
      expect(pre.headers).toMatchObject({
        'access-control-allow-origin': APP,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'Authorization, Content-Type, X-Device-Id, DPoP',
        'access-control-max-age': '600',
      });
      expect(pre.headers['access-control-allow-credentials']).toBeUndefined();
      expect(String(pre.headers.vary)).toMatch(/origin/i);
      expectSecurityHeaders(pre, true);
    }
    expect((await preflight(ledger, '/oauth/token', 'http://localhost:5173')).headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('lets a browser public client refresh and revoke, and read the errors and Retry-After', async () => {
    await api.registerClient({ clientId: 'spa', type: 'public' });
    const issued = await api.issue({ subject: 'bea', clientId: 'spa', scope: 'api:read' });
    const form = (params: Record<string, string>) => new URLSearchParams({ client_id: 'spa', ...params }).toString();
    const headers = { origin: APP, 'content-type': 'application/x-www-form-urlencoded' };

    const refreshed = await call(ledger, 'POST', '/oauth/token', headers, form({ grant_type: 'refresh_token', refresh_token: issued.refresh_token }));
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers).toMatchObject({ 'access-control-allow-origin': APP, 'access-control-expose-headers': 'Retry-After, WWW-Authenticate, DPoP-Nonce', 'cache-control': 'no-store' });
    expect(refreshed.headers['access-control-allow-credentials']).toBeUndefined();
    expectSecurityHeaders(refreshed, true);

    const reused = await call(ledger, 'POST', '/oauth/token', headers, form({ grant_type: 'refresh_token', refresh_token: issued.refresh_token }));
    expect(reused.status).toBe(400);
    expect(reused.headers['access-control-allow-origin']).toBe(APP);

    const revoked = await call(ledger, 'POST', '/oauth/revoke', headers, form({ token: JSON.parse(refreshed.body).refresh_token }));
    expect(revoked.status).toBe(200);
    expect(revoked.headers['access-control-allow-origin']).toBe(APP);
  });

  it('serves the metadata and keys cross-origin', async () => {
    for (const route of ['/.well-known/oauth-authorization-server', '/.well-known/jwks.json']) {
      const res = await call(ledger, 'GET', route, { origin: APP });
      expect({ route, status: res.status, allow: res.headers['access-control-allow-origin'] }).toEqual({ route, status: 200, allow: APP });
    }
  });

  it('gives another origin, introspection and /v1 no CORS header at all', async () => {
    const evil = await preflight(ledger, '/oauth/token', 'https://evil.example.com');
    expect(evil.status).toBe(400);
    expect(corsHeaders(evil)).toEqual([]);
    const evilPost = await call(ledger, 'POST', '/oauth/token', { origin: 'https://evil.example.com', 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=refresh_token');
    expect(evilPost.status).toBe(401);
    expect(corsHeaders(evilPost)).toEqual([]);
    // A prefix or a suffix of an allowed origin is another origin.
    for (const origin of [`${APP}.evil.example`, 'https://app.example.co', `${APP}:443`, 'null']) {
      expect(corsHeaders(await preflight(ledger, '/oauth/token', origin))).toEqual([]);
    }
    for (const route of ['/oauth/introspect', '/v1/families']) {
      const pre = await preflight(ledger, route, APP);
      expect({ route, status: pre.status, cors: corsHeaders(pre) }).toEqual({ route, status: route.startsWith('/oauth/') ? 400 : 404, cors: [] });
    }
    const admin = await call(ledger, 'GET', '/v1/clients/spa', { origin: APP, authorization: 'Bearer nope-nope-nope-nope' });
    expect(admin.status).toBe(401);
    expect(corsHeaders(admin)).toEqual([]);
  });

  it('sends HSTS on every answer when the issuer is https', async () => {
    for (const route of ['/healthz', '/no-such-route', '/.well-known/jwks.json']) expectSecurityHeaders(await call(ledger, 'GET', route), true);
  });
});
