import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { readSse, type SseMessage } from '@token-ledger/verifier';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { startRevocationsApp } from './revocations-app';
import { eventually } from './support';

jest.setTimeout(90_000);

describe('GET /v1/revocations/stream (SSE, in-process feed)', () => {
  let ledger: Ledger;
  let sse: Awaited<ReturnType<typeof startRevocationsApp>>;
  let client: LedgerClient;

  beforeAll(async () => {
    // Max access-token TTL 2 s and no margin: the Last-Event-ID clamp is a few seconds back.
    ledger = await startLedger({ env: { LEDGER_MAX_ACCESS_TOKEN_TTL: '2' } });
    sse = await startRevocationsApp(ledger, { kafkaBrokers: null, heartbeatMs: 200, replayMarginSeconds: 0 });
    client = new LedgerClient(ledger.baseUrl);
    await client.registerClient({ clientId: 'sse-app', accessTokenTtl: 2 });
  });
  afterAll(async () => {
    await sse?.close();
    await ledger?.destroy();
  });

  function open(headers: Record<string, string> = {}, query = '') {
    const messages: SseMessage[] = [];
    const controller = new AbortController();
    const state = { ended: false };
    const done = readSse(`${sse.baseUrl}/v1/revocations/stream?heartbeatMs=200${query}`, { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers }, { onMessage: (m) => messages.push(m) }, controller.signal)
      .catch(() => undefined)
      .finally(() => (state.ended = true));
    return { messages, state, close: async () => { controller.abort(); await done; } };
  }
  /** The payload of a signed message, verified against the ledger's JWKS (and its typ checked). */
  async function verified(m: SseMessage, typ: string): Promise<any> {
    const jwks = createLocalJWKSet(ledger.runtime.keyRing.jwks());
    const { payload, protectedHeader } = await compactVerify(m.data, jwks);
    expect(protectedHeader).toEqual({ alg: 'ES256', kid: ledger.runtime.keyRing.activeKid, typ });
    return JSON.parse(Buffer.from(payload).toString());
  }
  const records = (ms: SseMessage[]) => Promise.all(ms.filter((m) => m.event === 'revocation').map((m) => verified(m, 'revocation+jwt')));

  it('is admin-guarded', async () => {
    const res = await fetch(`${sse.baseUrl}/v1/revocations/stream`);
    expect(res.status).toBe(401);
  });

  it('streams signed revocations live with id = store position, resumes with Last-Event-ID, and a new client gets the active set', async () => {
    const a = await client.issue({ subject: 'sse-alice', clientId: 'sse-app', scope: 'api:read' });
    const b = await client.issue({ subject: 'sse-bob', clientId: 'sse-app', scope: 'api:read' });
    const first = open();
    await eventually(() => first.messages.some((m) => m.event === 'ready'), 'ready');
    expect((await client.admin('POST', `/v1/families/${a.family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    await eventually(() => first.messages.some((m) => m.event === 'revocation'), 'first revocation');
    const rec = first.messages.find((m) => m.event === 'revocation')!;
    const body = await verified(rec, 'revocation+jwt');
    expect(body).toEqual(
      expect.objectContaining({ familyId: a.family_id, subjectHash: ledger.runtime.secrets.subjectHash('sse-alice'), reason: 'logout', revokedAt: expect.any(String), accessTokensValidUntil: expect.any(String) }),
    );
    expect(body).not.toHaveProperty('subject');
    expect(Buffer.from(rec.data.split('.')[1], 'base64url').toString()).not.toContain('sse-alice');
    expect(rec.id).toBe(String(body.position));
    await first.close();

    // Missed while disconnected: replayed from the store after Last-Event-ID (signed too).
    await client.admin('POST', `/v1/families/${b.family_id}/revoke`, { reason: 'admin' });
    const resumed = open({ 'last-event-id': rec.id! });
    await eventually(() => resumed.messages.some((m) => m.event === 'ready'), 'ready after resume');
    expect((await records(resumed.messages)).map((r) => r.familyId)).toEqual([b.family_id]);
    await resumed.close();

    // A new client without Last-Event-ID: the hub's active set, then live records. The hub follows
    // the store (the embedded store wakes its subscribers 50 ms after an append), so b may come in
    // the set or just after `ready`, live — each exactly once either way.
    const fresh = open();
    await eventually(() => fresh.messages.some((m) => m.event === 'ready'), 'ready (fresh)');
    await eventually(async () => (await records(fresh.messages)).length >= 2, 'both revocations (fresh)');
    expect((await records(fresh.messages)).map((r) => r.familyId)).toEqual([a.family_id, b.family_id]);
    await fresh.close();
  });

  it('a revocation made while nobody listened is in the next connection\'s replay, before ready (the feed reads lazily without listeners)', async () => {
    const fam = await client.issue({ subject: 'sse-carol', clientId: 'sse-app', scope: 'api:read' });
    await new Promise((r) => setTimeout(r, 400)); // the hub has read the issue: its next read waits for the next append
    expect((await client.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    // Without a listener the hub reads at most every 100 ms: it has not seen the revocation yet.
    expect(sse.service.hub.position).toBeLessThan(await ledger.store.headPosition());
    const s = open();
    await eventually(() => s.messages.some((m) => m.event === 'ready'), 'ready');
    const ready = s.messages.findIndex((m) => m.event === 'ready');
    const replayed = await records(s.messages.slice(0, ready));
    expect(replayed.map((r) => r.familyId)).toContain(fam.family_id);
    await s.close();
  });

  it('sends a signed heartbeat {position, at} every interval while the hub feed keeps up, and none once it stalls', async () => {
    const s = open();
    await eventually(() => s.messages.filter((m) => m.event === 'heartbeat').length >= 4, 'heartbeats', 10_000);
    const beats = await Promise.all(s.messages.filter((m) => m.event === 'heartbeat').map((m) => verified(m, 'revocation-heartbeat+jwt')));
    const head = await ledger.store.headPosition();
    for (const hb of beats) {
      expect(Number.isSafeInteger(hb.position) && hb.position <= head).toBe(true);
      expect(Date.now() - Date.parse(hb.at)).toBeLessThan(15_000);
    }
    const ats = beats.map((hb) => Date.parse(hb.at));
    expect([...ats].sort((x, y) => x - y)).toEqual(ats);
    // A typ of its own: a heartbeat cannot pass for a revocation record, nor the reverse.
    expect(decodeProtectedHeader(s.messages.find((m) => m.event === 'heartbeat')!.data).typ).toBe('revocation-heartbeat+jwt');

    // The hub's feed stops while the HTTP stream stays up: once the store moves on, no heartbeat.
    await sse.service.stopHubFeed();
    await client.issue({ subject: 'sse-erin', clientId: 'sse-app', scope: 'api:read' });
    const stalledAt = Date.now();
    const movedTo = await ledger.store.headPosition();
    // Absence takes a window to observe: six intervals. A beat checked just before the issue may
    // still be signed within one interval of it; none may come later, and none may claim the head.
    await new Promise((r) => setTimeout(r, 6 * 200));
    const allBeats = await Promise.all(s.messages.filter((m) => m.event === 'heartbeat').map((m) => verified(m, 'revocation-heartbeat+jwt')));
    expect(allBeats.filter((hb) => hb.position >= movedTo)).toEqual([]);
    expect(allBeats.filter((hb) => Date.parse(hb.at) > stalledAt + 200)).toEqual([]);
    expect(s.state.ended).toBe(false); // silent because stalled, not because the stream went away
    await s.close();
  });
});

describe('SSE Last-Event-ID clamp', () => {
  let ledger: Ledger;
  let sse: Awaited<ReturnType<typeof startRevocationsApp>>;
  let client: LedgerClient;

  beforeAll(async () => {
    ledger = await startLedger({ env: { LEDGER_MAX_ACCESS_TOKEN_TTL: '2' } });
    sse = await startRevocationsApp(ledger, { kafkaBrokers: null, heartbeatMs: 200, replayMarginSeconds: 0 });
    client = new LedgerClient(ledger.baseUrl);
    await client.registerClient({ clientId: 'clamp-app', accessTokenTtl: 2 });
  });
  afterAll(async () => {
    await sse?.close();
    await ledger?.destroy();
  });

  it('a far-back Last-Event-ID replays from now − max access-token TTL, not from the start of the store', async () => {
    const old = await client.issue({ subject: 'clamp-old', clientId: 'clamp-app', scope: 'api:read' });
    await client.admin('POST', `/v1/families/${old.family_id}/revoke`, { reason: 'logout' });
    await new Promise((r) => setTimeout(r, 3_500)); // past the 2 s max TTL
    const recent = await client.issue({ subject: 'clamp-new', clientId: 'clamp-app', scope: 'api:read' });
    await client.admin('POST', `/v1/families/${recent.family_id}/revoke`, { reason: 'logout' });

    // 20 clients reconnecting at once with a far-back id: each gets the clamped replay, nothing older.
    const replay = async () => {
      const messages: SseMessage[] = [];
      const controller = new AbortController();
      const done = readSse(`${sse.baseUrl}/v1/revocations/stream`, { authorization: `Bearer ${ADMIN_TOKEN}`, 'last-event-id': '0' }, { onMessage: (m) => messages.push(m) }, controller.signal).catch(() => undefined);
      await eventually(() => messages.some((m) => m.event === 'ready'), 'ready');
      controller.abort();
      await done;
      return messages.filter((m) => m.event === 'revocation').map((m) => JSON.parse(Buffer.from(m.data.split('.')[1], 'base64url').toString()).familyId);
    };
    const all = await Promise.all(Array.from({ length: 20 }, replay));
    for (const families of all) expect(families).toEqual([recent.family_id]);
  });
});
