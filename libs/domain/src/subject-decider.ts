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
 */
export function initialSubjectState(subject: string): SubjectState {
  return { v: 1, subject, families: [] };
}

export function decideSubject(command: SubjectCommand, state: SubjectState): SubjectDecision {
  assertSubject(command.subject);
  if (command.subject !== state.subject) {
    throw new DomainError('subject_mismatch', 'command and state are for different subjects');
  }
  if (!Number.isSafeInteger(command.now) || command.now < 0) {
    throw new DomainError('invalid_argument', 'now must be epoch milliseconds');
  }
  const occurredAt = toIso(command.now);

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
      // Always appended, even with no families: it is the audit record and the serialisation point.
      const event: SubjectRevoked = {
        type: 'SubjectRevoked',
        familyId: '',
        subject: command.subject,
        clientId: '',
        occurredAt,
        data: { reason: command.reason, familyIds: state.families.map((f) => f.familyId) },
      };
      return {
        events: [event],
        familiesToRevoke: state.families.map((f) => ({ familyId: f.familyId, clientId: f.clientId })),
      };
    }
    case 'CompleteSubjectRevocation': {
      // Logins linked while the revocation ran must be revoked before it may complete.
      const revoked = new Set(command.revokedFamilyIds);
      const pending = state.families.filter((f) => !revoked.has(f.familyId));
      if (pending.length > 0) {
        return { events: [], familiesToRevoke: pending.map((f) => ({ familyId: f.familyId, clientId: f.clientId })) };
      }
      const event: SubjectRevocationCompleted = {
        type: 'SubjectRevocationCompleted',
        familyId: '',
        subject: command.subject,
        clientId: '',
        occurredAt,
        data: { reason: command.reason, familyIds: state.families.map((f) => f.familyId) },
      };
      return { events: [event], familiesToRevoke: [] };
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
    case 'SubjectRevocationCompleted':
      // Families linked before this point have been handed to the caller for revocation.
      return { ...state, subject: event.subject, families: [] };
    default:
      return state;
  }
}
