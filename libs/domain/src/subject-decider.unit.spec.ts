import type { SubjectCommand, SubjectState } from './commands';
import { DomainError } from './errors';
import type { RevocationReason, SubjectEvent } from './events';
import { formatFamilyId } from './refresh-token';
import { decideSubject, evolveSubject, initialSubjectState } from './subject-decider';
import { deciderSpec } from './testing/decider-spec';

const T0 = Date.UTC(2025, 0, 1);
const F1 = formatFamilyId(Buffer.alloc(16, 1));
const F2 = formatFamilyId(Buffer.alloc(16, 2));
const F3 = formatFamilyId(Buffer.alloc(16, 3));
const F4 = formatFamilyId(Buffer.alloc(16, 4));

/** The subject decider on user-1's stream; the families to revoke are the result. */
const subject = deciderSpec({
  initialState: () => initialSubjectState('user-1'),
  evolve: evolveSubject,
  decide: (command: SubjectCommand, state: SubjectState) => {
    const { events, familiesToRevoke } = decideSubject(command, state);
    return { events, result: familiesToRevoke };
  },
});
/** The reason a decision says the families are revoked under. */
const reasonOf = (command: SubjectCommand, state: SubjectState) => decideSubject(command, state).reason;

const link = (familyId: string, clientId: string, now: number): SubjectCommand => ({ type: 'LinkFamily', subject: 'user-1', familyId, clientId, now });
const revoke = (reason: RevocationReason, now: number): SubjectCommand => ({ type: 'RevokeSubject', subject: 'user-1', reason, now });
const resume = (now: number): SubjectCommand => ({ type: 'ResumeSubjectRevocation', subject: 'user-1', now });
const complete = (revokedFamilyIds: string[], now: number): SubjectCommand => ({
  type: 'CompleteSubjectRevocation',
  subject: 'user-1',
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
        v: 2,
        subject: 'user-1',
        families: [
          { familyId: F1, clientId: 'web', linkedAt: T0 },
          { familyId: F2, clientId: 'mobile', linkedAt: T0 + 1 },
        ],
        pendingRevocation: null,
      });
  });

  it('linking the same family twice is a no-op', () => {
    subject.given().after(link(F1, 'web', T0)).when(link(F1, 'web', T0 + 1)).thenNothingHappened();
  });

  it('RevokeSubject names every family linked since the last completed revocation and keeps them pending until it completes', () => {
    const revoked = subject
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
      // Nothing is forgotten before the families are revoked: a crash here leaves them listed.
      .thenStateMatches({ families: [expect.objectContaining({ familyId: F1 }), expect.objectContaining({ familyId: F2 })], pendingRevocation: { reason: 'password_change', revokedAt: T0 + 2 } })
      .next();
    const again = revoked
      .when(complete([F1, F2], T0 + 3))
      .thenEvents([{ type: 'SubjectRevocationCompleted', familyId: '', clientId: '', ...header(T0 + 3), data: { reason: 'password_change', familyIds: [F1, F2] } }])
      .thenResult([])
      .thenStateMatches({ families: [], pendingRevocation: null })
      .next()
      .after(link(F3, 'web', T0 + 4))
      .when(revoke('admin', T0 + 5))
      .thenResult([{ familyId: F3, clientId: 'web' }]);
    expect(again.outcome().events[0]).toMatchObject({ data: { familyIds: [F3] } });
  });

  it('RevokeSubject with no families still records the revocation', () => {
    const { events } = subject.given().when(revoke('admin', T0)).thenResult([]).outcome();
    expect(events).toHaveLength(1);
  });

  it('a retried RevokeSubject continues the pending revocation: no second SubjectRevoked, every family still listed, under the first reason', () => {
    const interrupted = subject.given().after(link(F1, 'web', T0), link(F2, 'app', T0 + 1), revoke('password_change', T0 + 2));
    interrupted
      .when(revoke('admin', T0 + 3))
      .thenNothingHappened()
      .thenResult([
        { familyId: F1, clientId: 'web' },
        { familyId: F2, clientId: 'app' },
      ]);
    expect(reasonOf(revoke('admin', T0 + 3), interrupted.state)).toBe('password_change');
    // A login linked while it was pending is covered too.
    const raced = interrupted.after(link(F3, 'web', T0 + 4));
    raced.when(revoke('admin', T0 + 5)).thenNothingHappened().thenResult([
      { familyId: F1, clientId: 'web' },
      { familyId: F2, clientId: 'app' },
      { familyId: F3, clientId: 'web' },
    ]);
    raced
      .when(complete([F1, F2, F3], T0 + 6))
      .thenEventTypes(['SubjectRevocationCompleted'])
      .thenStateMatches({ families: [], pendingRevocation: null });
  });

  it('ResumeSubjectRevocation continues a pending revocation and never starts one', () => {
    subject.given().after(link(F1, 'web', T0)).when(resume(T0 + 1)).thenNothingHappened().thenResult([]);
    expect(reasonOf(resume(T0 + 1), subject.given().state)).toBeUndefined();
    const pending = subject.given().after(link(F1, 'web', T0), revoke('anomaly', T0 + 1));
    pending.when(resume(T0 + 2)).thenNothingHappened().thenResult([{ familyId: F1, clientId: 'web' }]);
    expect(reasonOf(resume(T0 + 2), pending.state)).toBe('anomaly');
    // Completed meanwhile (by a retry, or another instance): nothing left.
    pending.after(complete([F1], T0 + 2)).when(resume(T0 + 3)).thenNothingHappened().thenResult([]);
  });

  it('completes a revocation only once every family linked up to the completion is revoked', () => {
    // A login raced with the command: it must be revoked before completion.
    const raced = subject.given().after(link(F1, 'web', T0), revoke('admin', T0 + 1), link(F2, 'app', T0 + 2));
    raced.when(complete([F1], T0 + 3)).thenNothingHappened().thenResult([{ familyId: F2, clientId: 'app' }]);
    raced.when(complete([F2], T0 + 3)).thenNothingHappened().thenResult([{ familyId: F1, clientId: 'web' }]);
    const completed = raced
      .when(complete([F1, F2], T0 + 4))
      .thenEvents([expect.objectContaining({ type: 'SubjectRevocationCompleted', data: { reason: 'admin', familyIds: [F1, F2] } })])
      .thenResult([])
      .thenStateMatches({ families: [], pendingRevocation: null })
      .next();
    // Logins after completion are ordinary again; a second completion finds nothing to complete.
    expect(completed.after(link(F3, 'web', T0 + 5)).state.families.map((f) => f.familyId)).toEqual([F3]);
    completed.when(complete([F1, F2], T0 + 5)).thenNothingHappened().thenResult([]);
    subject.given().after(link(F1, 'web', T0)).when(complete([F1], T0 + 1)).thenNothingHappened().thenResult([]);
  });

  describe('histories written when SubjectRevoked emptied the family list', () => {
    const linked = (familyId: string, at: number): SubjectEvent => ({
      type: 'FamilyLinkedToSubject',
      familyId,
      clientId: 'web',
      ...header(at),
      data: { familyId, clientId: 'web' },
    });
    const revokedEvent = (familyIds: string[], at: number): SubjectEvent => ({
      type: 'SubjectRevoked',
      familyId: '',
      clientId: '',
      ...header(at),
      data: { reason: 'admin', familyIds },
    });
    // Back then the completion listed only the logins that raced with the command.
    const completedEvent = (familyIds: string[], at: number): SubjectEvent => ({
      type: 'SubjectRevocationCompleted',
      familyId: '',
      clientId: '',
      ...header(at),
      data: { reason: 'admin', familyIds },
    });

    it('a completed revocation folds to nothing pending and forgets its families', () => {
      const old = subject.given([linked(F1, T0), linked(F2, T0 + 1), revokedEvent([F1, F2], T0 + 2), linked(F3, T0 + 3), completedEvent([F3], T0 + 4)]);
      expect(old.state).toEqual({ v: 2, subject: 'user-1', families: [], pendingRevocation: null });
      old.when(resume(T0 + 5)).thenNothingHappened().thenResult([]);
      old.after(link(F4, 'web', T0 + 5)).when(revoke('admin', T0 + 6)).thenResult([{ familyId: F4, clientId: 'web' }]);
    });

    it('one interrupted back then is pending now, with its families, and resumable', () => {
      const old = subject.given([linked(F1, T0), linked(F2, T0 + 1), revokedEvent([F1, F2], T0 + 2)]);
      expect(old.state.pendingRevocation).toEqual({ reason: 'admin', revokedAt: T0 + 2 });
      old.when(resume(T0 + 3)).thenResult([
        { familyId: F1, clientId: 'web' },
        { familyId: F2, clientId: 'web' },
      ]);
    });

    it('a retry back then (a second SubjectRevoked, listing nothing) and its completion close both', () => {
      const old = subject.given([linked(F1, T0), revokedEvent([F1], T0 + 1), revokedEvent([], T0 + 2), completedEvent([], T0 + 3)]);
      expect(old.state).toEqual({ v: 2, subject: 'user-1', families: [], pendingRevocation: null });
      // Before its completion, the second one belongs to the first (its reason, its time).
      expect(subject.fold([linked(F1, T0), revokedEvent([F1], T0 + 1), revokedEvent([], T0 + 2)]).pendingRevocation).toEqual({ reason: 'admin', revokedAt: T0 + 1 });
    });
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
    const pending = evolveSubject(next, revoked.events[0]);
    expect(JSON.parse(JSON.stringify(pending))).toStrictEqual(pending);
  });
});
