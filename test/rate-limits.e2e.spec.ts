import { randomBytes } from 'node:crypto';
import { describeWithBackend } from './backends';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

/**
 * Rate limits over real HTTP (README "Rate limits"): guessing per source address, floods of /oauth/*
 * per address, /v1 per key; defaults that leave a busy client alone; counters shared through the
 * real Redis on this machine; and a Redis that cannot be reached never failing a request.
 * Source addresses come from X-Forwarded-For, trusted from 127.0.0.1 (LEDGER_TRUST_PROXY).
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TRUST_LOCAL_PROXY = { LEDGER_TRUST_PROXY: '127.0.0.1' };
/** Starting or stopping a ledger takes long on a loaded machine. */
const HOOK_TIMEOUT_MS = 180_000;

type Answer = { status: number; body: any; headers: Headers };

const from = (ip: string) => ({ 'x-forwarded-for': ip });

async function call(ledger: Ledger, method: string, route: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const res = await fetch(`${ledger.baseUrl}${route}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A refresh with Basic client credentials from `ip`. */
function refresh(ledger: Ledger, ip: string, client: { clientId: string; secret: string }, refreshToken: string): Promise<Answer> {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString();
  return call(ledger, 'POST', '/oauth/token', { ...FORM, ...from(ip), authorization: basic(client.clientId, client.secret) }, body);
}

function admin(ledger: Ledger, ip: string, token: string, route = '/v1/clients/nobody'): Promise<Answer> {
  return call(ledger, 'GET', route, { ...from(ip), authorization: `Bearer ${token}` });
}

async function metric(ledger: Ledger, name: string, limiter: string): Promise<number> {
  const text = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
  const match = new RegExp(`^${name}\\{limiter="${limiter}"\\} (\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

function expectOAuth429(answer: Answer, description: RegExp): void {
  expect(answer.status).toBe(429);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.stringMatching(description) });
  expect(answer.headers.get('cache-control')).toBe('no-store');
  expect(answer.headers.get('pragma')).toBe('no-cache');
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600).toBe(true);
}

function expectProblem429(answer: Answer, detail: RegExp): void {
  expect(answer.status).toBe(429);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toEqual({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: expect.stringMatching(detail) });
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600).toBe(true);
}

/** `total` calls of `fn`, at most `width` in flight at once. */
async function inParallel<T>(total: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) {
        const i = next++;
        results[i] = await fn(i);
      }
    }),
  );
  return results;
}

const counts = (answers: Answer[]) => answers.reduce<Record<number, number>>((acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }), {});

describe('rate limits: guessing (failed authentication per source address)', () => {
  let ledger: Ledger;
  let api: LedgerClient;
  let client: { clientId: string; secret: string };

  beforeAll(async () => {
    ledger = await startLedger({ env: { ...TRUST_LOCAL_PROXY, LEDGER_RATE_LIMIT_AUTH_FAILURES: '5/10m' } });
    api = new LedgerClient(ledger.baseUrl);
    client = await api.registerClient({ clientId: 'guessed' });
  }, HOOK_TIMEOUT_MS);
  afterAll(() => ledger?.destroy(), HOOK_TIMEOUT_MS);

  it('failed client authentication: 429 with Retry-After and an RFC 6749 body after 5, even for the right secret; other addresses carry on', async () => {
    const { refresh_token: token } = await api.issue({ subject: 'alice', clientId: client.clientId, scope: 'api:read' });
    const wrong = { ...client, secret: 'not-the-secret' };
    for (let i = 0; i < 5; i++) {
      const answer = await refresh(ledger, '203.0.113.10', wrong, token);
      expect(answer).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    }
    expectOAuth429(await refresh(ledger, '203.0.113.10', client, token), /too many failed authentications/);
    // Revocation and introspection authenticate the same way, and are refused the same way.
    const revoke = await call(ledger, 'POST', '/oauth/revoke', { ...FORM, ...from('203.0.113.10'), authorization: basic(client.clientId, client.secret) }, `token=${token}`);
    expectOAuth429(revoke, /too many failed authentications/);
    // The refused requests did not touch the token: another address rotates it.
    expect(await refresh(ledger, '203.0.113.11', client, token)).toMatchObject({ status: 200, body: { refresh_token: expect.any(String) } });
  });

  it('failed API-key authentication on /v1: 429 problem document after 5, even for the right key; other addresses carry on', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await admin(ledger, '198.51.100.20', `guess-${i}-${randomBytes(8).toString('hex')}`)).toMatchObject({ status: 401, body: { title: 'Unauthorized' } });
    }
    expectProblem429(await admin(ledger, '198.51.100.20', ADMIN_TOKEN), /too many failed authentications/);
    expectProblem429(await admin(ledger, '198.51.100.20', 'another-guess'), /too many failed authentications/);
    expect((await admin(ledger, '198.51.100.21', ADMIN_TOKEN)).status).toBe(404);
  });

  it('a concurrent burst of guesses from one address ends in 429 for everything from it', async () => {
    const burst = await Promise.all(
      Array.from({ length: 60 }, (_, i) => refresh(ledger, '192.0.2.30', { clientId: client.clientId, secret: `guess-${i}` }, 'tlr_whatever')),
    );
    const statuses = counts(burst);
    expect(Object.keys(statuses).sort()).toEqual(expect.arrayContaining(['401']));
    expect((statuses[401] ?? 0) + (statuses[429] ?? 0)).toBe(60);
    expect(statuses[401]).toBeGreaterThanOrEqual(5);
    const after = await Promise.all(Array.from({ length: 20 }, () => admin(ledger, '192.0.2.30', ADMIN_TOKEN)));
    expect(counts(after)).toEqual({ 429: 20 });
    expect(await metric(ledger, 'token_ledger_rate_limited_total', 'auth_failures')).toBeGreaterThanOrEqual(20 + 3);
  });

  it('IPv6 guessers count per /64', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await admin(ledger, `2001:db8:77:1::${i + 1}`, 'wrong-key-guess')).status).toBe(401);
    }
    expectProblem429(await admin(ledger, '2001:db8:77:1:ffff::9', ADMIN_TOKEN), /too many failed/);
    expect((await admin(ledger, '2001:db8:77:2::1', ADMIN_TOKEN)).status).toBe(404);
  });
});

describe('rate limits: floods of /oauth/* per address and /v1 per key', () => {
  let ledger: Ledger;

  beforeAll(async () => {
    ledger = await startLedger({ env: { ...TRUST_LOCAL_PROXY, LEDGER_RATE_LIMIT_OAUTH: '20/10m', LEDGER_RATE_LIMIT_V1: '10/10m' } });
  }, HOOK_TIMEOUT_MS);
  afterAll(() => ledger?.destroy(), HOOK_TIMEOUT_MS);

  it('/oauth/*: exactly 20 of 50 concurrent requests from one address get through; the rest 429 with an RFC 6749 body', async () => {
    // No client credentials: each answer that gets through is a 401 (its 20 failures stay under the default 30/1m).
    const post = (ip: string) => call(ledger, 'POST', '/oauth/introspect', { ...FORM, ...from(ip) }, 'token=x');
    const burst = await Promise.all(Array.from({ length: 50 }, () => post('203.0.113.40')));
    expect(counts(burst)).toEqual({ 401: 20, 429: 30 });
    expectOAuth429(burst.find((a) => a.status === 429)!, /too many requests from this address/);
    expect((await post('203.0.113.41')).status).toBe(401);
    // Only /oauth/* is guarded by address: the rest of the API still answers this address.
    expect((await call(ledger, 'GET', '/.well-known/jwks.json', from('203.0.113.40'))).status).toBe(200);
    expect(await metric(ledger, 'token_ledger_rate_limited_total', 'oauth')).toBe(30);
  });

  it('/v1: exactly 10 of 30 concurrent requests with one key get through, whatever the address; the rest get a problem document', async () => {
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => admin(ledger, `198.51.100.${i + 1}`, ADMIN_TOKEN)));
    expect(counts(burst)).toEqual({ 404: 10, 429: 20 });
    expectProblem429(burst.find((a) => a.status === 429)!, /too many requests for this API key/);
    expect(await metric(ledger, 'token_ledger_rate_limited_total', 'v1')).toBe(20);
  });
});

describe('rate limits: the defaults leave a busy client alone', () => {
  let ledger: Ledger;
  afterAll(() => ledger?.destroy(), HOOK_TIMEOUT_MS);

  it('1,200 requests 100 at a time from one client at one address, refreshes for many users, and a burst of /v1 calls: no 429', async () => {
    ledger = await startLedger();
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'busy-backend', reuseGraceSeconds: 0 });
    const families = await Promise.all(Array.from({ length: 16 }, (_, i) => api.issue({ subject: `user-${i}`, clientId: client.clientId, scope: 'api:read' })));
    // A burst through the same gates as a refresh (flood limit, then client authentication), as fast as the server answers.
    const burst = await inParallel(1200, 100, (i) => api.form('/oauth/introspect', { token: families[i % families.length].access_token }, client));
    expect(counts(burst)).toEqual({ 200: 1200 });
    expect(burst.every((a) => a.body.active === true)).toBe(true);
    // Refreshes for 16 users, 16 at a time, each continuing with the token it got back.
    const statuses: number[] = [];
    await Promise.all(
      families.map(async (family) => {
        let token: string = family.refresh_token;
        for (let i = 0; i < 8; i++) {
          const answer = await api.refresh(token, client);
          statuses.push(answer.status);
          if (answer.status !== 200) return;
          token = answer.body.refresh_token;
        }
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(128);
    const v1 = await inParallel(300, 100, () => api.admin('GET', `/v1/clients/${client.clientId}`));
    expect(counts(v1 as Answer[])).toEqual({ 200: 300 });
    for (const limiter of ['auth_failures', 'oauth', 'v1']) expect(await metric(ledger, 'token_ledger_rate_limited_total', limiter)).toBe(0);
  }, 180_000);
});

describe('rate limits: Redis unreachable', () => {
  let ledger: Ledger;
  afterAll(() => ledger?.destroy(), HOOK_TIMEOUT_MS);

  it('serves every request (no 500), counts the store errors, and still limits guessing on this instance', async () => {
    ledger = await startLedger({ env: { ...TRUST_LOCAL_PROXY, LEDGER_REDIS_URL: 'redis://127.0.0.1:1', LEDGER_RATE_LIMIT_AUTH_FAILURES: '3/10m' } });
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'no-redis' });
    const { refresh_token: token } = await api.issue({ subject: 'bob', clientId: client.clientId, scope: 'api:read' });
    const rotated = await refresh(ledger, '203.0.113.50', client, token);
    expect(rotated.status).toBe(200);
    const many = await Promise.all(Array.from({ length: 50 }, () => admin(ledger, '203.0.113.51', ADMIN_TOKEN)));
    expect(counts(many)).toEqual({ 404: 50 });
    for (let i = 0; i < 3; i++) expect((await admin(ledger, '203.0.113.52', 'wrong-key-guess')).status).toBe(401);
    expectProblem429(await admin(ledger, '203.0.113.52', ADMIN_TOKEN), /too many failed/);
    expect(await metric(ledger, 'token_ledger_rate_limit_store_errors_total', 'oauth')).toBeGreaterThan(0);
    expect(await metric(ledger, 'token_ledger_rate_limit_store_errors_total', 'v1')).toBeGreaterThan(0);
    expect(await metric(ledger, 'token_ledger_rate_limit_store_errors_total', 'auth_failures')).toBeGreaterThan(0);
    expect(ledger.logs.join('')).toMatch(/Redis unavailable, counting on this instance only/);
  }, 180_000);
});

// Several instances of one deployment share the store (and so the secret that names key counters) and Redis.
describeWithBackend('postgres', 'rate limits: two instances share counters through Redis', (databaseUrl) => {
  let a: Ledger;
  let b: Ledger;
  const prefix = `tl-test-${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    const env = { ...TRUST_LOCAL_PROXY, LEDGER_REDIS_URL: REDIS_URL, LEDGER_REDIS_KEY_PREFIX: prefix, LEDGER_RATE_LIMIT_AUTH_FAILURES: '5/10m', LEDGER_RATE_LIMIT_V1: '10/10m', LEDGER_RATE_LIMIT_OAUTH: '40/10m' };
    a = await startLedger({ store: { kind: 'postgres', url: databaseUrl }, env });
    b = await startLedger({ store: { kind: 'postgres', url: databaseUrl }, schema: a.schema, env });
  }, HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await b?.stop();
    await a?.destroy();
  }, HOOK_TIMEOUT_MS);

  it('failures on instance A count on instance B, and the other way round', async () => {
    for (let i = 0; i < 3; i++) expect((await admin(a, '203.0.113.60', 'wrong-key-guess')).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await call(b, 'POST', '/oauth/introspect', { ...FORM, ...from('203.0.113.60'), authorization: basic('nobody', 'guess') }, 'token=x')).status).toBe(401);
    expectProblem429(await admin(a, '203.0.113.60', ADMIN_TOKEN), /too many failed/);
    expectProblem429(await admin(b, '203.0.113.60', ADMIN_TOKEN), /too many failed/);
    expectOAuth429(await call(a, 'POST', '/oauth/introspect', { ...FORM, ...from('203.0.113.60') }, 'token=x'), /too many failed/);
    expect((await admin(b, '203.0.113.61', ADMIN_TOKEN)).status).toBe(404);
    expect(await metric(a, 'token_ledger_rate_limit_store_errors_total', 'auth_failures')).toBe(0);
  });

  it('the /oauth flood limit and the /v1 key limit hold across both instances under concurrency', async () => {
    const post = (ledger: Ledger) => call(ledger, 'POST', '/oauth/token', { ...FORM, ...from('203.0.113.70') }, 'grant_type=password');
    const oauth = await Promise.all(Array.from({ length: 60 }, (_, i) => post(i % 2 ? a : b)));
    expect(counts(oauth)).toEqual({ 400: 40, 429: 20 });
    // One /v1 call was made above (the 404 on B from .61): 9 of this key's 10 remain, shared by A and B.
    const v1 = await Promise.all(Array.from({ length: 30 }, (_, i) => admin(i % 2 ? a : b, `198.51.100.${i + 100}`, ADMIN_TOKEN)));
    expect(counts(v1)).toEqual({ 404: 9, 429: 21 });
  });
});
