import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger, type StoreKind } from './ledger-harness';
import { call, createKey } from './api-keys-suite';

/**
 * The server side of the analyst console (issue 18) over real HTTP on a real store: who am I, the
 * family's hash-chain verification, anomaly triage recorded as events (also under concurrency),
 * the overview series, places on the timeline and the console's static files.
 */
export function consoleApiSuite(storeKind: () => StoreKind, env: Record<string, string> = {}): void {
  let ledger: Ledger;
  let api: LedgerClient;
  let base: string;
  let reader: { keyId: string; key: string };
  let issuer: { keyId: string; key: string };
  let app: { clientId: string; secret: string };

  beforeAll(async () => {
    ledger = await startLedger({ store: storeKind(), env });
    api = new LedgerClient(ledger.baseUrl);
    base = ledger.baseUrl;
    app = await api.registerClient({ clientId: 'console-app', reuseGraceSeconds: 0 });
    reader = await createKey(base, { name: 'analyst', scopes: ['audit:read'] });
    issuer = await createKey(base, { name: 'login service', scopes: ['families:issue'] });
  });
  afterAll(async () => {
    await ledger?.destroy();
  });

  describe('GET /v1/api-keys/self', () => {
    it('names the calling key and its scopes, whatever they are', async () => {
      const me = await call(base, issuer.key, 'GET', '/v1/api-keys/self');
      expect(me.status).toBe(200);
      expect(me.body).toEqual({ keyId: issuer.keyId, name: 'login service', scopes: ['families:issue'], principal: 'api-key' });
      expect((await call(base, reader.key, 'GET', '/v1/api-keys/self')).body).toMatchObject({ keyId: reader.keyId, scopes: ['audit:read'] });
      expect((await call(base, ADMIN_TOKEN, 'GET', '/v1/api-keys/self')).body).toEqual({ keyId: null, name: null, scopes: ['admin'], principal: 'admin-token' });
    });

    it('refuses a missing, unknown or revoked key with 401 problem+json', async () => {
      const gone = await createKey(base, { name: 'short-lived', scopes: ['audit:read'] });
      expect((await call(base, ADMIN_TOKEN, 'POST', `/v1/api-keys/${gone.keyId}/revoke`)).status).toBe(200);
      for (const bearer of [undefined, 'tlk_nonsense', gone.key]) {
        const res = await call(base, bearer, 'GET', '/v1/api-keys/self');
        expect(res.status).toBe(401);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
    });
  });

  describe('GET /v1/families/{id}/verification', () => {
    it("checks the family's hash chain: intact, then broken after an edit in the store", async () => {
      const fam = await api.issue({ subject: 'verify-me', clientId: 'console-app', scope: 'api:read' });
      const r1 = await api.refresh(fam.refresh_token, app);
      expect(r1.status).toBe(200);
      const ok = await call(base, reader.key, 'GET', `/v1/families/${fam.family_id}/verification`);
      expect(ok.status).toBe(200);
      // The harness sets no LEDGER_KEK unless env does: the chain is then intact but only self-consistent.
      expect(ok.body).toEqual({ familyId: fam.family_id, status: env.LEDGER_KEK ? 'ok' : 'unkeyed', checkedEvents: 2, problemCount: 0, problems: [] });

      const sql = ledger.runtime.readModels.sql;
      await sql.query(`update tl_events set metadata = jsonb_set(metadata, '{context}', '{"ip":"10.66.66.66"}') where stream_id = $1 and revision = 1`, [`family-${fam.family_id}`]);
      const broken = await call(base, reader.key, 'GET', `/v1/families/${fam.family_id}/verification`);
      expect(broken.status).toBe(200);
      expect(broken.body).toMatchObject({ familyId: fam.family_id, status: 'broken', checkedEvents: 2 });
      expect(broken.body.problems[0]).toMatchObject({ kind: 'altered', revision: 1, position: expect.any(Number) });
    });

    it('answers 404 for an unknown or malformed family, 401 without a key, 403 without audit:read', async () => {
      expect((await call(base, reader.key, 'GET', '/v1/families/fam_00000000000000000000000000/verification')).status).toBe(404);
      expect((await call(base, reader.key, 'GET', '/v1/families/nope/verification')).status).toBe(404);
      expect((await call(base, undefined, 'GET', '/v1/families/nope/verification')).status).toBe(401);
      const forbidden = await call(base, issuer.key, 'GET', '/v1/families/nope/verification');
      expect(forbidden.status).toBe(403);
      expect(forbidden.body).toMatchObject({ requiredScope: 'audit:read' });
    });
  });
}
