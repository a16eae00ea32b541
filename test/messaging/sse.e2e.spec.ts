import { readSse, type SseMessage } from '@token-ledger/verifier';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { startRevocationsApp } from './revocations-app';
import { eventually } from './support';

jest.setTimeout(60_000);

describe('GET /v1/revocations/stream (SSE, in-process feed)', () => {
  let ledger: Ledger;
  let sse: Awaited<ReturnType<typeof startRevocationsApp>>;
  let client: LedgerClient;

  beforeAll(async () => {
    ledger = await startLedger();
    sse = await startRevocationsApp(ledger, { kafkaBrokers: null });
    client = new LedgerClient(ledger.baseUrl);
    await client.registerClient({ clientId: 'sse-app' });
  });
  afterAll(async () => {
    await sse?.close();
    await ledger?.destroy();
  });

  function open(headers: Record<string, string> = {}, query = '') {
    const messages: SseMessage[] = [];
    const controller = new AbortController();
    const done = readSse(`${sse.baseUrl}/v1/revocations/stream?heartbeatMs=200${query}`, { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers }, { onMessage: (m) => messages.push(m) }, controller.signal).catch(() => undefined);
    return { messages, close: async () => { controller.abort(); await done; } };
  }

  it('is admin-guarded', async () => {
    const res = await fetch(`${sse.baseUrl}/v1/revocations/stream`);
    expect(res.status).toBe(401);
  });

  it('streams revocations live with id = store position, resumes with Last-Event-ID, and a new client gets the active set', async () => {
    const a = await client.issue({ subject: 'sse-alice', clientId: 'sse-app', scope: 'api:read' });
    const b = await client.issue({ subject: 'sse-bob', clientId: 'sse-app', scope: 'api:read' });
    const first = open();
    await eventually(() => first.messages.some((m) => m.event === 'ready'), 'ready');
    expect((await client.admin('POST', `/v1/families/${a.family_id}/revoke`, { reason: 'logout' })).status).toBeLessThan(300);
    await eventually(() => first.messages.some((m) => m.event === 'revocation'), 'first revocation');
    const rec = first.messages.find((m) => m.event === 'revocation')!;
    const body = JSON.parse(rec.data);
    expect(body).toEqual(expect.objectContaining({ familyId: a.family_id, subject: 'sse-alice', reason: 'logout', revokedAt: expect.any(String), accessTokensValidUntil: expect.any(String) }));
    expect(rec.id).toBe(String(body.position));
    await first.close();

    // Missed while disconnected: replayed from the store after Last-Event-ID.
    await client.admin('POST', `/v1/families/${b.family_id}/revoke`, { reason: 'admin' });
    const resumed = open({ 'last-event-id': rec.id! });
    await eventually(() => resumed.messages.some((m) => m.event === 'ready'), 'ready after resume');
    const replayed = resumed.messages.filter((m) => m.event === 'revocation').map((m) => JSON.parse(m.data).familyId);
    expect(replayed).toEqual([b.family_id]);
    await resumed.close();

    // A new client without Last-Event-ID: the active set first.
    const fresh = open();
    await eventually(() => fresh.messages.some((m) => m.event === 'ready'), 'ready (fresh)');
    const active = fresh.messages.filter((m) => m.event === 'revocation').map((m) => JSON.parse(m.data).familyId);
    expect(active).toEqual([a.family_id, b.family_id]);
    // Keep-alives carry on.
    const n = fresh.messages.length;
    await client.admin('POST', `/v1/subjects/sse-carol/revoke`, { reason: 'password_change' });
    await new Promise((r) => setTimeout(r, 500));
    expect(fresh.messages.length).toBeGreaterThanOrEqual(n);
    await fresh.close();
  });
});
