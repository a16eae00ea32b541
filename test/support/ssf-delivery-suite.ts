import { createRemoteJWKSet, jwtVerify } from 'jose';
import {
  CAEP_CREDENTIAL_CHANGE,
  CAEP_SESSION_REVOKED,
  CAEP_TOKEN_CLAIMS_CHANGE,
  SSF_STREAM_UPDATED,
  SSF_VERIFICATION,
} from '@token-ledger/domain';
import { ALL_PROJECTIONS, rebuildProjections } from '@token-ledger/projections';
import { SsfDelivery } from '../../apps/token-ledger/src/ssf-delivery/ssf-delivery';
import { eventually } from './eventually';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';
import { SsfApi } from './ssf-api';
import { SsfReceiver } from './ssf-receiver';

/**
 * SSF delivery (push RFC 8935, poll RFC 8936) over real HTTP on a real store; run once per store.
 * Every pushed SET is verified by the receiver with the ledger's published JWKS.
 */
export function ssfDeliverySuite(storeKind: () => StoreKind): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let ssf: SsfApi;
  let client: { clientId: string; secret: string };
  const receivers: SsfReceiver[] = [];

  beforeAll(async () => {
    ledger = await startLedger({
      store: storeKind(),
      env: {
        LEDGER_ANOMALY_ENGINE: 'off',
        LEDGER_SSF_RETRY_MIN_MS: '50',
        LEDGER_SSF_RETRY_MAX_MS: '400',
        LEDGER_SSF_POLL_WAIT_MS: '20000',
        LEDGER_SSF_ALLOW_INSECURE_PUSH: 'true',
        LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '1',
      },
    });
    api = new LedgerClient(ledger.baseUrl);
    ssf = new SsfApi(ledger.baseUrl);
    client = await api.registerClient({ clientId: 'ssf-web', reuseGraceSeconds: 0, maxFamiliesPerSubject: 100 });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await ledger?.destroy();
  });

  const receiver = async (aud: string) => {
    const r = new SsfReceiver(ledger.baseUrl, aud);
    await r.start();
    receivers.push(r);
    return r;
  };
  const issue = (subject: string, scope = 'api:read api:write') => api.issue({ subject, clientId: client.clientId, scope });
  const revoke = async (familyId: string, reason: string, correlationId?: string) => {
    const res = await fetch(`${ledger.baseUrl}/v1/families/${familyId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...(correlationId ? { 'x-correlation-id': correlationId } : {}) },
      body: JSON.stringify({ reason }),
    });
    expect(res.status).toBe(200);
  };
  const sql = () => ledger.runtime.store.capabilities.sql!;
  const outbox = (streamId: string) =>
    sql().query<{ jti: string; event_type: string; failed_at: Date | null; attempts: number; last_error: string | null }>('select * from ssf_outbox where stream_id = $1 order by seq', [streamId]);
  /** Until the outbox consumer has handled everything stored so far. */
  const outboxCaughtUp = async () => {
    const head = await ledger.store.headPosition();
    await eventually(() => ledger.app.get(SsfDelivery).position >= head, `the outbox at position ${head}`);
  };
  /** A verification SET as a marker: the stream is strictly ordered, so once it arrives everything before it has. */
  const marker = async (streamId: string, r: SsfReceiver, state: string) => {
    await ssf.verify(streamId, state);
    await eventually(() => r.ofType(SSF_VERIFICATION).some((s) => s.payload.state === state), `verification ${state}`);
  };

  it('pushes session-revoked, credential-change, token-claims-change, verification — signed, for followed subjects only', async () => {
    const rp = await receiver('https://rp-a.example');
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: ['https://rp-a.example'], authorization: 'Bearer receiver-secret-1' });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'alice' });
    await ssf.addSubject(streamId, { format: 'email', email: 'bob@example.com' });
    await ssf.addSubject(streamId, { format: 'opaque', id: 'ssf-web' });

    const alice = await issue('alice');
    const carol = await issue('carol'); // not followed
    // Scope narrows on refresh: one token-claims-change; the same narrowed scope again says nothing new.
    const r1 = await api.refresh(alice.refresh_token, client, { scope: 'api:read' });
    expect(r1.status).toBe(200);
    const r2 = await api.refresh(r1.body.refresh_token, client, { scope: 'api:read' });
    expect(r2.status).toBe(200);
    await revoke(alice.family_id, 'logout', 'corr-alice-logout');
    await revoke(carol.family_id, 'admin');
    const bobs = [await issue('Bob@Example.com'), await issue('Bob@Example.com'), await issue('Bob@Example.com')];
    expect((await api.admin('POST', '/v1/subjects/Bob@Example.com/revoke', { reason: 'password_change' })).status).toBe(200);
    expect((await api.admin('POST', `/v1/clients/${client.clientId}/secret`, {})).status).toBe(200);
    await marker(streamId, rp, 'end-of-part-1');

    expect(rp.invalid).toEqual([]);
    const types = rp.received.map((s) => s.type);
    expect(types).toEqual([CAEP_TOKEN_CLAIMS_CHANGE, CAEP_SESSION_REVOKED, CAEP_SESSION_REVOKED, CAEP_CREDENTIAL_CHANGE, SSF_VERIFICATION]);
    const [claims, aliceRevoked, bobRevoked, credential] = rp.received;
    expect(claims.claims.sub_id).toEqual({ format: 'iss_sub', iss: ledger.baseUrl, sub: 'alice' });
    expect(claims.payload).toMatchObject({ claims: { scope: 'api:read' }, family_id: alice.family_id });
    expect(aliceRevoked.claims.txn).toBe('corr-alice-logout');
    expect(aliceRevoked.payload).toMatchObject({ initiating_entity: 'user', family_id: alice.family_id, reason_admin: { en: expect.any(String) } });
    expect(typeof aliceRevoked.payload.event_timestamp).toBe('number');
    // The subject revocation: ONE SET for all of Bob's sessions, in the email format.
    expect(bobRevoked.claims.sub_id).toEqual({ format: 'email', email: 'Bob@Example.com' });
    expect(bobRevoked.payload).toMatchObject({ initiating_entity: 'admin', reason_user: { en: 'Your password was changed' } });
    expect(bobRevoked.payload).not.toHaveProperty('family_id');
    expect(bobs).toHaveLength(3);
    expect(credential.claims.sub_id).toEqual({ format: 'opaque', id: 'ssf-web' });
    expect(credential.payload).toMatchObject({ change_type: 'update', credential_type: 'password' });
    for (const s of rp.received) {
      expect(s.authorization).toBe('Bearer receiver-secret-1');
      expect(s.claims.aud).toBe('https://rp-a.example');
    }
    expect(new Set(rp.received.map((s) => s.jti)).size).toBe(rp.received.length);
    // Delivered rows are gone — once the window they were sent in ends (a receipt comes before its delete).
    await eventually(async () => (await outbox(streamId)).length === 0, 'the delivered rows deleted');
  });

  it('a paused stream accumulates and gets the backlog in order once enabled; a disabled one gets nothing', async () => {
    const rp = await receiver('https://rp-b.example');
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: ['https://rp-b.example'], events: [CAEP_SESSION_REVOKED] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'dave' });
    await marker(streamId, rp, 'before-pause');
    await ssf.setStatus(streamId, 'paused', 'maintenance');
    const families = [await issue('dave'), await issue('dave'), await issue('dave')];
    for (const f of families) await revoke(f.family_id, 'admin');
    await outboxCaughtUp();
    expect((await outbox(streamId)).map((r) => r.event_type)).toEqual([SSF_STREAM_UPDATED, CAEP_SESSION_REVOKED, CAEP_SESSION_REVOKED, CAEP_SESSION_REVOKED]);
    expect(rp.received).toHaveLength(1); // the marker only: paused holds

    await ssf.setStatus(streamId, 'enabled');
    await eventually(() => rp.received.length === 6, 'the backlog');
    expect(rp.received.slice(1).map((s) => [s.type, s.payload.status ?? s.payload.family_id])).toEqual([
      [SSF_STREAM_UPDATED, 'paused'],
      ...families.map((f) => [CAEP_SESSION_REVOKED, f.family_id]),
      [SSF_STREAM_UPDATED, 'enabled'],
    ]);
    expect(rp.received[1].payload).toEqual({ status: 'paused', reason: 'maintenance' });

    await ssf.setStatus(streamId, 'disabled');
    const late = await issue('dave');
    await revoke(late.family_id, 'admin');
    await ssf.verify(streamId, 'while-disabled');
    await outboxCaughtUp();
    expect(await outbox(streamId)).toEqual([]);
    expect(rp.received).toHaveLength(6);
    expect(rp.invalid).toEqual([]);
  });

  it('a refused SET (400) is recorded and the stream moves on; errors and refused connections are retried in order', async () => {
    const rp = await receiver('https://rp-c.example');
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: ['https://rp-c.example'] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'erin' });
    await rp.setMode({ kind: 'status', status: 400, body: { err: 'invalid_audience', description: 'not for us' } });
    await ssf.verify(streamId, 'refused');
    await eventually(async () => (await outbox(streamId)).some((r) => r.failed_at !== null), 'the refusal recorded');
    const [refused] = await outbox(streamId);
    expect(refused.last_error).toBe('invalid_audience: not for us');
    expect(ledger.logs.join('')).toContain('the receiver refused a SET');

    await rp.setMode({ kind: 'status', status: 503 });
    const families = [await issue('erin'), await issue('erin'), await issue('erin')];
    for (const f of families) await revoke(f.family_id, 'anomaly');
    await eventually(async () => (await outbox(streamId)).some((r) => r.attempts >= 2), 'retries');
    await rp.setMode({ kind: 'down' });
    await eventually(async () => (await outbox(streamId)).some((r) => /ECONNREFUSED|fetch failed/.test(r.last_error ?? '')), 'a refused connection');
    await rp.setMode({ kind: 'accept' });
    await marker(streamId, rp, 'after-outage');
    expect(rp.received.map((s) => s.payload.family_id ?? s.payload.state)).toEqual([...families.map((f) => f.family_id), 'after-outage']);
    expect(rp.invalid).toEqual([]);
    const metrics = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/token_ledger_ssf_push_total\{outcome="refused"\} [1-9]/);
    expect(metrics).toMatch(/token_ledger_ssf_push_total\{outcome="retried"\} [1-9]/);
    expect(metrics).toMatch(/token_ledger_ssf_outbox_refused [1-9]/);
  });

  it('concurrent revocations: one SET each, in the store\'s order; rebuild-projections leaves the outbox alone', async () => {
    const rp = await receiver('https://rp-d.example');
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: ['https://rp-d.example'], events: [CAEP_SESSION_REVOKED] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'grace' });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'heidi' });
    const families = await Promise.all(Array.from({ length: 30 }, (_, i) => issue(i % 2 ? 'grace' : 'heidi')));
    // Each family revoked twice at once: the second is a no-op on the command side, so one SET each.
    await Promise.all(families.flatMap((f) => [revoke(f.family_id, 'admin'), revoke(f.family_id, 'admin')]));
    await marker(streamId, rp, 'after-concurrent');
    const revoked = rp.ofType(CAEP_SESSION_REVOKED).map((s) => s.payload.family_id as string);
    expect([...revoked].sort()).toEqual(families.map((f) => f.family_id).sort());
    // In the store's order: the order of the TokenFamilyRevoked events in $all.
    const all = await ledger.store.readAll({});
    const storeOrder = all.filter((e) => e.type === 'TokenFamilyRevoked' && revoked.includes((e.metadata as { familyId: string }).familyId)).map((e) => (e.metadata as { familyId: string }).familyId);
    expect(revoked).toEqual(storeOrder);
    expect(rp.invalid).toEqual([]);

    // Pending rows survive a read-model rebuild (the outbox is not a read model: no history re-sent).
    await ssf.setStatus(streamId, 'paused');
    const held = await issue('grace');
    await revoke(held.family_id, 'admin');
    await outboxCaughtUp();
    const before = await outbox(streamId);
    expect(before).toHaveLength(2); // stream-updated (paused) + the revocation
    await rebuildProjections(ledger.runtime.store, ALL_PROJECTIONS);
    expect(await outbox(streamId)).toEqual(before);
    await ssf.setStatus(streamId, 'enabled');
    await marker(streamId, rp, 'after-rebuild');
    expect(rp.ofType(CAEP_SESSION_REVOKED).map((s) => s.payload.family_id)).toEqual([...revoked, held.family_id]);
  });

  it('a burst of 200 revocations at once arrives complete and in store order; a 503 in the middle of a window holds back everything after it', async () => {
    const burst = await api.registerClient({ clientId: 'ssf-burst', maxFamiliesPerSubject: 300 });
    const rp = await receiver('https://rp-burst.example');
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: ['https://rp-burst.example'], events: [CAEP_SESSION_REVOKED] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'ivan' });
    const families: { family_id: string }[] = [];
    for (let i = 0; i < 200; i += 20) families.push(...(await Promise.all(Array.from({ length: 20 }, () => api.issue({ subject: 'ivan', clientId: burst.clientId, scope: 'api:read' })))));
    await Promise.all(families.map((f) => revoke(f.family_id, 'admin')));
    await marker(streamId, rp, 'after-burst');
    const revoked = rp.ofType(CAEP_SESSION_REVOKED).map((s) => s.payload.family_id as string);
    const storeOrder = async (ids: Set<string>) =>
      (await ledger.store.readAll({})).filter((e) => e.type === 'TokenFamilyRevoked' && ids.has((e.metadata as { familyId: string }).familyId)).map((e) => (e.metadata as { familyId: string }).familyId);
    expect(revoked).toHaveLength(200); // each once: no crash, so no re-send
    expect(revoked).toEqual(await storeOrder(new Set(families.map((f) => f.family_id))));
    await eventually(async () => (await outbox(streamId)).length === 0, 'the delivered rows deleted');

    // Held while paused, so the pusher reads them as one window once enabled; the 10th is answered
    // 503 once: the ones before it are delivered, nothing after it is sent before it.
    await ssf.setStatus(streamId, 'paused');
    const held = await Promise.all(Array.from({ length: 20 }, () => api.issue({ subject: 'ivan', clientId: burst.clientId, scope: 'api:read' })));
    for (const f of held) await revoke(f.family_id, 'admin');
    await outboxCaughtUp();
    const heldOrder = await storeOrder(new Set(held.map((f) => f.family_id)));
    const failing = heldOrder[9];
    let failed = 0;
    rp.answerFor = (set) => (set.payload.family_id === failing && failed++ === 0 ? 503 : undefined);
    const attemptsBefore = rp.attempts.length;
    await ssf.setStatus(streamId, 'enabled');
    await marker(streamId, rp, 'after-window');
    expect(failed).toBeGreaterThanOrEqual(2); // answered 503, then accepted on the retry
    const tried = rp.attempts.slice(attemptsBefore).filter((a) => a.set?.type === CAEP_SESSION_REVOKED).map((a) => `${a.set!.payload.family_id as string}:${a.status}`);
    expect(tried).toEqual([...heldOrder.slice(0, 9).map((id) => `${id}:202`), `${failing}:503`, `${failing}:202`, ...heldOrder.slice(10).map((id) => `${id}:202`)]);
    expect(rp.ofType(CAEP_SESSION_REVOKED).map((s) => s.payload.family_id).slice(200)).toEqual(heldOrder);
    expect(rp.invalid).toEqual([]);
  });

  it('poll (RFC 8936): returns signed SETs in order, moreAvailable, ack and setErrs remove them, long poll wakes on a revocation', async () => {
    const aud = 'https://rp-poll.example';
    const streamId = await ssf.createPoll({ aud: [aud] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'frank' });
    const families = [await issue('frank'), await issue('frank'), await issue('frank')];
    for (const f of families) await revoke(f.family_id, 'admin');
    await outboxCaughtUp();
    const jwks = createRemoteJWKSet(new URL(`${ledger.baseUrl}/.well-known/jwks.json`));
    const poll = async (body: unknown, token = ADMIN_TOKEN) => {
      const res = await fetch(`${ledger.baseUrl}/ssf/poll/${streamId}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { sets: Record<string, string>; moreAvailable: boolean } };
    };
    const verify = async (sets: Record<string, string>) =>
      Promise.all(
        Object.entries(sets).map(async ([jti, set]) => {
          const { payload } = await jwtVerify(set, jwks, { issuer: ledger.baseUrl, audience: aud, typ: 'secevent+jwt' });
          expect(payload.jti).toBe(jti);
          expect(payload).not.toHaveProperty('sub');
          expect(payload).not.toHaveProperty('exp');
          return (payload.events as Record<string, { family_id: string }>)[CAEP_SESSION_REVOKED].family_id;
        }),
      );

    const first = await poll({ maxEvents: 2, returnImmediately: true });
    expect(first.status).toBe(200);
    expect(first.body.moreAvailable).toBe(true);
    expect(await verify(first.body.sets)).toEqual(families.slice(0, 2).map((f) => f.family_id));
    // Not acknowledged: returned again.
    const again = await poll({ maxEvents: 2, returnImmediately: true });
    expect(Object.keys(again.body.sets)).toEqual(Object.keys(first.body.sets));
    const rest = await poll({ ack: Object.keys(first.body.sets), maxEvents: 10, returnImmediately: true });
    expect(rest.body.moreAvailable).toBe(false);
    expect(await verify(rest.body.sets)).toEqual([families[2].family_id]);
    const [lastJti] = Object.keys(rest.body.sets);
    const empty = await poll({ setErrs: { [lastJti]: { err: 'invalid_key', description: 'cannot verify' } }, returnImmediately: true });
    expect(empty.body).toEqual({ sets: {}, moreAvailable: false });
    expect(await outbox(streamId)).toEqual([]);

    // Long poll: nothing pending, so it waits; a revocation wakes it.
    const late = await issue('frank');
    const waiting = poll({ maxEvents: 5 });
    await new Promise((r) => setTimeout(r, 200));
    await revoke(late.family_id, 'logout');
    const woken = await waiting;
    expect(await verify(woken.body.sets)).toEqual([late.family_id]);

    // Errors: unknown stream 404, a push stream 400, no key 401, a bad body 400.
    const unknown = await fetch(`${ledger.baseUrl}/ssf/poll/nope`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    expect(unknown.status).toBe(404);
    const pushStream = await ssf.createPush({ endpointUrl: 'http://127.0.0.1:9/none' });
    await outboxCaughtUp();
    const wrong = await fetch(`${ledger.baseUrl}/ssf/poll/${pushStream}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{"returnImmediately":true}' });
    expect(wrong.status).toBe(400);
    expect((await poll({ returnImmediately: true }, 'not-a-key')).status).toBe(401);
    expect((await poll({ maxEvents: -1 })).status).toBe(400);
    const metrics = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/token_ledger_ssf_poll_sets_total\{outcome="acked"\} 2/);
    expect(metrics).toMatch(/token_ledger_ssf_poll_sets_total\{outcome="set_error"\} 1/);
  });
}
