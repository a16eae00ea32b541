import {
  evolveApiKey,
  evolveClient,
  evolveFamily,
  evolveSubject,
  initialApiKeyState,
  initialClientState,
  initialFamilyState,
  initialSubjectState,
  type ApiKeyEvent,
  type ApiKeyState,
  type ClientEvent,
  type ClientState,
  type FamilyEvent,
  type FamilyState,
  type SubjectEvent,
  type SubjectState,
} from '@token-ledger/domain';
import { API_KEY_STREAM_PREFIX, CLIENT_STREAM_PREFIX, FAMILY_STREAM_PREFIX, SUBJECT_STREAM_PREFIX } from '@token-ledger/envelope';
import type { Aggregate } from './aggregate-repository';

/** Stream naming: one stream per family, per subject and per client. */
export const familyAggregate: Aggregate<FamilyState, FamilyEvent> = {
  streamPrefix: FAMILY_STREAM_PREFIX,
  initial: () => initialFamilyState(),
  evolve: evolveFamily,
};

export const subjectAggregate: Aggregate<SubjectState, SubjectEvent> = {
  streamPrefix: SUBJECT_STREAM_PREFIX,
  initial: (subject) => initialSubjectState(subject),
  evolve: evolveSubject,
};

export const clientAggregate: Aggregate<ClientState, ClientEvent> = {
  streamPrefix: CLIENT_STREAM_PREFIX,
  initial: (clientId) => initialClientState(clientId),
  evolve: evolveClient,
};

export const apiKeyAggregate: Aggregate<ApiKeyState, ApiKeyEvent> = {
  streamPrefix: API_KEY_STREAM_PREFIX,
  initial: (keyId) => initialApiKeyState(keyId),
  evolve: evolveApiKey,
};
