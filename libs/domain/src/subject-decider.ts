import type { SubjectCommand, SubjectDecision, SubjectState } from './commands';
import { DomainError } from './errors';
import { assertSubject } from './limits';
import type { FamilyLinkedToSubject, SubjectEvent, SubjectRevocationCompleted, SubjectRevoked } from './events';
import { isFamilyId } from './refresh-token';
import { fromIso, toIso } from './time';

/**
 * The subject stream serialises RevokeSubject against IssueToken: a family is linked here (with
 * optimistic concurrency) before it is issued, so RevokeSubject either sees the link and revokes
 * the family (pre-emptively if its stream does not exist yet), or the link comes after the
 * SubjectRevoked and belongs to a later login. Logins linked while the revocation runs are
 * revoked too before SubjectRevocationCompleted can be appended (with optimistic concurrency), so
 * no login that finished before RevokeSubject returned survives it.
 *
 * A revocation is pending from SubjectRevoked to SubjectRevocationCompleted, and its families stay
 * in the state until the completion: a crash, a store outage or an exhausted retry budget in
 * between leaves a pending revocation that still names them, which a retried RevokeSubject or the
 * reconciler (ResumeSubjectRevocation) finishes. Histories written when SubjectRevoked emptied the
 * list fold to the same state: their SubjectRevocationCompleted clears everything too, and one
 * interrupted back then is now simply pending.
 */
export function initialSubjectState(subject: string): SubjectState {
  return { v: 2, subject, families: [], pendingRevocation: null };
}

const toRevoke = (state: SubjectState) => state.families.map((f) => ({ familyId: f.familyId, clientId: f.clientId }));

export function decideSubject(command: SubjectCommand, state: SubjectState): SubjectDecision {
  assertSubject(command.subject);
  if (command.subject !== state.subject) {
    throw new DomainError('subject_mismatch', 'command and state are for different subjects');
  }
  if (!Number.isSafeInteger(command.now) || command.now < 0) {
    throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  }
  const occurredAt = toIso(command.now);
  const pending = state.pendingRevocation;

  switch (command.type) {
    case 'LinkFamily': {
      if (!isFamilyId(command.familyId)) throw new DomainError('invalid_argument', 'not a family id');
      if (typeof command.clientId !== 'string' || command.clientId === '') {
        throw new DomainError('invalid_argument', 'clientId is required');
      }
      // Idempotent, so a retried issue does not list the family twice.
      if (state.families.some((f) => f.familyId === command.familyId)) return { events: [] };
      const event: FamilyLinkedToSubject = {
        type: 'FamilyLinkedToSubject',
        familyId: command.familyId,
        subject: command.subject,
        clientId: command.clientId,
        occurredAt,
        data: { familyId: command.familyId, clientId: command.clientId },
      };
      return { events: [event] };
    }
    case 'RevokeSubject': {
      if (typeof command.reason !== 'string' || command.reason === '') {
        throw new DomainError('invalid_argument', 'reason is required');
      }
      // A retry continues the revocation under way (its reason, its families, and any linked since).
      if (pending) return { events: [], familiesToRevoke: toRevoke(state), reason: pending.reason };
      // Always appended, even with no families: it is the audit record and the serialisation point.
      const event: SubjectRevoked = {
        type: 'SubjectRevoked',
        familyId: '',
        subject: command.subject,
        clientId: '',
        occurredAt,
        data: { reason: command.reason, familyIds: state.families.map((f) => f.familyId) },
      };
      return { events: [event], familiesToRevoke: toRevoke(state), reason: command.reason };
    }
    case 'ResumeSubjectRevocation':
      if (!pending) return { events: [], familiesToRevoke: [] };
      return { events: [], familiesToRevoke: toRevoke(state), reason: pending.reason };
    case 'CompleteSubjectRevocation': {
      // Completed meanwhile by another caller (a retry, the reconciler on another instance).
      if (!pending) return { events: [], familiesToRevoke: [] };
      // Logins linked while the revocation ran must be revoked before it may complete.
      const revoked = new Set(command.revokedFamilyIds);
      const left = state.families.filter((f) => !revoked.has(f.familyId));
      if (left.length > 0) {
        return { events: [], familiesToRevoke: left.map((f) => ({ familyId: f.familyId, clientId: f.clientId })), reason: pending.reason };
      }
      const event: SubjectRevocationCompleted = {
        type: 'SubjectRevocationCompleted',
        familyId: '',
        subject: command.subject,
        clientId: '',
        occurredAt,
        data: { reason: pending.reason, familyIds: state.families.map((f) => f.familyId) },
      };
      return { events: [event], familiesToRevoke: [], reason: pending.reason };
    }
    default: {
      const never: never = command;
      throw new DomainError('invalid_argument', `unknown command ${(never as { type: string }).type}`);
    }
  }
}

export function evolveSubject(state: SubjectState, event: SubjectEvent): SubjectState {
  switch (event.type) {
    case 'FamilyLinkedToSubject':
      if (state.families.some((f) => f.familyId === event.data.familyId)) return state;
      return {
        ...state,
        subject: event.subject,
        families: [
          ...state.families,
          { familyId: event.data.familyId, clientId: event.data.clientId, linkedAt: fromIso(event.occurredAt) },
        ],
      };
    case 'SubjectRevoked':
      // The families stay until the completion. A second SubjectRevoked while one is pending (only
      // in histories written before revocations could be resumed) belongs to the same revocation.
      if (state.pendingRevocation) return { ...state, subject: event.subject };
      return { ...state, subject: event.subject, pendingRevocation: { reason: event.data.reason, revokedAt: fromIso(event.occurredAt) } };
    case 'SubjectRevocationCompleted':
      // Every family linked up to here has been revoked (whatever the event lists: older histories
      // list only the logins that raced with the command).
      return { ...state, subject: event.subject, families: [], pendingRevocation: null };
    default:
      return state;
  }
}
