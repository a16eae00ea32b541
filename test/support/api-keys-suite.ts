import { randomBytes } from 'node:crypto';
import { formatApiKey, parseApiKey, API_KEY_PATTERN } from '@token-ledger/domain';
import { apiKeyStreamId } from '@token-ledger/envelope';
import { readSse } from '@token-ledger/verifier';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

type Answer = { status: number; body: any; headers: Headers };

/** One HTTP call to /v1 with a bearer of the caller's choice. */
export async function call(baseUrl: string, bearer: string | undefined, method: string, route: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export async function createKey(baseUrl: string, input: Record<string, unknown>, bearer = ADMIN_TOKEN): Promise<{ keyId: string; key: string; position: number; body: any }> {
  const res = await call(baseUrl, bearer, 'POST', '/v1/api-keys', input);
  if (res.status !== 201) throw new Error(`create API key: ${res.status} ${JSON.stringify(res.body)}`);
  return { keyId: res.body.keyId, key: res.body.key, position: Number(res.headers.get('x-event-position')), body: res.body };
}

/**
 * Scoped API keys (SPEC §3, §9) over real HTTP on a real store: create → use → 403 naming the
 * missing scope → revoke → 401, expiry, the key shown once, the actor on events, and concurrency.
 */
export function apiKeysSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let base: string;
  const createdKeys: string[] = [];
  const remember = <T extends { key: string }>(k: T): T => {
    createdKeys.push(k.key);
    return k;
  };

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind() });
    api = new LedgerClient(ledger.baseUrl);
    base = ledger.baseUrl;
    await api.registerClient({ clientId: 'keys-app' });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  async function auditOf(query: string, minPosition?: number): Promise<any[]> {
    const res = await call(base, ADMIN_TOKEN, 'GET', `/v1/audit?${query}&order=asc${minPosition === undefined ? '' : `&minPosition=${minPosition}`}`);
    expect(res.status).toBe(200);
    return res.body.items;
  }

  it('create → use → 403 naming the missing scope → revoke → 401, with the acting key as the actor', async () => {
    const created = remember(await createKey(base, { name: 'login service', scopes: ['families:issue'] }));
    expect(created.body).toEqual({ keyId: expect.stringMatching(/^key_[0-9a-z]{26}$/), key: expect.stringMatching(API_KEY_PATTERN), name: 'login service', scopes: ['families:issue'], createdAt: expect.any(String), expiresAt: null });
    expect(parseApiKey(created.key)?.keyId).toBe(created.keyId);

    const issued = await call(base, created.key, 'POST', '/v1/families', { subject: 'key-user', clientId: 'keys-app', scope: 'api:read' });
    expect(issued.status).toBe(201);

    for (const [method, route, scope] of [
      ['GET', '/v1/audit', 'audit:read'],
      ['GET', `/v1/families/${issued.body.family_id}`, 'audit:read'],
      ['GET', `/v1/families/${issued.body.family_id}/timeline`, 'audit:read'],
      ['GET', '/v1/anomalies', 'audit:read'],
      ['POST', `/v1/families/${issued.body.family_id}/revoke`, 'families:revoke'],
      ['POST', '/v1/subjects/key-user/revoke', 'subjects:revoke'],
      ['POST', '/v1/clients', 'clients:write'],
      ['GET', '/v1/clients/keys-app', 'clients:write'],
      ['GET', '/v1/api-keys', 'api-keys:write'],
      ['GET', '/v1/revocations/stream', 'revocations:read'],
    ] as const) {
      const res = await call(base, created.key, method, route, method === 'POST' ? { reason: 'logout' } : undefined);
      expect({ route, status: res.status }).toEqual({ route, status: 403 });
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 403, title: 'Forbidden', requiredScope: scope });
      expect(res.body.detail).toContain(scope);
    }

    const events = await auditOf(`familyId=${issued.body.family_id}`, Number(issued.headers.get('x-event-position')));
    expect(events.find((e) => e.type === 'TokenFamilyIssued')?.metadata.actor).toBe(`api-key:${created.keyId}`);

    const revoked = await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${created.keyId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ keyId: created.keyId, status: 'revoked', revoked: true, revokedAt: expect.any(String) });
    const refused = await call(base, created.key, 'POST', '/v1/families', { subject: 'key-user', clientId: 'keys-app', scope: 'api:read' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${created.keyId}/revoke`)).body).toMatchObject({ revoked: false, status: 'revoked' });

    const lifecycle = await auditOf(`type=ApiKeyRevoked`, Number(revoked.headers.get('x-event-position') ?? 0) || undefined);
    expect(lifecycle.filter((e) => e.data.keyId === created.keyId).map((e) => e.metadata.actor)).toEqual(['admin-token']);
  });

  it('the OpenAPI document describes the key endpoints and the scope of each /v1 route', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> };
    expect(Object.keys(doc.paths['/v1/api-keys']).sort()).toEqual(['get', 'post']);
    expect(doc.paths['/v1/api-keys'].post.responses['201']).toBeDefined();
    expect(doc.paths['/v1/api-keys/{keyId}/revoke'].post.responses['404']).toBeDefined();
    for (const [route, method, scope] of [
      ['/v1/families', 'post', 'families:issue'],
      ['/v1/families/{id}/revoke', 'post', 'families:revoke'],
      ['/v1/subjects/{sub}/revoke', 'post', 'subjects:revoke'],
      ['/v1/clients', 'post', 'clients:write'],
      ['/v1/audit', 'get', 'audit:read'],
      ['/v1/families/{id}/timeline', 'get', 'audit:read'],
      ['/v1/revocations/stream', 'get', 'revocations:read'],
      ['/v1/api-keys', 'post', 'api-keys:write'],
    ] as const) {
      expect({ route, forbidden: doc.paths[route][method].responses['403']?.description }).toEqual({ route, forbidden: expect.stringContaining(scope) });
    }
  });

  it('refuses unknown, forged, malformed and missing keys with 401', async () => {
    const real = remember(await createKey(base, { name: 'reader', scopes: ['audit:read'] }));
    const forged = formatApiKey({ keyId: real.keyId, secret: randomBytes(32) });
    const unknown = formatApiKey({ keyId: `key_${'0'.repeat(26)}`, secret: randomBytes(32) });
    for (const bearer of [forged, unknown, real.key.slice(0, -1) + (real.key.endsWith('a') ? 'b' : 'a'), 'tlk_garbage', `${ADMIN_TOKEN}x`, '']) {
      expect((await call(base, bearer, 'GET', '/v1/audit')).status).toBe(401);
    }
    expect((await call(base, undefined, 'GET', '/v1/audit')).status).toBe(401);
    expect((await call(base, real.key, 'GET', '/v1/audit')).status).toBe(200);
    expect((await call(base, 'a'.repeat(4000), 'GET', '/v1/audit')).status).toBe(401);
  });

  it('a revocations:read key reads the SSE stream and nothing else, and loses an open stream when revoked', async () => {
    const rs = remember(await createKey(base, { name: 'resource server', scopes: ['revocations:read'] }));
    const messages: string[] = [];
    const controller = new AbortController();
    let ended = false;
    const done = readSse(`${base}/v1/revocations/stream?heartbeatMs=200`, { authorization: `Bearer ${rs.key}` }, { onMessage: (m) => messages.push(m.event) }, controller.signal).then(
      () => (ended = true),
      () => (ended = true),
    );
    await until(() => messages.includes('ready'), 'ready');
    expect((await call(base, rs.key, 'GET', '/v1/audit')).status).toBe(403);
    expect((await call(base, rs.key, 'POST', '/v1/families', { subject: 'x', clientId: 'keys-app', scope: 'api:read' })).status).toBe(403);
    expect((await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${rs.keyId}/revoke`)).status).toBe(200);
    await until(() => ended, 'the open stream closed after the revocation', 5000);
    controller.abort();
    await done;
    expect((await fetch(`${base}/v1/revocations/stream`, { headers: { authorization: `Bearer ${rs.key}` } })).status).toBe(401);
  });

  it('an expired key is refused with 401 and listed as expired; a past expiry is refused at creation', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const short = remember(await createKey(base, { name: 'short-lived', scopes: ['audit:read'], expiresAt }));
    expect(short.body.expiresAt).toBe(expiresAt);
    expect((await call(base, short.key, 'GET', '/v1/audit')).status).toBe(200);
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 50));
    expect((await call(base, short.key, 'GET', '/v1/audit')).status).toBe(401);
    const listed = await call(base, ADMIN_TOKEN, 'GET', `/v1/api-keys?minPosition=${short.position}`);
    expect(listed.body.items.find((k: any) => k.keyId === short.keyId)).toMatchObject({ status: 'expired', expiresAt });

    const past = await call(base, ADMIN_TOKEN, 'POST', '/v1/api-keys', { name: 'x', scopes: ['audit:read'], expiresAt: '2020-01-01T00:00:00Z' });
    expect(past.status).toBe(400);
    expect(past.body.detail).toMatch(/expiresAt/);
  });

  it('refuses bad input with 400 naming the problem, and a key cannot grant a scope it lacks', async () => {
    for (const [body, pattern] of [
      [{ name: 'x', scopes: ['root'] }, /root/],
      [{ name: 'x', scopes: [] }, /scopes/],
      [{ scopes: ['admin'] }, /name/],
      [{ name: 'x', scopes: ['admin'], extra: 1 }, /extra/],
      [{ name: 'x', scopes: ['admin'], expiresAt: 'tomorrow' }, /expiresAt/],
    ] as const) {
      const res = await call(base, ADMIN_TOKEN, 'POST', '/v1/api-keys', body);
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(pattern);
    }
    const manager = remember(await createKey(base, { name: 'key manager', scopes: ['api-keys:write'] }));
    const escalate = await call(base, manager.key, 'POST', '/v1/api-keys', { name: 'x', scopes: ['admin'] });
    expect(escalate.status).toBe(403);
    expect(escalate.body).toMatchObject({ requiredScope: 'admin' });
    const sub = await call(base, manager.key, 'POST', '/v1/api-keys', { name: 'delegate', scopes: ['api-keys:write'] });
    expect(sub.status).toBe(201);
    createdKeys.push(sub.body.key);
    const revokedByKey = await call(base, manager.key, 'POST', `/v1/api-keys/${sub.body.keyId}/revoke`);
    expect(revokedByKey.status).toBe(200);
    const events = await auditOf('type=ApiKeyRevoked', Number(revokedByKey.headers.get('x-event-position') ?? 0) || undefined);
    expect(events.find((e) => e.data.keyId === sub.body.keyId)?.metadata.actor).toBe(`api-key:${manager.keyId}`);
    expect((await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/key_${'1'.repeat(26)}/revoke`)).status).toBe(404);
    expect((await call(base, ADMIN_TOKEN, 'POST', '/v1/api-keys/not-a-key/revoke')).status).toBe(404);
  });

  it('many concurrent revocations of one key append one ApiKeyRevoked; concurrent creations give distinct working keys', async () => {
    const target = remember(await createKey(base, { name: 'contended', scopes: ['audit:read'] }));
    const answers = await Promise.all(Array.from({ length: 25 }, () => call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${target.keyId}/revoke`)));
    expect(answers.map((a) => a.status)).toEqual(Array(25).fill(200));
    expect(answers.filter((a) => a.body.revoked === true)).toHaveLength(1);
    const stream = await ledger.store.readStream(apiKeyStreamId(target.keyId));
    expect(stream.map((e) => e.type)).toEqual(['ApiKeyCreated', 'ApiKeyRevoked']);

    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => createKey(base, { name: `bulk ${i}`, scopes: ['audit:read'] })));
    many.forEach(remember);
    expect(new Set(many.map((k) => k.keyId)).size).toBe(20);
    const uses = await Promise.all(many.map((k) => call(base, k.key, 'GET', '/v1/audit?limit=1')));
    expect(uses.map((u) => u.status)).toEqual(Array(20).fill(200));
  });

  it('shows a key once: never in GET /v1/api-keys, the audit view, the stored events or the logs (runs last)', async () => {
    const last = remember(await createKey(base, { name: 'listed', scopes: ['audit:read'] }));
    const listed = await call(base, ADMIN_TOKEN, 'GET', `/v1/api-keys?minPosition=${last.position}&limit=500`);
    expect(listed.status).toBe(200);
    const entry = listed.body.items.find((k: any) => k.keyId === last.keyId);
    expect(entry).toEqual({ keyId: last.keyId, name: 'listed', scopes: ['audit:read'], status: 'active', createdAt: expect.any(String), expiresAt: null, revokedAt: null });
    expect(listed.body.items.map((k: any) => k.keyId)).toEqual(expect.arrayContaining(createdKeys.map((k) => parseApiKey(k)!.keyId)));

    const audit = await auditOf('type=ApiKeyCreated&limit=500', last.position);
    const created = audit.find((e) => e.data.keyId === last.keyId);
    expect(created.data).toEqual({ keyId: last.keyId, name: 'listed', scopes: ['audit:read'], createdAt: expect.any(String), expiresAt: null });
    expect(created.metadata.actor).toBe('admin-token');

    const stored = await ledger.store.readStream(apiKeyStreamId(last.keyId));
    expect(typeof (stored[0].data as { keyHash?: unknown }).keyHash).toBe('string');

    const everything = JSON.stringify(await ledger.store.readAll({ maxCount: 1_000_000 }));
    const haystacks = { logs: ledger.logs.join(''), events: everything, list: JSON.stringify(listed.body), audit: JSON.stringify(audit) };
    for (const key of createdKeys) {
      const secretText = key.split('_')[2];
      for (const [name, text] of Object.entries(haystacks)) {
        expect({ name, leaked: text.includes(key) || text.includes(secretText) }).toEqual({ name, leaked: false });
      }
    }
    expect(haystacks.logs.includes(ADMIN_TOKEN)).toBe(false);
  });
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two instances on one PostgreSQL database: a key revoked on one is refused at once by the other. */
export function apiKeysAcrossInstancesSuite(url: () => string): void {
  let a: Ledger;
  let b: Ledger;

  beforeAll(async () => {
    a = await startLedger({ store: { kind: 'postgres', url: url() } });
    b = await startLedger({ store: { kind: 'postgres', url: url() }, schema: a.schema });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.destroy();
  });

  it('a key created on one instance works on the other, and its revocation takes effect on both at once', async () => {
    const key = await createKey(a.baseUrl, { name: 'shared', scopes: ['audit:read'] });
    expect((await call(b.baseUrl, key.key, 'GET', '/v1/audit?limit=1')).status).toBe(200);
    expect((await call(a.baseUrl, key.key, 'GET', '/v1/audit?limit=1')).status).toBe(200);
    expect((await call(a.baseUrl, ADMIN_TOKEN, 'POST', `/v1/api-keys/${key.keyId}/revoke`)).status).toBe(200);
    // No wait: the next request on the other instance is decided from the store.
    expect((await call(b.baseUrl, key.key, 'GET', '/v1/audit?limit=1')).status).toBe(401);
    expect((await call(a.baseUrl, key.key, 'GET', '/v1/audit?limit=1')).status).toBe(401);
  });

  it('concurrent revocations through both instances append one ApiKeyRevoked', async () => {
    const key = await createKey(b.baseUrl, { name: 'contended across instances', scopes: ['audit:read'] });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => call((i % 2 ? a : b).baseUrl, ADMIN_TOKEN, 'POST', `/v1/api-keys/${key.keyId}/revoke`)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(answers.filter((r) => r.body.revoked)).toHaveLength(1);
    expect((await a.store.readStream(apiKeyStreamId(key.keyId))).map((e) => e.type)).toEqual(['ApiKeyCreated', 'ApiKeyRevoked']);
  });
}
