import { familyStreamId } from '@token-ledger/envelope';
import { FailingAppends } from './support/failing-appends';
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

describe('DPoP: the proof is spent before the rotation is decided', () => {
  it.each(['lost', 'ackLost'] as const)(
    'a rotation whose append is %s answers 503; the same proof is then refused, a new one refreshes, and the family rotated once',
    async (mode) => {
      const failing = new FailingAppends();
      const ledger = await startLedger({ env: { LEDGER_ANOMALY_ENGINE: 'off' }, wrapStore: (s) => failing.wrap(s) });
      try {
        const api = new LedgerClient(ledger.baseUrl);
        const htu = `${ledger.baseUrl}/oauth/token`;
        await api.registerClient({ clientId: 'spa', type: 'public', reuseGraceSeconds: 30 });
        const key = await dpopKey();
        const issued = await api.issue({ subject: 'kim', clientId: 'spa', scope: 'api:read', dpopJkt: key.jkt });
        const refresh = (proof: string) => api.form('/oauth/token', { grant_type: 'refresh_token', refresh_token: issued.refresh_token }, { clientId: 'spa' }, { dpop: proof });

        const proof = await handProof(key, htu);
        failing.arm(1, mode);
        const broken = await refresh(proof);
        expect(failing.fired).toBe(true);
        expect(broken.status).toBe(503);
        expect(broken.headers.get('retry-after')).not.toBeNull();

        expect((await refresh(proof)).body.error_description).toMatch(/already been used/);
        const retried = await refresh(await handProof(key, htu));
        expect(retried.status).toBe(200);
        expect(retried.body.token_type).toBe('DPoP');
        const types = (await ledger.store.readStream(familyStreamId(issued.family_id))).map((e) => e.type);
        // 'lost': nothing was written, the retry rotates; 'ackLost': the rotation was written, the retry is its grace replay.
        expect(types).toEqual(mode === 'lost' ? ['TokenFamilyIssued', 'TokenRotated'] : ['TokenFamilyIssued', 'TokenRotated', 'TokenRotationReplayed']);
      } finally {
        await ledger.destroy();
      }
    },
  );
});
