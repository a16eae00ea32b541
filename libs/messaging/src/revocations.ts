import type { Producer } from 'kafkajs';
import { activeTraceparent, inBatchSpan, type PublicEvent } from '@token-ledger/envelope';
import type { EventSource } from './event-source';
import { eventContext, HEADER_TRACEPARENT } from './event-trace';
import { HEADER_EVENT_ID } from './topics';
import { HEARTBEAT_KEY, REVOCATION_RECORD_TYP, type FeedSigner } from './revocation-record';

/**
 * One record of `token-ledger.revocations.v1` (SPEC §4) and of the SSE stream: the payload of the
 * signed value (a JWS, see revocation-record.ts). The SPEC's payload is `{familyId, subjectHash,
 * reason, revokedAt, accessTokensValidUntil}` — no subject in clear, only a keyed hash (LedgerSecrets
 * .subjectHash) that correlates records of one subject; added: `jti` (a single revoked access token),
 * `eventId` and `position` (the store position of the event it came from).
 *
 * A resource server rejects an access token whose `sid` is a revoked family, or whose `jti` is
 * revoked, until `accessTokensValidUntil` (after that the token has expired anyway, and the record
 * is tombstoned on the topic).
 */
export interface RevocationRecord {
  familyId: string;
  subjectHash: string;
  reason: string;
  revokedAt: string;
  accessTokensValidUntil: string;
  jti?: string;
  eventId: string;
  position: number;
}

/** A record and its JWS (signed once by the propagator, then sent to every sink as is). */
export interface SignedRevocation {
  record: RevocationRecord;
  jws: string;
  /** Transport only, not signed: the trace context of the event it came from (Kafka header). */
  traceparent?: string;
}

export interface RevocationMappingOptions {
  /** Upper bound on access token lifetimes (LEDGER_MAX_ACCESS_TOKEN_TTL); bounds expiry records. */
  maxAccessTokenTtlSeconds: number;
  /** Keyed hash of the subject (LedgerSecrets.subjectHash): the subject is never published. */
  subjectHash: (subject: string) => string;
}

/**
 * The compaction key: the family for family-wide records; `familyId:jti` for a single access token,
 * so a later family revocation (key familyId) never compacts a jti record away, nor the reverse.
 */
export function revocationKey(record: Pick<RevocationRecord, 'familyId' | 'jti'>): string {
  return record.jti ? `${record.familyId}:${record.jti}` : record.familyId;
}

/** The event types toRevocationRecord turns into records: what a revocation feed needs to read. */
export const REVOCATION_EVENT_TYPES: readonly string[] = ['TokenFamilyRevoked', 'TokenFamilyExpired', 'AccessTokenRevoked'];

/**
 * Event → revocation record, or undefined for every other event type (REVOCATION_EVENT_TYPES).
 * - TokenFamilyRevoked (every reason: logout, admin, reuse_detected, subject_revoked, limit_exceeded,
 *   anomaly …; RevokeSubject revokes each family with its own event): as recorded.
 * - TokenFamilyExpired: reason `expired_idle` / `expired_absolute`, revokedAt = expiredAt; the event
 *   does not carry the family's access-token TTL, so accessTokensValidUntil = expiredAt + the
 *   deployment's maximum access-token TTL (a safe upper bound). Access tokens of an expired family
 *   are treated as revoked — stricter than the RFCs require, never looser.
 * - AccessTokenRevoked: reason `access_token_revoked`, `jti`, valid until the token's own expiry.
 */
export function toRevocationRecord(event: PublicEvent, opts: RevocationMappingOptions): RevocationRecord | undefined {
  const base = { familyId: event.familyId, subjectHash: opts.subjectHash(event.subject ?? ''), eventId: event.eventId, position: event.position };
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

/** Signs each record (typ revocation+jwt) with the ledger's active key. */
export async function signRevocations(signer: FeedSigner, records: RevocationRecord[]): Promise<SignedRevocation[]> {
  return Promise.all(records.map(async (record) => ({ record, jws: await signer.signJws(REVOCATION_RECORD_TYP, record) })));
}

/** Where revocation records go: the compacted topic, the in-memory hub behind SSE. */
export interface RevocationSink {
  publish(records: SignedRevocation[]): Promise<void>;
  /** A signed heartbeat (revocation-record.ts): the feed is current up to its position. */
  heartbeat?(jws: string): Promise<void>;
}

/**
 * Publishes to `token-ledger.revocations.v1` (key per revocationKey, value the JWS). The producer
 * should be idempotent. Heartbeats go under HEARTBEAT_KEY (compaction keeps the latest one);
 * tombstones (null values) drop a key once its record no longer matters (RevocationTombstones).
 */
export class KafkaRevocationSink implements RevocationSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async publish(records: SignedRevocation[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map(({ record: r, jws, traceparent }) => ({
        key: revocationKey(r),
        value: jws,
        headers: { [HEADER_EVENT_ID]: r.eventId, ...(traceparent ? { [HEADER_TRACEPARENT]: traceparent } : {}) },
      })),
    });
  }

  async heartbeat(jws: string): Promise<void> {
    await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: HEARTBEAT_KEY, value: jws }] });
  }

  async tombstone(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.producer.send({ topic: this.topic, acks: -1, messages: keys.map((key) => ({ key, value: null })) });
  }
}

type Listener = (records: SignedRevocation[]) => void;
type HeartbeatListener = (jws: string) => void;

/**
 * In-memory fan-out of signed revocation records and heartbeats to SSE connections, plus the set
 * that is still relevant (accessTokensValidUntil in the future), which a new connection without
 * Last-Event-ID receives first. `position` = the last store position the hub's feed has processed
 * (revocation or not).
 */
export class RevocationHub implements RevocationSink {
  private readonly listeners = new Set<Listener>();
  private readonly heartbeatListeners = new Set<HeartbeatListener>();
  private readonly live = new Map<string, SignedRevocation>();
  private lastPosition = 0;
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  get position(): number {
    return this.lastPosition;
  }

  get size(): number {
    return this.live.size;
  }

  /** Somebody is subscribed (an SSE connection): then the feed's latency is the product. */
  get listening(): boolean {
    return this.listeners.size > 0;
  }

  async publish(records: SignedRevocation[]): Promise<void> {
    if (records.length === 0) return;
    const now = this.now();
    const fresh: SignedRevocation[] = [];
    for (const signed of records) {
      const r = signed.record;
      const key = revocationKey(r);
      const known = this.live.get(key);
      if (known && known.record.position >= r.position) continue; // duplicate delivery
      if (Date.parse(r.accessTokensValidUntil) > now) this.live.set(key, signed);
      fresh.push(signed);
    }
    this.advance(records[records.length - 1].record.position);
    if (now - this.lastPrune > 60_000) this.prune(now);
    if (fresh.length === 0) return;
    for (const listener of this.listeners) listener(fresh);
  }

  /** The latest signed heartbeat: a new connection gets it with `ready` (its `at` tells its age). */
  lastHeartbeat?: string;

  async heartbeat(jws: string): Promise<void> {
    this.lastHeartbeat = jws;
    for (const listener of this.heartbeatListeners) listener(jws);
  }

  /** The feed processed everything up to `position` (also events that revoke nothing). */
  advance(position: number): void {
    if (position > this.lastPosition) this.lastPosition = position;
  }

  /** Records still relevant, in position order. */
  active(): SignedRevocation[] {
    this.prune(this.now());
    return [...this.live.values()].sort((a, b) => a.record.position - b.record.position);
  }

  subscribe(listener: Listener, onHeartbeat?: HeartbeatListener): () => void {
    this.listeners.add(listener);
    if (onHeartbeat) this.heartbeatListeners.add(onHeartbeat);
    return () => {
      this.listeners.delete(listener);
      if (onHeartbeat) this.heartbeatListeners.delete(onHeartbeat);
    };
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [key, r] of this.live) if (Date.parse(r.record.accessTokensValidUntil) <= now) this.live.delete(key);
  }
}

/**
 * Turns events from a source into signed revocation records for its sinks. With Kafka: source =
 * the `token-ledger-revocations` consumer group on events.v1, sink = the compacted revocations
 * topic. The SSE hub is fed on every node by an in-process source (each node's SSE clients need
 * every record, and a consumer group would give each node only its partitions).
 */
export class RevocationPropagator {
  constructor(
    private readonly source: EventSource,
    private readonly sinks: RevocationSink[],
    private readonly options: RevocationMappingOptions & { signer: FeedSigner; onRecords?: (records: RevocationRecord[]) => void },
  ) {}

  start(): Promise<void> {
    return this.source.start(async (events) => {
      const records: RevocationRecord[] = [];
      const from: PublicEvent[] = [];
      for (const e of events) {
        const r = toRevocationRecord(e, this.options);
        if (r) {
          records.push(r);
          from.push(e);
        }
      }
      if (records.length === 0) return;
      await inBatchSpan('revocations propagate', from.map(eventContext), { 'messaging.operation.type': 'process' }, async () => {
        const signed = await signRevocations(this.options.signer, records);
        // Each record names its own event's trace, so a verifier's span joins the right request.
        signed.forEach((s, i) => {
          const ctx = eventContext(from[i]);
          const traceparent = ctx && activeTraceparent(ctx);
          if (traceparent) s.traceparent = traceparent;
        });
        for (const sink of this.sinks) await sink.publish(signed);
      });
      this.options.onRecords?.(records);
    });
  }

  stop(): Promise<void> {
    return this.source.stop();
  }
}
