import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { parseRefreshToken } from '@token-ledger/domain';
import { subjectStreamId } from '@token-ledger/envelope';
import { LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';

/**
 * The black-box behaviour of SPEC §2–3 over real HTTP on a real store. Run once per store adapter,
 * so the embedded default and PostgreSQL are held to the same rules.
 */
export function ledgerBehaviourSuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  const issuedTokens: string[] = [];
  const remember = <T extends { refresh_token?: string; body?: { refresh_token?: string } }>(r: T): T => {
    const t = r.refresh_token ?? r.body?.refresh_token;
    if (t) issuedTokens.push(t);
    return r;
  };

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind() });
    api = new LedgerClient(ledger.baseUrl);
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  it('walks the README flow: issue, refresh, reuse revokes the family, introspect, revoke', async () => {
    const client = await api.registerClient({ clientId: 'web-app' });
    const issued = remember(await api.issue({ subject: 'alice', clientId: 'web-app', scope: 'api:read api:write', context: { ip: '203.0.113.7', userAgent: 'jest' } }));
    expect(issued).toMatchObject({ token_type: 'Bearer', scope: 'api:read api:write', expires_in: 300 });
    expect(issued.family_id).toMatch(/^fam_/);
    expect(issued.refresh_token_expires_in).toBeGreaterThan(0);

    const first = remember(await api.refresh(issued.refresh_token, client));
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.body.refresh_token).not.toBe(issued.refresh_token);
    expect(parseRefreshToken(first.body.refresh_token)?.generation).toBe(2);

    const active = await api.form('/oauth/introspect', { token: first.body.refresh_token }, client);
    expect(active.body).toMatchObject({ active: true, client_id: 'web-app', sub: 'alice', token_type: 'refresh_token', sid: issued.family_id });
    const at = await api.form('/oauth/introspect', { token: first.body.access_token }, client);
    expect(at.body).toMatchObject({ active: true, sub: 'alice', client_id: 'web-app', sid: issued.family_id, scope: 'api:read api:write' });

    // Presenting generation 1 again (grace 0) is reuse: the whole family dies, access tokens too.
    const reuse = await api.refresh(issued.refresh_token, client);
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    const afterReuse = await api.refresh(first.body.refresh_token, client);
    expect(afterReuse.body.error).toBe('invalid_grant');
    expect((await api.form('/oauth/introspect', { token: first.body.access_token }, client)).body).toEqual({ active: false });
    expect((await api.form('/oauth/introspect', { token: first.body.refresh_token }, client)).body).toEqual({ active: false });

    // RFC 7009 on a fresh family.
    const other = remember(await api.issue({ subject: 'alice', clientId: 'web-app', scope: 'api:read' }));
    expect((await api.form('/oauth/revoke', { token: other.refresh_token }, client)).status).toBe(200);
    expect((await api.refresh(other.refresh_token, client)).body.error).toBe('invalid_grant');
    expect((await api.form('/oauth/revoke', { token: 'not-a-token' }, client)).status).toBe(200);
  });

  it('narrows scope on refresh but never widens it', async () => {
    const client = await api.registerClient({ clientId: 'scoper' });
    const issued = remember(await api.issue({ subject: 'bob', clientId: 'scoper', scope: 'api:read api:write' }));
    const narrowed = remember(await api.refresh(issued.refresh_token, client, { scope: 'api:read' }));
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('api:read');
    const widened = await api.refresh(narrowed.body.refresh_token, client, { scope: 'api:read offline_access' });
    expect(widened.status).toBe(400);
    expect(widened.body.error).toBe('invalid_scope');
    // The refresh token keeps the family's full scope.
    const full = remember(await api.refresh(narrowed.body.refresh_token, client));
    expect(full.body.scope).toBe('api:read api:write');
  });

  it('a forged secret for a real family is rejected and does not revoke it', async () => {
    const client = await api.registerClient({ clientId: 'forge-target' });
    const issued = remember(await api.issue({ subject: 'carol', clientId: 'forge-target', scope: 'api:read' }));
    const parts = parseRefreshToken(issued.refresh_token)!;
    const { formatRefreshToken } = await import('@token-ledger/domain');
    for (const generation of [1, 2, 7]) {
      const forged = formatRefreshToken({ familyId: parts.familyId, generation, secret: Buffer.alloc(32, 7) });
      const res = await api.refresh(forged, client);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    expect((await api.refresh(issued.refresh_token, client)).status).toBe(200);
  });

  it('20 concurrent refreshes of one token with grace 0: exactly one succeeds, the others are reuse, and the winner\'s successor dies with the family', async () => {
    const client = await api.registerClient({ clientId: 'strict-tabs', reuseGraceSeconds: 0 });
    const issued = remember(await api.issue({ subject: 'dave', clientId: 'strict-tabs', scope: 'api:read' }));
    const results = await Promise.all(Array.from({ length: 20 }, () => api.refresh(issued.refresh_token, client)));
    results.forEach(remember);
    // Rule 6: one rotation wins the append; every other request then presents the previous
    // generation outside a 0 s window, which is rule 3's reuse.
    expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(19).fill(400)]);
    const [winner] = results.filter((r) => r.status === 200);
    expect(parseRefreshToken(winner.body.refresh_token)?.generation).toBe(2);
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_grant');
    // The reuse revoked the family, the winner's successor and access token with it.
    expect((await api.refresh(winner.body.refresh_token, client)).body.error).toBe('invalid_grant');
    expect((await api.form('/oauth/introspect', { token: winner.body.access_token }, client)).body).toEqual({ active: false });
    const family = await api.admin('GET', `/v1/families/${issued.family_id}?minPosition=${await ledger.store.headPosition()}`);
    expect(family.body).toMatchObject({ status: 'revoked', revokedReason: 'reuse_detected', generation: 2 });
  });

  it('20 concurrent refreshes of one token with a grace window: all succeed with the same successor', async () => {
    const client = await api.registerClient({ clientId: 'tabs', reuseGraceSeconds: 30 });
    const issued = remember(await api.issue({ subject: 'erin', clientId: 'tabs', scope: 'api:read' }));
    const results = await Promise.all(Array.from({ length: 20 }, () => api.refresh(issued.refresh_token, client)));
    results.forEach(remember);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const successors = new Set(results.map((r) => r.body.refresh_token));
    expect(successors.size).toBe(1);
    expect(new Set(results.map((r) => r.body.access_token)).size).toBe(20);
    // The converged successor is the live head.
    const next = remember(await api.refresh([...successors][0], client));
    expect(next.status).toBe(200);
  });

  it('RevokeSubject is race-free against concurrent issues and refreshes', async () => {
    const client = await api.registerClient({ clientId: 'sessions', reuseGraceSeconds: 0 });
    const before = await Promise.all(Array.from({ length: 5 }, () => api.issue({ subject: 'frank', clientId: 'sessions', scope: 'api:read' })));
    before.forEach(remember);
    // Issues and refreshes racing with the revocation.
    const racingIssues = Array.from({ length: 10 }, () =>
      api.issue({ subject: 'frank', clientId: 'sessions', scope: 'api:read' }).then((f) => ({ ...remember(f), answeredAt: performance.now() })),
    );
    const racingRefreshes = before.map((f) => api.refresh(f.refresh_token, client).then(remember));
    const revoke = await api.admin('POST', '/v1/subjects/frank/revoke', { reason: 'password_change' });
    expect(revoke.status).toBe(200);
    const revokeAnsweredAt = performance.now();
    const issuedDuring = await Promise.all(racingIssues);
    const refreshed = await Promise.all(racingRefreshes);
    expect(refreshed.filter((r) => r.status >= 500)).toEqual([]);

    // Every family that existed before the call can never refresh again: neither its first token
    // nor a successor a racing refresh obtained.
    for (const f of before) expect((await api.refresh(f.refresh_token, client)).body.error).toBe('invalid_grant');
    for (const r of refreshed.filter((x) => x.status === 200)) {
      expect((await api.refresh(r.body.refresh_token, client)).body.error).toBe('invalid_grant');
    }
    // The exact rule: the revocation covers the families linked before it completed (the subject
    // stream serialises links against it), and only those are revoked. SPEC §2 adds that every
    // login answered before the call returned is among them; one answered later may or may not be.
    const subjectEvents = await ledger.store.readStream(subjectStreamId('frank'));
    const completed = subjectEvents.filter((e) => e.type === 'SubjectRevocationCompleted');
    expect(completed).toHaveLength(1);
    const covered = new Set((completed[0].data as { familyIds: string[] }).familyIds);
    for (const f of before) expect(covered.has(f.family_id)).toBe(true);
    for (const f of issuedDuring) {
      if (f.answeredAt < revokeAnsweredAt) expect({ family: f.family_id, covered: covered.has(f.family_id) }).toEqual({ family: f.family_id, covered: true });
      const res = await api.refresh(f.refresh_token, client);
      expect({ family: f.family_id, status: res.status }).toEqual({ family: f.family_id, status: covered.has(f.family_id) ? 400 : 200 });
    }
    expect(new Set(revoke.body.revokedFamilies)).toEqual(covered);
    // After the revocation, a new login works.
    const fresh = remember(await api.issue({ subject: 'frank', clientId: 'sessions', scope: 'api:read' }));
    expect((await api.refresh(fresh.refresh_token, client)).status).toBe(200);
  });

  it('the family limit under concurrent logins: once the view has caught up, the next login leaves exactly the limit active, itself included', async () => {
    const client = await api.registerClient({ clientId: 'limited-burst', maxFamiliesPerSubject: 3 });
    const burst = await Promise.all(Array.from({ length: 10 }, () => api.issue({ subject: 'gina', clientId: 'limited-burst', scope: 'api:read' })));
    burst.forEach(remember);
    // The limit counts from the family view, so logins within its lag may overshoot for a moment;
    // the next login counts from a caught-up view and trims to the limit.
    const caughtUp = await api.admin('GET', `/v1/subjects/gina/families?status=active&limit=50&minPosition=${await ledger.store.headPosition()}`);
    expect(caughtUp.status).toBe(200);
    const last = remember(await api.issue({ subject: 'gina', clientId: 'limited-burst', scope: 'api:read' }));
    const all = [...burst, last];
    const active: string[] = [];
    for (const f of all) {
      const introspected = await api.form('/oauth/introspect', { token: f.refresh_token }, client);
      if (introspected.body.active === true) active.push(f.family_id);
    }
    expect(active).toHaveLength(3);
    expect(active).toContain(last.family_id);
    const view = await api.admin('GET', `/v1/subjects/gina/families?status=active&limit=50&minPosition=${await ledger.store.headPosition()}`);
    expect(view.body.items.map((f: { familyId: string }) => f.familyId).sort()).toEqual([...active].sort());
  });

  it('reuse racing a rotation of the head: whichever lands first, the family ends revoked for reuse and no successor survives', async () => {
    const client = await api.registerClient({ clientId: 'reuse-race', reuseGraceSeconds: 0 });
    const families = await Promise.all(Array.from({ length: 6 }, () => api.issue({ subject: 'hank', clientId: 'reuse-race', scope: 'api:read' })));
    families.forEach(remember);
    // Generation 2 is the head; generation 1 is stolen and replayed while the owner rotates 2.
    const heads = await Promise.all(families.map((f) => api.refresh(f.refresh_token, client).then(remember)));
    expect(heads.map((h) => h.status)).toEqual(Array(6).fill(200));
    const raced = await Promise.all(
      families.map((f, i) => Promise.all([api.refresh(heads[i].body.refresh_token, client), api.refresh(f.refresh_token, client)])),
    );
    const head = await ledger.store.headPosition();
    for (const [i, [rotation, reuse]] of raced.entries()) {
      remember(rotation);
      expect(reuse).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      // Before the reuse: a successor of generation 3, which the reuse then kills; after it: refused.
      if (rotation.status === 200) {
        expect(parseRefreshToken(rotation.body.refresh_token)?.generation).toBe(3);
        expect((await api.refresh(rotation.body.refresh_token, client)).body.error).toBe('invalid_grant');
        expect((await api.form('/oauth/introspect', { token: rotation.body.access_token }, client)).body).toEqual({ active: false });
      } else {
        expect(rotation).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      }
      const family = await api.admin('GET', `/v1/families/${families[i].family_id}?minPosition=${head}`);
      expect(family.body).toMatchObject({ status: 'revoked', revokedReason: 'reuse_detected', generation: rotation.status === 200 ? 3 : 2 });
    }
  });

  it('validates client registration and admin authentication', async () => {
    const unauth = await fetch(`${ledger.baseUrl}/v1/clients/x`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('content-type')).toContain('application/problem+json');
    const bad = await api.admin('POST', '/v1/clients', { clientId: 'bad', refreshIdleTtl: 0 });
    expect(bad.status).toBe(400);
    const generated = await api.admin('POST', '/v1/clients', { clientId: 'gen-secret', allowedScopes: ['api:read'] });
    expect(generated.status).toBe(201);
    expect(typeof generated.body.secret).toBe('string');
    const fetched = await api.admin('GET', '/v1/clients/gen-secret');
    expect(fetched.body).toMatchObject({ clientId: 'gen-secret', type: 'confidential', reuseGraceSeconds: 0, accessTokenTtl: 300 });
    expect(JSON.stringify(fetched.body)).not.toContain(generated.body.secret);
    expect(fetched.body.secretHash).toBeUndefined();
    expect((await api.admin('POST', '/v1/clients', { clientId: 'gen-secret' })).status).toBe(409);
  });

  it('never stores or logs a plaintext refresh token (runs last: scans everything above)', async () => {
    expect(issuedTokens.length).toBeGreaterThan(20);
    const needles = issuedTokens.flatMap((t) => {
      const secretPart = t.split('_')[3];
      const parsed = parseRefreshToken(t)!;
      return [t, secretPart, parsed.secret.toString('hex'), parsed.secret.toString('base64'), parsed.secret.toString('base64url')];
    });
    const haystacks: { name: string; text: string }[] = [{ name: 'logs', text: ledger.logs.join('') }];
    const kind = storeKind();
    if (kind.kind === 'postgres') {
      const pg = new Client({ connectionString: kind.url });
      await pg.connect();
      try {
        const schema = ledger.schema;
        for (const table of ['tl_events', 'tl_streams', 'tl_kv']) {
          const rows = (await pg.query(`select * from ${schema}.${table}`)).rows;
          haystacks.push({ name: `${schema}.${table}`, text: JSON.stringify(rows) });
        }
      } finally {
        await pg.end();
      }
    } else {
      // Raw bytes of every file PGlite wrote, latin1 so binary pages survive as text.
      for (const file of walk(ledger.dataDir)) haystacks.push({ name: file, text: readFileSync(file).toString('latin1') });
    }
    expect(haystacks.length).toBeGreaterThan(1);
    for (const { name, text } of haystacks) {
      for (const needle of needles) {
        if (text.includes(needle)) throw new Error(`plaintext refresh-token material found in ${name}`);
      }
    }
  });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}
