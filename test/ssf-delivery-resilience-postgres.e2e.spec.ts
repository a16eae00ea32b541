import { CAEP_SESSION_REVOKED, SSF_VERIFICATION } from '@token-ledger/domain';
import { openEventStore, type OpenedStore } from '@token-ledger/event-store';
import { describeWithBackend } from './backends';
import { freshDatabase } from './support/fresh-database';
import { eventually } from './support/eventually';
import { freePort } from './support/free-port';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';
import { spawnLedger, type LedgerProcess } from './support/ledger-process';
import { SsfApi } from './support/ssf-api';
import { SsfReceiver, type ReceivedSet } from './support/ssf-receiver';

/**
 * Push delivery when things go wrong, on PostgreSQL: a receiver down for a real minute, a `serve`
 * process SIGKILLed with SETs pending (and again mid-delivery), two instances on one database.
 */
const AUD = 'https://rp-resilience.example';
/** Receivers on http://127.0.0.1 (tests only), and verification markers a second apart at most. */
const SSF_ENV = { LEDGER_SSF_ALLOW_INSECURE_PUSH: 'true', LEDGER_SSF_MIN_VERIFICATION_INTERVAL_SECONDS: '1' };

/** The family ids of the session-revoked SETs, in the order they first arrived, and whether every copy of a SET kept its jti. */
function firstArrivals(received: readonly ReceivedSet[]): { familyIds: string[]; jtiStable: boolean; duplicates: number } {
  const jtiOf = new Map<string, string>();
  const familyIds: string[] = [];
  let jtiStable = true;
  let duplicates = 0;
  for (const s of received) {
    if (s.type !== CAEP_SESSION_REVOKED) continue;
    const id = s.payload.family_id as string;
    const seen = jtiOf.get(id);
    if (seen === undefined) {
      jtiOf.set(id, s.jti);
      familyIds.push(id);
    } else {
      duplicates++;
      if (seen !== s.jti) jtiStable = false;
    }
  }
  return { familyIds, jtiStable, duplicates };
}

describeWithBackend('postgres', 'SSF push delivery: outages, restarts, two instances (PostgreSQL)', (url) => {
  const cleanUps: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanUps.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('a receiver down for a minute (refused connections, then 503) receives everything, in order, once it is back', async () => {
    const ledger = await startLedger({ store: { kind: 'postgres', url }, env: { LEDGER_ANOMALY_ENGINE: 'off', LEDGER_SSF_RETRY_MIN_MS: '200', LEDGER_SSF_RETRY_MAX_MS: '3000', ...SSF_ENV } });
    cleanUps.push(() => ledger.destroy());
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'outage', maxFamiliesPerSubject: 100 });
    const rp = new SsfReceiver(ledger.baseUrl, AUD);
    await rp.start();
    cleanUps.push(() => rp.close());
    const ssf = new SsfApi(ledger.baseUrl);
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: [AUD] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: ledger.baseUrl, sub: 'outage-user' });

    const revoked: string[] = [];
    const revokeSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const f = await api.issue({ subject: 'outage-user', clientId: client.clientId, scope: 'api:read' });
        expect((await api.admin('POST', `/v1/families/${f.family_id}/revoke`, { reason: 'admin' })).status).toBe(200);
        revoked.push(f.family_id);
      }
    };
    await rp.setMode({ kind: 'down' });
    await revokeSome(10);
    await new Promise((r) => setTimeout(r, 30_000)); // the outage lasts: half a minute of refused connections
    await rp.setMode({ kind: 'status', status: 503 });
    await revokeSome(10);
    await new Promise((r) => setTimeout(r, 30_000)); // and half a minute of 503
    expect(rp.received).toEqual([]);
    expect(rp.attempts.length).toBeGreaterThan(3); // it kept trying (the 503 half)
    await rp.setMode({ kind: 'accept' });
    await eventually(() => firstArrivals(rp.received).familyIds.length === 20, 'all 20 SETs after the outage', 30_000);
    const { familyIds, duplicates } = firstArrivals(rp.received);
    expect(familyIds).toEqual(revoked);
    expect(duplicates).toBe(0);
    expect(rp.invalid).toEqual([]);
  }, 180_000);

  describe('a real serve process', () => {
    let db: { url: string; drop: () => Promise<void> };
    let store: OpenedStore;
    let server: LedgerProcess | undefined;
    let env: Record<string, string>;
    let port: number;

    beforeEach(async () => {
      db = await freshDatabase(url, 'tl_ssf');
      // Same port (so issuer) after the restart: the receiver checks iss and fetches the JWKS there.
      port = await freePort();
      env = {
        LEDGER_STORE: 'postgres',
        DATABASE_URL: db.url,
        LEDGER_ANOMALY_ENGINE: 'off',
        LEDGER_SSF_RETRY_MIN_MS: '100',
        LEDGER_SSF_RETRY_MAX_MS: '500',
        ...SSF_ENV,
      };
      server = await spawnLedger(env, 150_000, port);
      store = await openEventStore({ store: 'postgres', url: db.url });
    }, 180_000);
    afterEach(async () => {
      await server?.kill();
      await store?.close();
      await db?.drop();
    }, 60_000);

    it('SIGKILLed with SETs pending, and again mid-delivery: after the restart every SET arrives, no gap, duplicates keep their jti', async () => {
      const issuer = server!.baseUrl;
      const api = new LedgerClient(issuer);
      const client = await api.registerClient({ clientId: 'sigkill-ssf', maxFamiliesPerSubject: 200 });
      const rp = new SsfReceiver(issuer, AUD);
      await rp.start();
      cleanUps.push(() => rp.close());
      const ssf = new SsfApi(issuer);
      const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: [AUD] });
      await ssf.addSubject(streamId, { format: 'iss_sub', iss: issuer, sub: 'kill-user' });
      const revoked: string[] = [];
      const revokeSome = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const f = await api.issue({ subject: 'kill-user', clientId: client.clientId, scope: 'api:read' });
          expect((await api.admin('POST', `/v1/families/${f.family_id}/revoke`, { reason: 'admin' })).status).toBe(200);
          revoked.push(f.family_id);
        }
      };
      const pending = async () => {
        const [row] = await store.capabilities.sql!.query<{ n: string }>('select count(*) as n from ssf_outbox where stream_id = $1', [streamId]);
        return Number(row.n);
      };

      // 1. The receiver answers 503: rows pile up in the outbox; SIGKILL with them pending.
      await rp.setMode({ kind: 'status', status: 503 });
      await revokeSome(15);
      await eventually(async () => (await pending()) === 15, '15 pending rows');
      await server!.kill();
      await rp.setMode({ kind: 'accept' });
      server = await spawnLedger(env, 150_000, port);
      await eventually(() => firstArrivals(rp.received).familyIds.length === 15, 'the 15 pending SETs after the restart', 30_000);

      // 2. The receiver accepts: SIGKILL right after the last revocation's answer, mid-delivery.
      await revokeSome(30);
      await server.kill();
      server = await spawnLedger(env, 150_000, port);
      await ssf.verify(streamId, 'after-restart');
      await eventually(() => rp.ofType(SSF_VERIFICATION).length === 1, 'the marker after the second restart', 30_000);

      const { familyIds, jtiStable, duplicates } = firstArrivals(rp.received);
      expect(familyIds).toEqual(revoked); // all 45, in revocation order: no gap
      expect(jtiStable).toBe(true);
      console.log(`SIGKILL test: ${rp.received.length} SETs received, ${duplicates} duplicate(s) (same jti)`);
      expect(rp.invalid).toEqual([]);
      expect(await pending()).toBe(0);
    }, 600_000);
  });

  it('two instances on one database: each SET delivered once in steady state, in order', async () => {
    const a = await startLedger({ store: { kind: 'postgres', url }, env: { LEDGER_ANOMALY_ENGINE: 'off', ...SSF_ENV } });
    cleanUps.push(() => a.destroy());
    const b: Ledger = await startLedger({ store: { kind: 'postgres', url }, schema: a.schema, env: { LEDGER_ANOMALY_ENGINE: 'off', LEDGER_ISSUER: a.baseUrl, ...SSF_ENV } });
    cleanUps.push(() => b.stop());
    const apiA = new LedgerClient(a.baseUrl);
    const apiB = new LedgerClient(b.baseUrl);
    const client = await apiA.registerClient({ clientId: 'two-nodes', maxFamiliesPerSubject: 200 });
    const rp = new SsfReceiver(a.baseUrl, AUD);
    await rp.start();
    cleanUps.push(() => rp.close());
    const ssf = new SsfApi(a.baseUrl);
    const streamId = await ssf.createPush({ endpointUrl: rp.url, aud: [AUD] });
    await ssf.addSubject(streamId, { format: 'iss_sub', iss: a.baseUrl, sub: 'two-nodes-user' });

    const revoked: string[] = [];
    for (let i = 0; i < 40; i++) {
      const api = i % 2 === 0 ? apiA : apiB;
      const f = await api.issue({ subject: 'two-nodes-user', clientId: client.clientId, scope: 'api:read' });
      expect((await api.admin('POST', `/v1/families/${f.family_id}/revoke`, { reason: 'admin' })).status).toBe(200);
      revoked.push(f.family_id);
    }
    await ssf.verify(streamId, 'done');
    await eventually(() => rp.ofType(SSF_VERIFICATION).length === 1, 'the marker');
    const { familyIds, duplicates } = firstArrivals(rp.received);
    expect(familyIds).toEqual(revoked);
    expect(duplicates).toBe(0);
    expect(rp.received).toHaveLength(41);
    expect(rp.invalid).toEqual([]);
  }, 120_000);
});
