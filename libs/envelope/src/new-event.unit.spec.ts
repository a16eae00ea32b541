import { toNewEvent } from './new-event';

describe('toNewEvent', () => {
  it('records who and why from the command metadata, never the command name the bus adds for metrics', () => {
    const event = {
      type: 'TokenFamilyRevoked' as const,
      familyId: 'fam_x',
      subject: 'alice',
      clientId: 'app',
      occurredAt: '2026-12-03T00:00:00.000Z',
      data: { reason: 'logout', revokedAt: '2026-12-03T00:00:00.000Z', accessTokensValidUntil: '2026-12-03T00:05:00.000Z' },
    };
    const stored = toNewEvent(event as never, { correlationId: 'c-1', actor: 'admin', causationId: undefined, command: 'revoke_family' }, 'e-1');
    expect(stored.metadata).toEqual({
      familyId: 'fam_x',
      subject: 'alice',
      clientId: 'app',
      occurredAt: '2026-12-03T00:00:00.000Z',
      schemaVersion: expect.any(Number),
      correlationId: 'c-1',
      actor: 'admin',
    });
  });
});
