import {
  evolveClient,
  evolveFamily,
  evolveSubject,
  initialClientState,
  initialFamilyState,
  initialSubjectState,
  type ClientRegistered,
  type ClientState,
  type FamilyEvent,
  type FamilyState,
  type SubjectEvent,
  type SubjectState,
} from '@token-ledger/domain';
import type { Aggregate } from './aggregate-repository';

/** Stream naming: one stream per family, per subject and per client. */
export const familyAggregate: Aggregate<FamilyState, FamilyEvent> = {
  streamPrefix: 'family-',
  initial: () => initialFamilyState(),
  evolve: evolveFamily,
};

export const subjectAggregate: Aggregate<SubjectState, SubjectEvent> = {
  streamPrefix: 'subject-',
  initial: (subject) => initialSubjectState(subject),
  evolve: evolveSubject,
};

export const clientAggregate: Aggregate<ClientState, ClientRegistered> = {
  streamPrefix: 'client-',
  initial: (clientId) => initialClientState(clientId),
  evolve: evolveClient,
};
