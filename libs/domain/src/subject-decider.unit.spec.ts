import type { SubjectCommand, SubjectState } from './commands';
import { DomainError } from './errors';
import type { SubjectEvent } from './events';
import { formatFamilyId } from './refresh-token';
import { decideSubject, evolveSubject, initialSubjectState } from './subject-decider';

const T0 = Date.UTC(2025, 0, 1);
const F1 = formatFamilyId(Buffer.alloc(16, 1));
const F2 = formatFamilyId(Buffer.alloc(16, 2));
const F3 = formatFamilyId(Buffer.alloc(16, 3));

function run(state: SubjectState, cmd: SubjectCommand): { state: SubjectState; events: SubjectEvent[] } {
  const d = decideSubject(cmd, state);
  return { state: d.events.reduce(evolveSubject, state), events: d.events };
}

const link = (familyId: string, clientId: string, now: number): SubjectCommand => ({ type: 'LinkFamily', subject: 'user-1', familyId, clientId, now });

describe('subject decider', () => {
  it('links families in order', () => {
    const a = run(initialSubjectState('user-1'), link(F1, 'web', T0));
    expect(a.events).toEqual([
      {
        type: 'FamilyLinkedToSubject',
        familyId: F1,
        subject: 'user-1',
        clientId: 'web',
        occurredAt: new Date(T0).toISOString(),
        data: { familyId: F1, clientId: 'web' },
      },
    ]);
    const b = run(a.state, link(F2, 'mobile', T0 + 1));
    expect(b.state).toEqual({
      v: 1,
      subject: 'user-1',
      families: [
        { familyId: F1, clientId: 'web', linkedAt: T0 },
        { familyId: F2, clientId: 'mobile', linkedAt: T0 + 1 },
      ],
    });
  });

  it('linking the same family twice is a no-op', () => {
    const a = run(initialSubjectState('user-1'), link(F1, 'web', T0));
    expect(decideSubject(link(F1, 'web', T0 + 1), a.state).events).toEqual([]);
  });

  it('RevokeSubject names every family linked since the last revocation, then starts afresh', () => {
    let s = run(initialSubjectState('user-1'), link(F1, 'web', T0)).state;
    s = run(s, link(F2, 'mobile', T0 + 1)).state;
    const d = decideSubject({ type: 'RevokeSubject', subject: 'user-1', reason: 'password_change', now: T0 + 2 }, s);
    expect(d.events).toEqual([
      {
        type: 'SubjectRevoked',
        familyId: '',
        subject: 'user-1',
        clientId: '',
        occurredAt: new Date(T0 + 2).toISOString(),
        data: { reason: 'password_change', familyIds: [F1, F2] },
      },
    ]);
    expect(d.familiesToRevoke).toEqual([
      { familyId: F1, clientId: 'web' },
      { familyId: F2, clientId: 'mobile' },
    ]);
    s = d.events.reduce(evolveSubject, s);
    expect(s.families).toEqual([]);

    s = run(s, link(F3, 'web', T0 + 3)).state;
    const again = decideSubject({ type: 'RevokeSubject', subject: 'user-1', reason: 'admin', now: T0 + 4 }, s);
    expect(again.familiesToRevoke).toEqual([{ familyId: F3, clientId: 'web' }]);
    expect(again.events[0]).toMatchObject({ data: { familyIds: [F3] } });
  });

  it('RevokeSubject with no families still records the revocation', () => {
    const d = decideSubject({ type: 'RevokeSubject', subject: 'user-1', reason: 'admin', now: T0 }, initialSubjectState('user-1'));
    expect(d.events).toHaveLength(1);
    expect(d.familiesToRevoke).toEqual([]);
  });

  it('completes a revocation only once every family linked since it was revoked', () => {
    let state = run(initialSubjectState('user-1'), link(F1, 'web', T0)).state;
    state = run(state, { type: 'RevokeSubject', subject: 'user-1', reason: 'admin', now: T0 + 1 }).state;
    // A login raced with the command: it must be revoked before completion.
    state = run(state, link(F2, 'app', T0 + 2)).state;
    const blocked = decideSubject({ type: 'CompleteSubjectRevocation', subject: 'user-1', reason: 'admin', revokedFamilyIds: [F1], now: T0 + 3 }, state);
    expect(blocked.events).toEqual([]);
    expect(blocked.familiesToRevoke).toEqual([{ familyId: F2, clientId: 'app' }]);
    const done = decideSubject({ type: 'CompleteSubjectRevocation', subject: 'user-1', reason: 'admin', revokedFamilyIds: [F1, F2], now: T0 + 4 }, state);
    expect(done.events).toEqual([expect.objectContaining({ type: 'SubjectRevocationCompleted', data: { reason: 'admin', familyIds: [F2] } })]);
    expect(done.familiesToRevoke).toEqual([]);
    state = evolveSubject(state, done.events[0]);
    expect(state.families).toEqual([]);
    // Logins after completion are ordinary again.
    expect(run(state, link(F3, 'web', T0 + 5)).state.families.map((f) => f.familyId)).toEqual([F3]);
  });

  it('refuses commands for another subject and malformed input', () => {
    const s = initialSubjectState('user-1');
    expect(() => decideSubject({ ...link(F1, 'web', T0), subject: 'user-2' }, s)).toThrow(expect.objectContaining({ code: 'subject_mismatch' }));
    expect(() => decideSubject(link('fam_bad', 'web', T0), s)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => decideSubject(link(F1, '', T0), s)).toThrow(DomainError);
    expect(() => decideSubject({ type: 'RevokeSubject', subject: 'user-1', reason: '', now: T0 }, s)).toThrow(DomainError);
    expect(() => decideSubject({ type: 'Nope', subject: 'user-1', now: T0 } as never, s)).toThrow(DomainError);
  });

  it('state round-trips through JSON and evolve does not mutate its input', () => {
    const s0 = initialSubjectState('user-1');
    const a = run(s0, link(F1, 'web', T0));
    const frozen = Object.freeze({ ...a.state, families: Object.freeze([...a.state.families]) }) as SubjectState;
    const before = JSON.stringify(frozen);
    const d = decideSubject(link(F2, 'web', T0 + 1), frozen);
    const next = evolveSubject(frozen, d.events[0]);
    const revoked = decideSubject({ type: 'RevokeSubject', subject: 'user-1', reason: 'admin', now: T0 + 2 }, next);
    evolveSubject(frozen, revoked.events[0]);
    expect(JSON.stringify(frozen)).toBe(before);
    expect(s0.families).toEqual([]);
    expect(JSON.parse(JSON.stringify(next))).toStrictEqual(next);
  });
});
