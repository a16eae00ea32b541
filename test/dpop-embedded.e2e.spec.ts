import { LedgerClient, startLedger } from './support/ledger-harness';
import { dpopKey, dpopSuite, handProof } from './support/dpop-suite';

describe('DPoP (RFC 9449) over HTTP on the embedded (PGlite) store', () => {
  dpopSuite(() => ({ kind: 'embedded' }));
});

describe('DPoP with a replay cache that cannot be reached', () => {
  it('answers 503 temporarily_unavailable with Retry-After, never accepting the proof unchecked; requests without DPoP go on', async () => {
    const ledger = await startLedger({ env: { LEDGER_ANOMALY_ENGINE: 'off', LEDGER_REDIS_URL: 'redis://127.0.0.1:1' } });
    try {
      const api = new LedgerClient(ledger.baseUrl);
      await api.registerClient({ clientId: 'spa', type: 'public' });
      const key = await dpopKey();
      const bound = await api.issue({ subject: 'jo', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
      const res = await api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: bound.refresh_token }, { clientId: 'spa' }, { dpop: await handProof(key, `${ledger.baseUrl}/oauth/token`) });
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('temporarily_unavailable');
      expect(res.headers.get('retry-after')).toBe('1');
      const unbound = await api.issue({ subject: 'jo', clientId: 'spa', scope: 'api:read' });
      expect((await api.refresh(unbound.refresh_token, { clientId: 'spa' })).status).toBe(200);
    } finally {
      await ledger.destroy();
    }
  });
});
