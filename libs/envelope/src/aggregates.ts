/**
 * The aggregates, defined once: the stream each lives in, its initial state and its evolve. The
 * command side (apps/token-ledger's AggregateRepository) folds streams with them, and forensics
 * replays a stream with the same functions to check its stored snapshot (`verify`).
 */
import {
  evolveAnomaly,
  evolveApiKey,
  evolveClient,
  evolveFamily,
  evolveSsfStream,
  evolveSubject,
  initialAnomalyState,
  initialApiKeyState,
  initialClientState,
  initialFamilyState,
  initialSsfStreamState,
  initialSubjectState,
  type AnomalyEvent,
  type AnomalyState,
  type ApiKeyEvent,
  type ApiKeyState,
  type ClientEvent,
  type ClientState,
  type FamilyEvent,
  type FamilyState,
  type LedgerEvent,
  type SsfStreamEvent,
  type SsfStreamState,
  type SubjectEvent,
  type SubjectState,
} from '@token-ledger/domain';
import { ANOMALY_STREAM_PREFIX, API_KEY_STREAM_PREFIX, CLIENT_STREAM_PREFIX, FAMILY_STREAM_PREFIX, SSF_STREAM_PREFIX, SUBJECT_STREAM_PREFIX } from './streams';

export interface Aggregate<S extends { v: number }, E extends LedgerEvent> {
  streamPrefix: string;
  initial(id: string): S;
  evolve(state: S, event: E): S;
}

/**
 * What is stored as the stream snapshot: the aggregate state and the hash of the event it was taken
 * at, so an append knows its prevHash without reading that event. A bare state (the shape before the
 * hash chain) is still understood: the stream is then replayed once.
 */
export interface ChainedSnapshot<S> {
  state: S;
  chainHash: string | null;
}

export function isChainedSnapshot(value: unknown): value is ChainedSnapshot<unknown> {
  return typeof value === 'object' && value !== null && 'chainHash' in value && 'state' in value;
}

/** One stream per family, per subject, per client, per API key and per anomaly. */
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

/** One stream per anomaly: AnomalyDetected (the engine), then its triage (analysts). */
export const anomalyAggregate: Aggregate<AnomalyState, AnomalyEvent> = {
  streamPrefix: ANOMALY_STREAM_PREFIX,
  initial: (anomalyId) => initialAnomalyState(anomalyId),
  evolve: evolveAnomaly,
};

/** One stream per OpenID Shared Signals stream: its configuration, status, subjects, verifications. */
export const ssfStreamAggregate: Aggregate<SsfStreamState, SsfStreamEvent> = {
  streamPrefix: SSF_STREAM_PREFIX,
  initial: (streamId) => initialSsfStreamState(streamId),
  evolve: evolveSsfStream,
};

const AGGREGATES: readonly Aggregate<{ v: number }, LedgerEvent>[] = [
  familyAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
  subjectAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
  clientAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
  apiKeyAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
  anomalyAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
  ssfStreamAggregate as unknown as Aggregate<{ v: number }, LedgerEvent>,
];

/** The aggregate a stream belongs to and the aggregate id, or undefined (streams of no aggregate). */
export function aggregateOfStream(streamId: string): { aggregate: Aggregate<{ v: number }, LedgerEvent>; id: string } | undefined {
  const aggregate = AGGREGATES.find((a) => streamId.startsWith(a.streamPrefix));
  return aggregate && { aggregate, id: streamId.slice(aggregate.streamPrefix.length) };
}
