/**
 * Ledger events → the SSF / CAEP events a transmitter sends (pure: no I/O, no clock). Each signal
 * says where it goes — to the streams following a subject key, or to one stream — and what its
 * `events` member and `sub_id` are; the outbox turns it into SET claims per matching stream.
 */
import {
  CAEP_CREDENTIAL_CHANGE,
  CAEP_SESSION_REVOKED,
  CAEP_TOKEN_CLAIMS_CHANGE,
  SSF_STREAM_UPDATED,
  SSF_VERIFICATION,
  clientSubjectKey,
  formatScope,
  ledgerSubjectKey,
  subjectIdFor,
  type LedgerEvent,
  type RevocationReason,
  type SsfSubjectId,
} from '@token-ledger/domain';

export type SignalRoute =
  /** Every stream that follows this subject key (ssfSubjectKey / ledgerSubjectKey / clientSubjectKey) and delivers the event type. */
  | { kind: 'subject'; key: string }
  /** That stream only, whatever it delivers (verification, stream-updated: SSF 1.0 §8.1). */
  | { kind: 'stream'; streamId: string };

export interface Signal {
  route: SignalRoute;
  eventType: string;
  subId: SsfSubjectId;
  payload: Record<string, unknown>;
}

/** What the outbox remembers of a family whose subject some stream follows (token-claims-change). */
export interface FamilyScope {
  /** The scope granted at issue. */
  granted: readonly string[];
  /** The access-token scope of the last rotation (the granted scope until the first). */
  last: readonly string[];
}

/** CAEP 1.0 §2: who initiated the revocation, from the ledger's reason. */
export function initiatingEntity(reason: RevocationReason): 'user' | 'admin' | 'policy' | 'system' {
  switch (reason) {
    case 'logout':
      return 'user';
    case 'anomaly':
    case 'reuse_detected':
    case 'limit_exceeded':
      return 'policy';
    default:
      // admin, password_change, subject_revoked, and the free words an operator may give.
      return 'admin';
  }
}

const ADMIN_TEXT: Record<string, string> = {
  logout: 'The user signed out; the session was revoked',
  admin: 'The session was revoked by an administrator',
  password_change: 'The session was revoked after a password change',
  subject_revoked: "All of the subject's sessions were revoked",
  anomaly: 'The session was revoked by anomaly detection',
  reuse_detected: 'A refresh token was reused; the session was revoked',
  limit_exceeded: 'The session limit was exceeded; the oldest session was revoked',
};
const USER_TEXT: Record<string, string> = {
  logout: 'You signed out',
  password_change: 'Your password was changed',
  reuse_detected: 'Your session was ended to protect your account',
  anomaly: 'Your session was ended to protect your account',
};

/** The session-revoked payload (CAEP 1.0 §3.1) for a revocation with this reason. */
export function sessionRevokedPayload(reason: RevocationReason, occurredAt: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const user = USER_TEXT[reason];
  return {
    event_timestamp: epochSeconds(occurredAt),
    initiating_entity: initiatingEntity(reason),
    reason_admin: { en: ADMIN_TEXT[reason] ?? `The session was revoked (reason: ${reason})` },
    ...(user ? { reason_user: { en: user } } : {}),
    ...extra,
  };
}

/**
 * The narrowed access-token scope to announce, or null: only when the rotation's scope is a strict
 * subset of the granted scope and differs from the family's previous rotation (a refresh that keeps
 * the same narrowed scope says nothing new).
 */
export function narrowedScope(family: FamilyScope, current: readonly string[]): string | null {
  const granted = new Set(family.granted);
  const narrower = current.length < granted.size && current.every((s) => granted.has(s));
  if (!narrower) return null;
  return sameSet(current, family.last) ? null : formatScope(current);
}

/**
 * The signals of one ledger event. `family`: the family's remembered scope, for TokenRotated (no
 * token-claims-change without it). A TokenFamilyRevoked caused by a subject revocation sends
 * nothing: the SubjectRevoked already sent one session-revoked for all of the subject's sessions.
 * The revocation's family events carry its reason (password_change, …), so `subjectRevocationPending`
 * says whether one is under way for the subject (between SubjectRevoked and SubjectRevocationCompleted).
 */
export function signalsFor(event: LedgerEvent, ctx: { issuer: string; family?: FamilyScope; subjectRevocationPending?: boolean }): Signal[] {
  switch (event.type) {
    case 'TokenFamilyRevoked':
      if (event.data.reason === 'subject_revoked' || ctx.subjectRevocationPending || !event.subject) return [];
      return [
        {
          route: { kind: 'subject', key: ledgerSubjectKey(event.subject) },
          eventType: CAEP_SESSION_REVOKED,
          subId: subjectIdFor(event.subject, ctx.issuer),
          // The family is the ledger's session: named as an extension member for receivers that track it.
          payload: sessionRevokedPayload(event.data.reason, event.occurredAt, { family_id: event.familyId }),
        },
      ];
    case 'SubjectRevoked':
      if (!event.subject) return [];
      return [
        {
          route: { kind: 'subject', key: ledgerSubjectKey(event.subject) },
          eventType: CAEP_SESSION_REVOKED,
          subId: subjectIdFor(event.subject, ctx.issuer),
          payload: sessionRevokedPayload(event.data.reason, event.occurredAt),
        },
      ];
    case 'ClientSecretRotated':
      return [
        {
          route: { kind: 'subject', key: clientSubjectKey(event.clientId) },
          eventType: CAEP_CREDENTIAL_CHANGE,
          subId: { format: 'opaque', id: event.clientId },
          // CAEP 1.0 §3.3 lists no "client secret"; a shared secret is closest to "password".
          payload: { event_timestamp: epochSeconds(event.occurredAt), initiating_entity: 'admin', credential_type: 'password', change_type: 'update' },
        },
      ];
    case 'TokenRotated': {
      if (!ctx.family || !event.subject) return [];
      const scope = narrowedScope(ctx.family, event.data.scope);
      if (scope === null) return [];
      return [
        {
          route: { kind: 'subject', key: ledgerSubjectKey(event.subject) },
          eventType: CAEP_TOKEN_CLAIMS_CHANGE,
          subId: subjectIdFor(event.subject, ctx.issuer),
          payload: { event_timestamp: epochSeconds(event.occurredAt), claims: { scope }, family_id: event.familyId },
        },
      ];
    }
    case 'SsfVerificationRequested':
      return [
        {
          route: { kind: 'stream', streamId: event.data.streamId },
          eventType: SSF_VERIFICATION,
          subId: { format: 'opaque', id: event.data.streamId },
          payload: event.data.state === null || event.data.state === undefined ? {} : { state: event.data.state },
        },
      ];
    case 'SsfStreamStatusChanged':
      return [
        {
          route: { kind: 'stream', streamId: event.data.streamId },
          eventType: SSF_STREAM_UPDATED,
          subId: { format: 'opaque', id: event.data.streamId },
          payload: { status: event.data.status, ...(event.data.reason ? { reason: event.data.reason } : {}) },
        },
      ];
    default:
      return [];
  }
}

/** Event types sent to a stream whatever it asked for (SSF 1.0 §8.1: verification and stream-updated). */
export const ALWAYS_DELIVERED: ReadonlySet<string> = new Set([SSF_VERIFICATION, SSF_STREAM_UPDATED]);

function epochSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
