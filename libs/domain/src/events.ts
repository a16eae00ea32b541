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

export type RejectionReason = 'bad_secret' | 'revoked' | 'expired' | 'client_mismatch' | 'invalid_scope';

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

export interface RefreshRejected extends EventHeader {
  type: 'RefreshRejected';
  data: {
    reason: RejectionReason;
    presentedGeneration: number;
    context?: RequestContext;
  };
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
  };
}

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

export type LedgerEvent = FamilyEvent | SubjectEvent | ClientRegistered;
export type LedgerEventType = LedgerEvent['type'];

/**
 * An event's payload as it may leave the ledger (audit API, Kafka, exports): a client's secret hash
 * stays in the store. Everything else is public to the ledger's consumers.
 */
export function publicEventData(type: string, data: unknown): unknown {
  if (type === 'ClientRegistered' && data && typeof data === 'object') {
    const { secretHash: _omitted, ...rest } = data as ClientRegistered['data'];
    return rest;
  }
  return data;
}
