import type { Producer } from 'kafkajs';
import type { PublicEvent } from '@token-ledger/envelope';
import type { EventSource } from './event-source';
import { HEADER_EVENT_ID } from './topics';

/**
 * One record of `token-ledger.revocations.v1` (SPEC §4) and of the SSE stream. The SPEC's value is
 * `{familyId, subject, reason, revokedAt, accessTokensValidUntil}`; added: `jti` (a single revoked
 * access token), `eventId` and `position` (the store position of the event it came from).
 *
 * A resource server rejects an access token whose `sid` is a revoked family, or whose `jti` is
 * revoked, until `accessTokensValidUntil` (after that the token has expired anyway and the record
 * may be forgotten).
 */
export interface RevocationRecord {
  familyId: string;
  subject: string;
  reason: string;
  revokedAt: string;
  accessTokensValidUntil: string;
  jti?: string;
  eventId: string;
  position: number;
}

export const REVOCATION_EVENT_TYPES = new Set(['TokenFamilyRevoked', 'TokenFamilyExpired', 'AccessTokenRevoked']);

export interface RevocationMappingOptions {
  /** Upper bound on access token lifetimes (LEDGER_MAX_ACCESS_TOKEN_TTL); bounds expiry records. */
  maxAccessTokenTtlSeconds: number;
}

/**
 * The compaction key: the family for family-wide records; `familyId:jti` for a single access token,
 * so a later family revocation (key familyId) never compacts a jti record away, nor the reverse.
 */
export function revocationKey(record: Pick<RevocationRecord, 'familyId' | 'jti'>): string {
  return record.jti ? `${record.familyId}:${record.jti}` : record.familyId;
}

/**
 * Event → revocation record, or undefined for every other event type.
 * - TokenFamilyRevoked (every reason: logout, admin, reuse_detected, subject_revoked, limit_exceeded,
 *   anomaly …; RevokeSubject revokes each family with its own event): as recorded.
 * - TokenFamilyExpired: reason `expired_idle` / `expired_absolute`, revokedAt = expiredAt; the event
 *   does not carry the family's access-token TTL, so accessTokensValidUntil = expiredAt + the
 *   deployment's maximum access-token TTL (a safe upper bound). Access tokens of an expired family
 *   are treated as revoked — stricter than the RFCs require, never looser.
 * - AccessTokenRevoked: reason `access_token_revoked`, `jti`, valid until the token's own expiry.
 */
export function toRevocationRecord(event: PublicEvent, opts: RevocationMappingOptions): RevocationRecord | undefined {
  const base = { familyId: event.familyId, subject: event.subject, eventId: event.eventId, position: event.position };
  const data = (event.data ?? {}) as Record<string, string>;
  switch (event.type) {
    case 'TokenFamilyRevoked':
      return { ...base, reason: data.reason, revokedAt: data.revokedAt, accessTokensValidUntil: data.accessTokensValidUntil };
    case 'TokenFamilyExpired': {
      const at = data.expiredAt ?? event.occurredAt;
      return {
        ...base,
        reason: `expired_${data.reason}`,
        revokedAt: at,
        accessTokensValidUntil: new Date(Date.parse(at) + opts.maxAccessTokenTtlSeconds * 1000).toISOString(),
      };
    }
    case 'AccessTokenRevoked':
      return { ...base, reason: 'access_token_revoked', jti: data.jti, revokedAt: event.occurredAt, accessTokensValidUntil: data.expiresAt };
    default:
      return undefined;
  }
}

/** Where revocation records go: the compacted topic, the in-memory hub behind SSE. */
export interface RevocationSink {
  publish(records: RevocationRecord[]): Promise<void>;
}

/** Publishes to `token-ledger.revocations.v1` (key per revocationKey). The producer should be idempotent. */
export class KafkaRevocationSink implements RevocationSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async publish(records: RevocationRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map((r) => ({ key: revocationKey(r), value: JSON.stringify(r), headers: { [HEADER_EVENT_ID]: r.eventId } })),
    });
  }
}

type Listener = (records: RevocationRecord[]) => void;

/**
 * In-memory fan-out of revocation records to SSE connections, plus the set that is still relevant
 * (accessTokensValidUntil in the future), which a new connection without Last-Event-ID receives
 * first. `position` = the last store position the hub's feed has processed (revocation or not).
 */
export class RevocationHub implements RevocationSink {
  private readonly listeners = new Set<Listener>();
  private readonly live = new Map<string, RevocationRecord>();
  private lastPosition = 0;
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  get position(): number {
    return this.lastPosition;
  }

  get size(): number {
    return this.live.size;
  }

  async publish(records: RevocationRecord[]): Promise<void> {
    if (records.length === 0) return;
    const now = this.now();
    const fresh: RevocationRecord[] = [];
    for (const r of records) {
      const key = revocationKey(r);
      const known = this.live.get(key);
      if (known && known.position >= r.position) continue; // duplicate delivery
      if (Date.parse(r.accessTokensValidUntil) > now) this.live.set(key, r);
      fresh.push(r);
    }
    this.advance(records[records.length - 1].position);
    if (now - this.lastPrune > 60_000) this.prune(now);
    if (fresh.length === 0) return;
    for (const listener of this.listeners) listener(fresh);
  }

  /** The feed processed everything up to `position` (also events that revoke nothing). */
  advance(position: number): void {
    if (position > this.lastPosition) this.lastPosition = position;
  }

  /** Records still relevant, in position order. */
  active(): RevocationRecord[] {
    this.prune(this.now());
    return [...this.live.values()].sort((a, b) => a.position - b.position);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [key, r] of this.live) if (Date.parse(r.accessTokensValidUntil) <= now) this.live.delete(key);
  }
}

/**
 * Turns events from a source into revocation records for its sinks. With Kafka: source = the
 * `token-ledger-revocations` consumer group on events.v1, sink = the compacted revocations topic.
 * The SSE hub is fed on every node by an in-process source (each node's SSE clients need every
 * record, and a consumer group would give each node only its partitions).
 */
export class RevocationPropagator {
  constructor(
    private readonly source: EventSource,
    private readonly sinks: RevocationSink[],
    private readonly options: RevocationMappingOptions & { onRecords?: (records: RevocationRecord[]) => void },
  ) {}

  start(): Promise<void> {
    return this.source.start(async (events) => {
      const records: RevocationRecord[] = [];
      for (const e of events) {
        const r = toRevocationRecord(e, this.options);
        if (r) records.push(r);
      }
      if (records.length === 0) return;
      for (const sink of this.sinks) await sink.publish(records);
      this.options.onRecords?.(records);
    });
  }

  stop(): Promise<void> {
    return this.source.stop();
  }
}
