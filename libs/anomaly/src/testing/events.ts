import { randomUUID } from 'node:crypto';
import type { PublicEvent } from '@token-ledger/envelope';

/**
 * Builds public events shaped like the ledger's (libs/domain/src/events.ts) for rule tests, with a
 * running position and a clock the test moves.
 */
export class EventScript {
  position = 0;
  now = Date.parse('2026-03-01T08:00:00Z');

  constructor(
    readonly subject = 'user-1',
    readonly clientId = 'web',
  ) {}

  advance(seconds: number): this {
    this.now += seconds * 1000;
    return this;
  }

  event(type: string, familyId: string, data: Record<string, unknown> = {}, subject = this.subject): PublicEvent {
    return {
      eventId: randomUUID(),
      type,
      familyId,
      subject,
      clientId: this.clientId,
      occurredAt: new Date(this.now).toISOString(),
      position: ++this.position,
      data,
      metadata: { schemaVersion: 1, correlationId: randomUUID(), actor: 'test' },
    };
  }

  issued(familyId: string, context: Context = {}): PublicEvent {
    return this.event('TokenFamilyIssued', familyId, { generation: 1, scope: ['api:read'], context });
  }

  rotated(familyId: string, context: Context = {}, generation = 2): PublicEvent {
    return this.event('TokenRotated', familyId, { fromGeneration: generation - 1, generation, scope: ['api:read'], context });
  }

  replayed(familyId: string, context: Context = {}): PublicEvent {
    return this.event('TokenRotationReplayed', familyId, { presentedGeneration: 1, generation: 2, scope: ['api:read'], context });
  }

  rejected(familyId: string, context: Context = {}, subject = this.subject): PublicEvent {
    return this.event('RefreshRejected', familyId, { reason: 'bad_secret', presentedGeneration: 3, context }, subject);
  }

  /** A refusal of a real token (expired, revoked…): unlike a forgery, it may make a storm revoke. */
  refused(familyId: string, reason: string, context: Context = {}, subject = this.subject): PublicEvent {
    return this.event('RefreshRejected', familyId, { reason, presentedGeneration: 3, context }, subject);
  }

  /** An aggregated RefreshRejected: `count` refusals of the interval, with per-address counts. */
  tallied(familyId: string, count: number, sources: Array<{ ip: string; count: number }>, reason = 'bad_secret', subject = this.subject): PublicEvent {
    const to = new Date(this.now).toISOString();
    return this.event('RefreshRejected', familyId, { reason, presentedGeneration: 3, count, from: to, to, sources, otherSources: count - sources.reduce((n, s) => n + s.count, 0) }, subject);
  }

  reused(familyId: string, context: Context = {}): PublicEvent {
    return this.event('TokenReuseDetected', familyId, { presentedGeneration: 2, headGeneration: 5, context });
  }

  revoked(familyId: string): PublicEvent {
    return this.event('TokenFamilyRevoked', familyId, { reason: 'logout' });
  }
}

export interface Context {
  ip?: string;
  userAgent?: string;
  deviceId?: string;
}
