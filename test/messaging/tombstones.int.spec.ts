import { randomBytes } from 'node:crypto';
import { dropPostgresSchema, openEventStore, sqlBacked } from '@token-ledger/event-store';
import { RevocationTombstones } from '@token-ledger/messaging';
import { describeWithBackend } from '../backends';
import { eventually, familyEvent } from './support';

jest.setTimeout(60_000);

const iso = (ms: number) => new Date(ms).toISOString();

describeWithBackend('postgres', 'RevocationTombstones (PostgreSQL store)', (url) => {
  it('tombstones each key once accessTokensValidUntil has passed, and rebuilds what is pending from the store after a restart', async () => {
    const schema = `tl_tomb_${randomBytes(5).toString('hex')}`;
    const store = sqlBacked(await openEventStore({ store: 'postgres', url, schema }), 'tombstones');
    const sent: string[][] = [];
    const make = () =>
      new RevocationTombstones(store, {
        name: 'test-tombstones',
        maxAccessTokenTtlSeconds: 3600,
        subjectHash: (s) => `h(${s})`,
        marginMs: 0,
        sweepMs: 100,
        tombstone: async (keys) => void sent.push(keys),
      });
    const now = Date.now();
    try {
      await store.append('family-fam_a', [familyEvent('TokenFamilyRevoked', 'fam_a', 'alice', { reason: 'logout', revokedAt: iso(now), accessTokensValidUntil: iso(now + 800) })], { expectedRevision: 'any' });
      await store.append('family-fam_b', [familyEvent('TokenFamilyRevoked', 'fam_b', 'bob', { reason: 'admin', revokedAt: iso(now), accessTokensValidUntil: iso(now + 3600_000) })], { expectedRevision: 'any' });
      await store.append('family-fam_c', [familyEvent('AccessTokenRevoked', 'fam_c', 'carol', { jti: 'j1', expiresAt: iso(now - 1000) })], { expectedRevision: 'any' });
      const first = make();
      await first.start();
      // Already due at start: tombstoned by the first sweep; fam_a once its time has come; fam_b waits.
      expect(sent.flat()).toEqual(['fam_c:j1']);
      await eventually(() => sent.flat().includes('fam_a'), 'fam_a tombstoned');
      expect(Date.now()).toBeGreaterThanOrEqual(now + 800);
      expect(first.pending).toBe(1);
      await first.stop();

      // Restart: nothing done twice, fam_b pending again (rebuilt from the store, not memory).
      sent.length = 0;
      const second = make();
      await second.start();
      expect(second.pending).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(sent.flat()).toEqual([]);
      // A record published meanwhile (tracked by the propagator) is due at its own time.
      second.track([{ familyId: 'fam_d', subjectHash: 'h', reason: 'admin', revokedAt: iso(Date.now()), accessTokensValidUntil: iso(Date.now() + 200), eventId: 'e', position: 99 }]);
      await eventually(() => sent.flat().includes('fam_d'), 'fam_d tombstoned');
      expect(sent.flat()).toEqual(['fam_d']);
      await second.stop();
    } finally {
      await store.close();
      await dropPostgresSchema(url, schema);
    }
  });
});
