/** Builders for forensics unit tests: domain-shaped events appended with the hash chain. */
import { randomUUID } from 'node:crypto';
import { SCHEMA_VERSION, type FamilyPolicy, type LedgerEvent } from '@token-ledger/domain';
import type { EventStore, NewEvent } from '@token-ledger/event-store';
import { appendChained, type SealOptions } from '@token-ledger/envelope';

export const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
export const S = 1000;
export const POLICY: FamilyPolicy = { accessTokenTtl: 300, refreshIdleTtl: 3600, refreshAbsoluteTtl: 86_400, reuseGraceSeconds: 0 };
export const iso = (ms: number) => new Date(ms).toISOString();

export function envelope(event: LedgerEvent, meta: Record<string, unknown> = {}): NewEvent {
  return {
    eventId: randomUUID(),
    type: event.type,
    data: event.data,
    metadata: { familyId: event.familyId, subject: event.subject, clientId: event.clientId, occurredAt: event.occurredAt, schemaVersion: SCHEMA_VERSION, ...meta },
  };
}

export async function append(store: EventStore, streamId: string, events: LedgerEvent[], meta: Record<string, unknown> = {}, options: SealOptions = {}): Promise<void> {
  await appendChained(store, streamId, events.map((e) => envelope(e, meta)), options);
}

const header = (familyId: string, subject: string, at: number) => ({ familyId, subject, clientId: 'web', occurredAt: iso(at) });

export const ev = {
  linked: (subject: string, familyId: string, at: number): LedgerEvent => ({
    type: 'FamilyLinkedToSubject',
    ...header(familyId, subject, at),
    data: { familyId, clientId: 'web' },
  }),
  issued: (familyId: string, subject: string, at: number, policy: FamilyPolicy = POLICY, ip = '203.0.113.7'): LedgerEvent => ({
    type: 'TokenFamilyIssued',
    ...header(familyId, subject, at),
    data: {
      scope: ['api:read'],
      audience: [],
      generation: 1,
      tokenHash: 'h1',
      createdAt: iso(at),
      idleExpiresAt: iso(Math.min(at + policy.refreshIdleTtl * S, at + policy.refreshAbsoluteTtl * S)),
      absoluteExpiresAt: iso(at + policy.refreshAbsoluteTtl * S),
      policy,
      context: { ip },
    },
  }),
  rotated: (familyId: string, subject: string, at: number, generation: number, ip = '203.0.113.7', policy: FamilyPolicy = POLICY): LedgerEvent => ({
    type: 'TokenRotated',
    ...header(familyId, subject, at),
    data: { fromGeneration: generation - 1, generation, tokenHash: `h${generation}`, idleExpiresAt: iso(at + policy.refreshIdleTtl * S), scope: ['api:read'], context: { ip } },
  }),
  rejected: (familyId: string, subject: string, at: number, ip = '198.51.100.9'): LedgerEvent => ({
    type: 'RefreshRejected',
    ...header(familyId, subject, at),
    data: { reason: 'bad_secret', presentedGeneration: 1, context: { ip } },
  }),
  reuse: (familyId: string, subject: string, at: number, presented: number, head: number): LedgerEvent => ({
    type: 'TokenReuseDetected',
    ...header(familyId, subject, at),
    data: { presentedGeneration: presented, headGeneration: head, context: { ip: '198.51.100.9' } },
  }),
  revoked: (familyId: string, subject: string, at: number, reason = 'reuse_detected'): LedgerEvent => ({
    type: 'TokenFamilyRevoked',
    ...header(familyId, subject, at),
    data: { reason, revokedAt: iso(at), accessTokensValidUntil: iso(at + 300 * S) },
  }),
};
