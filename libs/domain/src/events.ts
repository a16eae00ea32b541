import type { SsfStreamEvent } from './ssf-events';

/**
 * Event and command types of the token ledger. Names and payloads are part of the contract
 * (SPEC §2): they reach the store, Kafka and the audit API as they are written here.
 */

export const SCHEMA_VERSION = 1;

export interface RequestContext {
  ip?: string;
  userAgent?: string;
  deviceId?: string;
}

/** Time-to-live settings a family is issued under (whole seconds), captured at issue. */
export interface FamilyPolicy {
  accessTokenTtl: number;
  refreshIdleTtl: number;
  refreshAbsoluteTtl: number;
  reuseGraceSeconds: number;
}

export type RevocationReason =
  | 'logout'
  | 'admin'
  | 'password_change'
  | 'anomaly'
  | 'reuse_detected'
  | 'limit_exceeded'
  | 'subject_revoked'
  | (string & {});

/**
 * Why a refresh was refused. `dpop_key_mismatch`: the family is bound to a DPoP key (RFC 9449) and the
 * request carried no valid proof for that key — a refusal, never reuse (docs/dpop.md).
 */
export type RejectionReason = 'bad_secret' | 'revoked' | 'expired' | 'client_mismatch' | 'invalid_scope' | 'dpop_key_mismatch';

/** What every domain event carries besides its payload. occurredAt is ISO-8601 UTC. */
export interface EventHeader {
  familyId: string;
  subject: string;
  clientId: string;
  occurredAt: string;
}

export interface TokenFamilyIssued extends EventHeader {
  type: 'TokenFamilyIssued';
  data: {
    scope: string[];
    audience: string[];
    generation: number; // always 1
    tokenHash: string; // keyed hash of generation 1's secret
    createdAt: string;
    idleExpiresAt: string;
    absoluteExpiresAt: string;
    policy: FamilyPolicy;
    context?: RequestContext;
    /** RFC 9449: the JWK SHA-256 thumbprint (RFC 7638) the family is bound to; absent = unbound. */
    dpopJkt?: string;
  };
}

export interface TokenRotated extends EventHeader {
  type: 'TokenRotated';
  data: {
    fromGeneration: number;
    generation: number;
    tokenHash: string; // keyed hash of the new generation's secret
    idleExpiresAt: string;
    scope: string[]; // scope granted to the access token (may be narrowed)
    context?: RequestContext;
  };
}

export interface TokenRotationReplayed extends EventHeader {
  type: 'TokenRotationReplayed';
  data: {
    presentedGeneration: number;
    generation: number; // the successor handed out again
    scope: string[];
    context?: RequestContext;
  };
}

export interface TokenReuseDetected extends EventHeader {
  type: 'TokenReuseDetected';
  data: {
    presentedGeneration: number;
    headGeneration: number;
    context?: RequestContext;
  };
}

export interface TokenFamilyRevoked extends EventHeader {
  type: 'TokenFamilyRevoked';
  data: {
    reason: RevocationReason;
    revokedAt: string;
    /** Access tokens of the family are invalid from revokedAt; they would have expired by this. */
    accessTokensValidUntil: string;
  };
}

export interface TokenFamilyExpired extends EventHeader {
  type: 'TokenFamilyExpired';
  data: { reason: 'idle' | 'absolute'; expiredAt: string };
}

/**
 * A refused refresh of an existing family. The first refusal after a quiet interval is recorded as it
 * happens; the ones that follow within REJECTION_RECORD_INTERVAL_MS are tallied by the app and
 * recorded together, one RefreshRejected per reason per interval (rejection-tally.ts), so a flood
 * of forged tokens aimed at a family costs its stream at most about one append per interval.
 */
export interface RefreshRejected extends EventHeader {
  type: 'RefreshRejected';
  data: {
    reason: RejectionReason;
    /** The (last) generation presented. */
    presentedGeneration: number;
    /** The (last) refusal's context. */
    context?: RequestContext;
    /** Aggregated record only: how many refusals it stands for (absent = 1) ... */
    count?: number;
    /** ... between these instants (ISO-8601) ... */
    from?: string;
    to?: string;
    /** ... from these addresses (at most MAX_REJECTION_SOURCES, most frequent first) ... */
    sources?: RejectionSource[];
    /** ... plus this many whose address was unknown or beyond the named ones. */
    otherSources?: number;
  };
}

export interface RejectionSource {
  ip: string;
  count: number;
}

export interface AccessTokenRevoked extends EventHeader {
  type: 'AccessTokenRevoked';
  data: { jti: string; expiresAt: string };
}

export type FamilyEvent =
  | TokenFamilyIssued
  | TokenRotated
  | TokenRotationReplayed
  | TokenReuseDetected
  | TokenFamilyRevoked
  | TokenFamilyExpired
  | RefreshRejected
  | AccessTokenRevoked;

/** Subject stream: the serialisation point that makes RevokeSubject race-free. */
export interface FamilyLinkedToSubject extends EventHeader {
  type: 'FamilyLinkedToSubject';
  data: { familyId: string; clientId: string };
}

/**
 * Starts a RevokeSubject: `familyIds` are the families linked at that point. They stay linked (the
 * revocation is pending) until SubjectRevocationCompleted, so a revocation interrupted by a crash
 * still lists what it has to finish. (The same payload as before the revocation became resumable:
 * only the fold changed, see subject-decider.ts.)
 */
export interface SubjectRevoked extends EventHeader {
  type: 'SubjectRevoked';
  data: { reason: RevocationReason; familyIds: string[] };
}

/**
 * Closes a RevokeSubject: appended with optimistic concurrency once every family linked up to it
 * (including logins that raced with the command) has been revoked. `familyIds`: the families it
 * covered, i.e. every family linked since the previous completion (older histories list only the
 * logins that raced with the command).
 */
export interface SubjectRevocationCompleted extends EventHeader {
  type: 'SubjectRevocationCompleted';
  data: { reason: RevocationReason; familyIds: string[] };
}

export type SubjectEvent = FamilyLinkedToSubject | SubjectRevoked | SubjectRevocationCompleted;

export interface ClientRegistered {
  type: 'ClientRegistered';
  familyId: '';
  subject: '';
  clientId: string;
  occurredAt: string;
  data: {
    type: 'confidential' | 'public';
    secretHash: string | null;
    allowedScopes: string[];
    policy: FamilyPolicy;
    maxFamiliesPerSubject: number;
    /** RFC 7662 §4: may introspect every client's tokens (a resource server). Absent in older events: false. */
    introspectAll?: boolean;
    /** Families of this client must be DPoP-bound (RFC 9449) at issue. Absent: false. */
    requireDpop?: boolean;
  };
}

/** Header of the events after a registration on the client stream `client-<id>`. */
interface ClientEventHeader {
  familyId: '';
  subject: '';
  clientId: string;
  occurredAt: string;
}

/**
 * A new secret. The secret it replaces (the state's current one) keeps authenticating until
 * previousValidUntil (ISO-8601), or not at all when that is null (overlap 0).
 */
export interface ClientSecretRotated extends ClientEventHeader {
  type: 'ClientSecretRotated';
  data: { secretHash: string; previousValidUntil: string | null };
}

/** Every endpoint answers the client invalid_client from now on; revokeFamilies says its families were to be revoked too. */
export interface ClientDisabled extends ClientEventHeader {
  type: 'ClientDisabled';
  data: { revokeFamilies: boolean };
}

export interface ClientEnabled extends ClientEventHeader {
  type: 'ClientEnabled';
  data: Record<string, never>;
}

/** The client's settings after a PATCH, in full; families issued before keep the policy they copied. */
export interface ClientPolicyChanged extends ClientEventHeader {
  type: 'ClientPolicyChanged';
  data: { allowedScopes: string[]; policy: FamilyPolicy; maxFamiliesPerSubject: number; introspectAll: boolean; requireDpop?: boolean };
}

export type ClientEvent = ClientRegistered | ClientSecretRotated | ClientDisabled | ClientEnabled | ClientPolicyChanged;

/**
 * Appended by the anomaly engine (libs/anomaly) to its own stream `anomaly-<anomalyId>`; the header
 * names the family, subject and client of the triggering event, occurredAt is the detection time.
 */
export interface AnomalyDetected extends EventHeader {
  type: 'AnomalyDetected';
  data: {
    anomalyId: string;
    rule: string;
    severity: 'low' | 'medium' | 'high' | 'critical';
    action: 'alert' | 'revoke_family' | 'revoke_subject';
    scope: 'family' | 'subject' | 'ip';
    scopeKey: string;
    evidence: Record<string, unknown>;
    trigger: { eventId: string; position: number; occurredAt: string; correlationId?: string };
  };
}

/**
 * An analyst's triage of an anomaly (libs/domain/src/anomaly-triage.ts), on the anomaly's own stream
 * after its AnomalyDetected; the header repeats the detection's family, subject and client so the
 * audit view shows the triage beside the detection. `by` is the acting principal (also the actor).
 */
export interface AnomalyAcknowledged extends EventHeader {
  type: 'AnomalyAcknowledged';
  data: { anomalyId: string; by: string; note: string | null };
}

export interface AnomalyDismissed extends EventHeader {
  type: 'AnomalyDismissed';
  data: { anomalyId: string; by: string; note: string | null };
}

export type AnomalyEvent = AnomalyDetected | AnomalyAcknowledged | AnomalyDismissed;

/** API keys for /v1 (stream `apikey-<keyId>`): the key itself is never in an event, only its keyed hash. */
interface ApiKeyHeader {
  familyId: '';
  subject: '';
  clientId: '';
  occurredAt: string;
}

export interface ApiKeyCreated extends ApiKeyHeader {
  type: 'ApiKeyCreated';
  data: {
    keyId: string;
    name: string;
    scopes: string[];
    /** Keyed hash of the key's secret; stays in the store (publicEventData drops it). */
    keyHash: string;
    createdAt: string;
    expiresAt: string | null;
  };
}

export interface ApiKeyRevoked extends ApiKeyHeader {
  type: 'ApiKeyRevoked';
  data: { keyId: string; revokedAt: string };
}

export type ApiKeyEvent = ApiKeyCreated | ApiKeyRevoked;

export type LedgerEvent = FamilyEvent | SubjectEvent | ClientEvent | ApiKeyEvent | AnomalyEvent | SsfStreamEvent;
export type LedgerEventType = LedgerEvent['type'];

/**
 * An event's payload as it may leave the ledger (audit API, Kafka, exports): a client's secret hash
 * (ClientRegistered, ClientSecretRotated), an API key's hash and an SSF push endpoint's sealed Authorization header stay in the store. Everything else is public to the ledger's consumers.
 */
export function publicEventData(type: string, data: unknown): unknown {
  if ((type === 'ClientRegistered' || type === 'ClientSecretRotated') && data && typeof data === 'object') {
    const { secretHash: _omitted, ...rest } = data as { secretHash?: unknown };
    return rest;
  }
  if (type === 'ApiKeyCreated' && data && typeof data === 'object') {
    const { keyHash: _omitted, ...rest } = data as ApiKeyCreated['data'];
    return rest;
  }
  if ((type === 'SsfStreamCreated' || type === 'SsfStreamUpdated') && data && typeof data === 'object') {
    const d = data as { delivery?: { authorizationHeaderSealed?: unknown } };
    if (d.delivery && 'authorizationHeaderSealed' in d.delivery) {
      const { authorizationHeaderSealed: _omitted, ...delivery } = d.delivery;
      return { ...d, delivery };
    }
  }
  return data;
}
