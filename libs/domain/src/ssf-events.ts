/**
 * OpenID Shared Signals (SSF 1.0, CAEP interoperability profile): the events of a transmitter
 * stream, one event-sourced stream `ssf-stream-<streamId>` per SSF stream. These names and payloads
 * are the contract between the control plane (stream management: decider, commands, HTTP) and the
 * data plane (the outbox fed by the event store, push and poll delivery). Both read them; only the
 * control plane appends them.
 */

/** SSF delivery methods (SSF 1.0 §7.1.1): push = RFC 8935, poll = RFC 8936. */
export const SSF_PUSH = 'urn:ietf:rfc:8935';
export const SSF_POLL = 'urn:ietf:rfc:8936';

/** The CAEP / SSF event types the transmitter can send (SSF 1.0 §8, CAEP 1.0 §3). */
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CAEP_CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
export const CAEP_TOKEN_CLAIMS_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change';
export const SSF_VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
export const SSF_STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';

/** What a receiver may request (`events_supported` in the stream configuration). */
export const SSF_EVENTS_SUPPORTED = [CAEP_SESSION_REVOKED, CAEP_CREDENTIAL_CHANGE, CAEP_TOKEN_CLAIMS_CHANGE] as const;

/** Subject identifiers (RFC 9493) the transmitter understands. */
export type SsfSubjectId =
  | { format: 'iss_sub'; iss: string; sub: string }
  | { format: 'email'; email: string }
  | { format: 'opaque'; id: string };

export type SsfStreamStatus = 'enabled' | 'paused' | 'disabled';

/**
 * How a stream's SETs reach its receiver. Push: POSTed to the receiver's `endpointUrl`, with its
 * `Authorization` header value sealed (never stored in plaintext; publicEventData drops it). Poll:
 * the receiver fetches from `endpointUrl`, the transmitter's poll URL for this stream.
 */
export type SsfDelivery =
  | { method: typeof SSF_PUSH; endpointUrl: string; authorizationHeaderSealed?: string }
  | { method: typeof SSF_POLL; endpointUrl: string };

/** The receiver-settable part of a stream's configuration (SSF 1.0 §7.1.1). */
export interface SsfStreamConfig {
  aud: string[];
  eventsRequested: string[];
  /** Requested ∩ supported: what the transmitter will actually send. */
  eventsDelivered: string[];
  delivery: SsfDelivery;
  description: string | null;
}

/** Header of every SSF stream event: not about one family, subject or client. */
interface SsfHeader {
  familyId: '';
  subject: '';
  clientId: '';
  occurredAt: string;
}

export interface SsfStreamCreated extends SsfHeader {
  type: 'SsfStreamCreated';
  data: SsfStreamConfig & { streamId: string; status: SsfStreamStatus };
}

/** The configuration as it is after the update (whole, not a patch): replay needs no merge rules. */
export interface SsfStreamUpdated extends SsfHeader {
  type: 'SsfStreamUpdated';
  data: SsfStreamConfig & { streamId: string };
}

export interface SsfStreamStatusChanged extends SsfHeader {
  type: 'SsfStreamStatusChanged';
  data: { streamId: string; status: SsfStreamStatus; reason: string | null };
}

export interface SsfSubjectAdded extends SsfHeader {
  type: 'SsfSubjectAdded';
  data: { streamId: string; subjectId: SsfSubjectId; verified: boolean };
}

export interface SsfSubjectRemoved extends SsfHeader {
  type: 'SsfSubjectRemoved';
  data: { streamId: string; subjectId: SsfSubjectId };
}

/** A receiver asked for a verification event (SSF 1.0 §7.1.4); the data plane sends it. */
export interface SsfVerificationRequested extends SsfHeader {
  type: 'SsfVerificationRequested';
  data: { streamId: string; state: string | null };
}

export interface SsfStreamDeleted extends SsfHeader {
  type: 'SsfStreamDeleted';
  data: { streamId: string };
}

export type SsfStreamEvent =
  | SsfStreamCreated
  | SsfStreamUpdated
  | SsfStreamStatusChanged
  | SsfSubjectAdded
  | SsfSubjectRemoved
  | SsfVerificationRequested
  | SsfStreamDeleted;

/**
 * The ledger subject a subject identifier names, or null when it names none of ours: `iss_sub`
 * with our issuer → its `sub`; `email` → the address in lower case (ledger subjects that are
 * addresses are matched case-insensitively, see ledgerSubjectKey); `opaque` → its id (a client id,
 * for credential-change).
 */
export function ssfSubjectKey(subjectId: SsfSubjectId, issuer: string): string | null {
  switch (subjectId.format) {
    case 'iss_sub':
      return subjectId.iss === issuer ? ledgerSubjectKey(subjectId.sub) : null;
    case 'email':
      return ledgerSubjectKey(subjectId.email);
    case 'opaque':
      return `client:${subjectId.id}`;
  }
}

/** The key a ledger subject (a family's `subject`) is matched under; see ssfSubjectKey. */
export function ledgerSubjectKey(subject: string): string {
  return `sub:${isEmailAddress(subject) ? subject.toLowerCase() : subject}`;
}

/** The key a client (credential-change) is matched under; see ssfSubjectKey. */
export function clientSubjectKey(clientId: string): string {
  return `client:${clientId}`;
}

/** A ledger subject that is an e-mail address is sent as `{format: 'email'}`, anything else as `iss_sub`. */
export function isEmailAddress(subject: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(subject);
}

/** The `sub_id` a SET carries for a ledger subject (no `sub` claim in SETs: SSF 1.0 §4.1). */
export function subjectIdFor(subject: string, issuer: string): SsfSubjectId {
  return isEmailAddress(subject) ? { format: 'email', email: subject } : { format: 'iss_sub', iss: issuer, sub: subject };
}
