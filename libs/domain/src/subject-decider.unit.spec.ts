import type { SubjectCommand, SubjectState } from './commands';
import { DomainError } from './errors';
import type { RevocationReason } from './events';
import { formatFamilyId } from './refresh-token';
import { decideSubject, evolveSubject, initialSubjectState } from './subject-decider';
import { deciderSpec } from './testing/decider-spec';

const T0 = Date.UTC(2025, 0, 1);
const F1 = formatFamilyId(Buffer.alloc(16, 1));
const F2 = formatFamilyId(Buffer.alloc(16, 2));
const F3 = formatFamilyId(Buffer.alloc(16, 3));

/** The subject decider on user-1's stream; the families to revoke are the result. */
const subject = deciderSpec({
  initialState: () => initialSubjectState('user-1'),
  evolve: evolveSubject,
  decide: (command: SubjectCommand, state: SubjectState) => {
    const { events, familiesToRevoke } = decideSubject(command, state);
    return { events, result: familiesToRevoke };
  },
});

const link = (familyId: string, clientId: string, now: number): SubjectCommand => ({ type: 'LinkFamily', subject: 'user-1', familyId, clientId, now });
const revoke = (reason: RevocationReason, now: number): SubjectCommand => ({ type: 'RevokeSubject', subject: 'user-1', reason, now });
const complete = (revokedFamilyIds: string[], now: number): SubjectCommand => ({
  type: 'CompleteSubjectRevocation',
  subject: 'user-1',
  reason: 'admin',
  revokedFamilyIds,
  now,
});
/** The subject and time every event of the stream carries. */
const header = (now: number) => ({ subject: 'user-1', occurredAt: new Date(now).toISOString() });

describe('subject decider', () => {
  it('links families in order', () => {
    subject
      .given()
      .when(link(F1, 'web', T0))
      .thenEvents([
        { type: 'FamilyLinkedToSubject', familyId: F1, clientId: 'web', ...header(T0), data: { familyId: F1, clientId: 'web' } },
      ])
      .next()
      .when(link(F2, 'mobile', T0 + 1))
      .thenState({
        v: 1,
        subject: 'user-1',
        families: [
          { familyId: F1, clientId: 'web', linkedAt: T0 },
          { familyId: F2, clientId: 'mobile', linkedAt: T0 + 1 },
        ],
      });
  });

  it('linking the same family twice is a no-op', () => {
    subject.given().after(link(F1, 'web', T0)).when(link(F1, 'web', T0 + 1)).thenNothingHappened();
  });

  it('RevokeSubject names every family linked since the last revocation, then starts afresh', () => {
    const again = subject
      .given()
      .after(link(F1, 'web', T0), link(F2, 'mobile', T0 + 1))
      .when(revoke('password_change', T0 + 2))
      .thenEvents([
        { type: 'SubjectRevoked', familyId: '', clientId: '', ...header(T0 + 2), data: { reason: 'password_change', familyIds: [F1, F2] } },
      ])
      .thenResult([
        { familyId: F1, clientId: 'web' },
        { familyId: F2, clientId: 'mobile' },
      ])
      .thenStateMatches({ families: [] })
      .next()
      .after(link(F3, 'web', T0 + 3))
      .when(revoke('admin', T0 + 4))
      .thenResult([{ familyId: F3, clientId: 'web' }]);
    expect(again.outcome().events[0]).toMatchObject({ data: { familyIds: [F3] } });
  });

  it('RevokeSubject with no families still records the revocation', () => {
    const { events } = subject.given().when(revoke('admin', T0)).thenResult([]).outcome();
    expect(events).toHaveLength(1);
  });

  it('completes a revocation only once every family linked since it was revoked', () => {
    // A login raced with the command: it must be revoked before completion.
    const raced = subject.given().after(link(F1, 'web', T0), revoke('admin', T0 + 1), link(F2, 'app', T0 + 2));
    raced.when(complete([F1], T0 + 3)).thenNothingHappened().thenResult([{ familyId: F2, clientId: 'app' }]);
    const completed = raced
      .when(complete([F1, F2], T0 + 4))
      .thenEvents([expect.objectContaining({ type: 'SubjectRevocationCompleted', data: { reason: 'admin', familyIds: [F2] } })])
      .thenResult([])
      .thenStateMatches({ families: [] })
      .next();
    // Logins after completion are ordinary again.
    expect(completed.after(link(F3, 'web', T0 + 5)).state.families.map((f) => f.familyId)).toEqual([F3]);
  });

  it('refuses commands for another subject and malformed input', () => {
    const given = subject.given();
    given.when({ ...link(F1, 'web', T0), subject: 'user-2' }).thenThrows({ code: 'subject_mismatch' });
    given.when(link('fam_bad', 'web', T0)).thenThrows({ code: 'invalid_argument' });
    given.when(link(F1, '', T0)).thenThrows(DomainError);
    given.when(revoke('' as RevocationReason, T0)).thenThrows(DomainError);
    given.when({ type: 'Nope', subject: 'user-1', now: T0 } as never).thenThrows(DomainError);
  });

  it('state round-trips through JSON and evolve does not mutate its input', () => {
    const s0 = initialSubjectState('user-1');
    const a = subject.fold(decideSubject(link(F1, 'web', T0), s0).events, s0);
    const frozen = Object.freeze({ ...a, families: Object.freeze([...a.families]) }) as SubjectState;
    const before = JSON.stringify(frozen);
    const d = decideSubject(link(F2, 'web', T0 + 1), frozen);
    const next = evolveSubject(frozen, d.events[0]);
    const revoked = decideSubject(revoke('admin', T0 + 2), next);
    evolveSubject(frozen, revoked.events[0]);
    expect(JSON.stringify(frozen)).toBe(before);
    expect(s0.families).toEqual([]);
    expect(JSON.parse(JSON.stringify(next))).toStrictEqual(next);
  });
});
