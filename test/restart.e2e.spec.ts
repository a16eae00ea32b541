import { LedgerClient, startLedger } from './support/ledger-harness';

describe('embedded store across a restart', () => {
  it('keeps families, clients and signing keys', async () => {
    const first = await startLedger();
    let api = new LedgerClient(first.baseUrl);
    const client = await api.registerClient({ clientId: 'durable' });
    const issued = await api.issue({ subject: 'rita', clientId: 'durable', scope: 'api:read' });
    const jwksBefore = (await (await fetch(`${first.baseUrl}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    await first.stop();

    // Same data directory and the same issuer URL: a restarted service, not a new one.
    const port = new URL(first.baseUrl).port;
    const second = await startLedger({ dataDir: first.dataDir, env: { PORT: port, LEDGER_ISSUER: first.baseUrl } });
    try {
      api = new LedgerClient(second.baseUrl);
      const jwksAfter = (await (await fetch(`${second.baseUrl}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      expect(jwksAfter.keys.map((k: { kid: string }) => k.kid)).toEqual(jwksBefore.keys.map((k: { kid: string }) => k.kid));
      const refreshed = await api.refresh(issued.refresh_token, client);
      expect(refreshed.status).toBe(200);
      // The access token minted before the restart still introspects as active.
      expect((await api.form('/oauth/introspect', { token: issued.access_token }, client)).body.active).toBe(true);
    } finally {
      await second.destroy();
    }
  });
});
