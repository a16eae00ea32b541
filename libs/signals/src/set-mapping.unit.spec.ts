import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, CompactSign, compactVerify } from 'jose';
import {
  CAEP_CREDENTIAL_CHANGE,
  CAEP_SESSION_REVOKED,
  CAEP_TOKEN_CLAIMS_CHANGE,
  SSF_STREAM_UPDATED,
  SSF_VERIFICATION,
  type LedgerEvent,
} from '@token-ledger/domain';
import { buildSetClaims, signSet, SET_TYP } from './set-claims';
import { backoffDelay, retryAfterMs } from './backoff';
import { initiatingEntity, narrowedScope, signalsFor } from './set-mapping';
import { setJti } from './outbox-consumer';

const ISS = 'https://ledger.example';
const at = '2026-12-02T10:00:00.000Z';
const header = { familyId: 'fam_1', subject: 'alice', clientId: 'web', occurredAt: at };

describe('signalsFor: ledger events → SSF / CAEP events', () => {
  it('TokenFamilyRevoked → one session-revoked for the family subject, initiating entity and reasons from the reason', () => {
    const event = { ...header, type: 'TokenFamilyRevoked', data: { reason: 'logout', revokedAt: at, accessTokensValidUntil: at } } as LedgerEvent;
    expect(signalsFor(event, { issuer: ISS })).toEqual([
      {
        route: { kind: 'subject', key: 'sub:alice' },
        eventType: CAEP_SESSION_REVOKED,
        subId: { format: 'iss_sub', iss: ISS, sub: 'alice' },
        payload: {
          event_timestamp: Date.parse(at) / 1000,
          initiating_entity: 'user',
          reason_admin: { en: 'The user signed out; the session was revoked' },
          reason_user: { en: 'You signed out' },
          family_id: 'fam_1',
        },
      },
    ]);
  });

  it.each([
    ['logout', 'user'],
    ['admin', 'admin'],
    ['password_change', 'admin'],
    ['subject_revoked', 'admin'],
    ['anomaly', 'policy'],
    ['reuse_detected', 'policy'],
    ['limit_exceeded', 'policy'],
    ['compromised', 'admin'],
  ])('reason %s → initiating_entity %s', (reason, entity) => {
    expect(initiatingEntity(reason)).toBe(entity);
    const event = { ...header, type: 'TokenFamilyRevoked', data: { reason, revokedAt: at, accessTokensValidUntil: at } } as LedgerEvent;
    const signals = signalsFor(event, { issuer: ISS });
    if (reason === 'subject_revoked') expect(signals).toEqual([]);
    else expect(signals[0].payload).toMatchObject({ initiating_entity: entity, reason_admin: { en: expect.any(String) } });
  });

  it('SubjectRevoked → ONE session-revoked for the subject; its per-family TokenFamilyRevoked{subject_revoked} send nothing', () => {
    const subject = { ...header, familyId: '', subject: 'Bob@Example.com', type: 'SubjectRevoked', data: { reason: 'password_change', familyIds: ['f1', 'f2'] } } as LedgerEvent;
    const [signal, ...rest] = signalsFor(subject, { issuer: ISS });
    expect(rest).toEqual([]);
    expect(signal.route).toEqual({ kind: 'subject', key: 'sub:bob@example.com' });
    expect(signal.subId).toEqual({ format: 'email', email: 'Bob@Example.com' });
    expect(signal.payload).toMatchObject({ initiating_entity: 'admin', reason_user: { en: 'Your password was changed' } });
    for (const familyId of ['f1', 'f2']) {
      const family = { ...header, familyId, subject: 'Bob@Example.com', type: 'TokenFamilyRevoked', data: { reason: 'subject_revoked', revokedAt: at, accessTokensValidUntil: at } } as LedgerEvent;
      expect(signalsFor(family, { issuer: ISS })).toEqual([]);
      // The revocation's family events carry its reason: silent while it is under way, not otherwise.
      const carried = { ...family, data: { ...family.data, reason: 'password_change' } } as LedgerEvent;
      expect(signalsFor(carried, { issuer: ISS, subjectRevocationPending: true })).toEqual([]);
      expect(signalsFor(carried, { issuer: ISS, subjectRevocationPending: false })).toHaveLength(1);
    }
  });

  it('ClientSecretRotated → credential-change (update) for the client as an opaque subject', () => {
    const event = { type: 'ClientSecretRotated', familyId: '', subject: '', clientId: 'billing', occurredAt: at, data: { secretHash: 'h', previousValidUntil: null } } as LedgerEvent;
    const [signal] = signalsFor(event, { issuer: ISS });
    expect(signal).toEqual({
      route: { kind: 'subject', key: 'client:billing' },
      eventType: CAEP_CREDENTIAL_CHANGE,
      subId: { format: 'opaque', id: 'billing' },
      payload: { event_timestamp: Date.parse(at) / 1000, initiating_entity: 'admin', credential_type: 'password', change_type: 'update' },
    });
    expect(JSON.stringify(signal)).not.toContain('"h"');
  });

  it('TokenRotated → token-claims-change only when the scope narrows and differs from the previous rotation', () => {
    const rotated = (scope: string[]) => ({ ...header, type: 'TokenRotated', data: { fromGeneration: 1, generation: 2, tokenHash: 'x', idleExpiresAt: at, scope } }) as LedgerEvent;
    const family = { granted: ['a', 'b', 'c'], last: ['a', 'b', 'c'] };
    const [signal] = signalsFor(rotated(['a']), { issuer: ISS, family });
    expect(signal.eventType).toBe(CAEP_TOKEN_CLAIMS_CHANGE);
    expect(signal.payload).toEqual({ event_timestamp: Date.parse(at) / 1000, claims: { scope: 'a' }, family_id: 'fam_1' });
    expect(signalsFor(rotated(['a', 'b', 'c']), { issuer: ISS, family })).toEqual([]); // not narrower
    expect(signalsFor(rotated(['a']), { issuer: ISS, family: { granted: family.granted, last: ['a'] } })).toEqual([]); // same as last
    expect(signalsFor(rotated(['a']), { issuer: ISS })).toEqual([]); // family not followed
    expect(narrowedScope({ granted: ['a', 'b'], last: ['a'] }, ['b'])).toBe('b');
    expect(narrowedScope({ granted: ['a', 'b'], last: ['a', 'b'] }, ['a', 'z'])).toBeNull(); // not a subset
  });

  it('SsfVerificationRequested → verification {state}; SsfStreamStatusChanged → stream-updated {status, reason}; both to their stream', () => {
    const ssf = { familyId: '', subject: '', clientId: '', occurredAt: at } as const;
    const [v] = signalsFor({ ...ssf, type: 'SsfVerificationRequested', data: { streamId: 's1', state: 'xyz' } }, { issuer: ISS });
    expect(v).toEqual({ route: { kind: 'stream', streamId: 's1' }, eventType: SSF_VERIFICATION, subId: { format: 'opaque', id: 's1' }, payload: { state: 'xyz' } });
    const [u] = signalsFor({ ...ssf, type: 'SsfStreamStatusChanged', data: { streamId: 's1', status: 'paused', reason: 'maintenance' } }, { issuer: ISS });
    expect(u).toEqual({ route: { kind: 'stream', streamId: 's1' }, eventType: SSF_STREAM_UPDATED, subId: { format: 'opaque', id: 's1' }, payload: { status: 'paused', reason: 'maintenance' } });
    expect(signalsFor({ ...ssf, type: 'SsfVerificationRequested', data: { streamId: 's1', state: null } }, { issuer: ISS })[0].payload).toEqual({});
  });

  it('sends nothing for the other ledger events', () => {
    for (const type of ['TokenFamilyIssued', 'TokenReuseDetected', 'TokenFamilyExpired', 'RefreshRejected', 'FamilyLinkedToSubject', 'SsfSubjectAdded']) {
      expect(signalsFor({ ...header, type, data: { scope: ['a'], streamId: 's' } } as unknown as LedgerEvent, { issuer: ISS })).toEqual([]);
    }
  });
});

describe('SET claims and signing', () => {
  it('has iss, aud, iat, jti, txn, sub_id, events — no sub, no exp — and is signed with typ secevent+jwt', async () => {
    const claims = buildSetClaims({ issuer: ISS, aud: ['https://rp.example'], iat: 1_800_000_000, jti: 'j1', txn: 'corr-1', subId: { format: 'iss_sub', iss: ISS, sub: 'alice' }, eventType: CAEP_SESSION_REVOKED, payload: { event_timestamp: 1 } });
    expect(claims).toEqual({ iss: ISS, aud: 'https://rp.example', iat: 1_800_000_000, jti: 'j1', txn: 'corr-1', sub_id: { format: 'iss_sub', iss: ISS, sub: 'alice' }, events: { [CAEP_SESSION_REVOKED]: { event_timestamp: 1 } } });
    expect(claims).not.toHaveProperty('sub');
    expect(claims).not.toHaveProperty('exp');
    expect(buildSetClaims({ ...{ issuer: ISS, iat: 1, jti: 'j', subId: { format: 'opaque', id: 's' }, eventType: 'x', payload: {} }, aud: ['a', 'b'] }).aud).toEqual(['a', 'b']);
    expect(buildSetClaims({ issuer: ISS, aud: ['a'], iat: 1, jti: 'j', txn: null, subId: { format: 'opaque', id: 's' }, eventType: 'x', payload: {} })).not.toHaveProperty('txn');

    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const signer = {
      signJws: (typ: string, payload: object) =>
        new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ }).sign(privateKey),
    };
    const set = await signSet(signer, claims);
    expect(decodeProtectedHeader(set)).toEqual({ alg: 'ES256', kid: 'k1', typ: SET_TYP });
    expect(decodeJwt(set)).toEqual(claims);
    await expect(compactVerify(set, await importJWK(await exportJWK(publicKey), 'ES256'))).resolves.toBeDefined();
  });

  it('jti is the same for the same event, stream and type, and differs otherwise', () => {
    expect(setJti('e1', 's1', 'x')).toBe(setJti('e1', 's1', 'x'));
    expect(new Set([setJti('e1', 's1', 'x'), setJti('e1', 's2', 'x'), setJti('e2', 's1', 'x'), setJti('e1', 's1', 'y')]).size).toBe(4);
  });
});

describe('push backoff', () => {
  it('doubles from min to the cap, with at most half of each delay random', () => {
    const s = { minMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 4, 7, 8, 30].map((n) => backoffDelay(n, s, 1))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
    expect(backoffDelay(1, s, 0)).toBe(500);
    expect(backoffDelay(3, s, 0.5)).toBe(3000);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('7', 0)).toBe(7000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
    expect(retryAfterMs(null, 0)).toBeUndefined();
  });
});
