import { decodeProtectedHeader } from 'jose';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';

describe('signing-key rotation (keys rotate)', () => {
  let ledger: Ledger;
  afterAll(() => ledger?.destroy());

  it('publishes the new key, keeps the retired one while its tokens live, and signs with the new one', async () => {
    ledger = await startLedger();
    const api = new LedgerClient(ledger.baseUrl);
    const client = await api.registerClient({ clientId: 'rotating' });
    const before = await api.issue({ subject: 'kim', clientId: 'rotating', scope: 'api:read' });
    const oldKid = decodeProtectedHeader(before.access_token).kid;

    const { kid: newKid } = await ledger.runtime.keyRing.rotate();
    expect(newKid).not.toBe(oldKid);

    const jwks = (await (await fetch(`${ledger.baseUrl}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    for (const key of jwks.keys) for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key[member]).toBeUndefined();

    expect((await api.form('/oauth/introspect', { token: before.access_token }, client)).body.active).toBe(true);
    const refreshed = await api.refresh(before.refresh_token, client);
    expect(decodeProtectedHeader(refreshed.body.access_token).kid).toBe(newKid);
  });
});
