import * as path from 'node:path';
import { Inject, Injectable, Optional, type OnModuleDestroy } from '@nestjs/common';
import type { Admin } from 'kafkajs';
import { placeConsumer, sqlBacked, SupervisedThread, type OpenedStore, type StoreConsumer } from '@token-ledger/event-store';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';
import { DEFAULT_TOPICS, ensureTopics, FeedHeartbeat, InProcessEventSource, positionBefore, REVOCATION_EVENT_TYPES, RevocationHub, RevocationPropagator, type PoisonRecord, type TopicNames } from '@token-ledger/messaging';
import { createKafka } from '../config/kafka-client';
import type { LedgerConfig } from '../config/ledger-config';
import { LedgerMetrics } from '../health/metrics';
import { EVENT_STORE, LEDGER_CONFIG } from '../ledger/tokens';
import { KafkaPipeline, type KafkaPipelineSettings } from './kafka-pipeline';
import type { KafkaThreadData, KafkaThreadMessage } from './kafka-pipeline.worker';

export const REVOCATIONS_OPTIONS = Symbol('REVOCATIONS_OPTIONS');

export interface RevocationsOptions {
  topics?: TopicNames;
  /** Consumer group of the Kafka propagator; default `token-ledger-revocations`. */
  groupId?: string;
  /** Checkpoint name of the relay; default `kafka-relay`. */
  relayName?: string;
  /** Partitions for ensureTopics; default 12. */
  partitions?: number;
  /** Overrides config.kafkaBrokers (tests); `null` forces in-process. */
  kafkaBrokers?: string[] | null;
  /** Overrides config.revocationHeartbeatMs (tests). */
  heartbeatMs?: number;
  /** Margin over the max access-token TTL for the hub's start and the SSE replay clamp; default 60 s. */
  replayMarginSeconds?: number;
  /** Period of the tombstone sweep on revocations.v1; default 10 s. */
  tombstoneSweepMs?: number;
  onError?: (error: unknown, component: string) => void;
  /** A record on events.v1 was not a public event and went to the dead-letter topic. */
  onPoison?: (poison: PoisonRecord, component: string) => void;
}

/**
 * Runs the revocation side of `serve` (SPEC §4):
 * - always: an in-process feed (store subscription) → RevocationHub, which the SSE endpoint streams.
 *   It starts at the last position older than max access-token TTL + 1 min, so the hub's "active"
 *   set holds every revocation that can still matter; no checkpoint (rebuilt on every start).
 *   Records are signed (KeyRing.signJws, typ revocation+jwt) once, with subjects hashed; a signed
 *   heartbeat goes to the SSE connections while the hub feed keeps up with the store.
 * - with Kafka: the KafkaPipeline — the relay (store → events.v1, checkpointed in msg_checkpoints)
 *   and the propagator (consumer group `token-ledger-revocations` on events.v1 → revocations.v1) —
 *   in a worker thread of its own where the store allows it (PostgreSQL; placeConsumer), so the
 *   API's load does not delay what resource servers and the anomaly engine see; inline elsewhere.
 *   It signs with a KeyRing of its own on the same kv, heartbeats on the topic and tombstones
 *   records whose accessTokensValidUntil has passed.
 */
@Injectable()
export class RevocationsService implements OnModuleDestroy {
  readonly hub = new RevocationHub();
  private readonly streams = new Set<{ destroy(): void }>();
  private hubFeed?: RevocationPropagator;
  private hubHeartbeat?: FeedHeartbeat;
  private kafka?: StoreConsumer;
  private admin?: Admin;
  readonly topics: TopicNames;

  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(EVENT_STORE) private readonly store: OpenedStore,
    @Inject(KeyRing) private readonly keyRing: KeyRing,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    @Optional() @Inject(REVOCATIONS_OPTIONS) private readonly options: RevocationsOptions = {},
    @Optional() private readonly metrics?: LedgerMetrics,
  ) {
    this.options = options ?? {};
    this.topics = this.options.topics ?? DEFAULT_TOPICS;
  }

  get kafkaEnabled(): boolean {
    return !!this.brokers;
  }

  private get brokers(): string[] | undefined {
    if (this.options.kafkaBrokers === null) return undefined;
    return this.options.kafkaBrokers ?? this.config.kafkaBrokers;
  }

  async start(): Promise<void> {
    const store = sqlBacked(this.store, 'the messaging checkpoints');
    const ttl = this.config.maxAccessTokenTtlSeconds;
    const onError = (component: string) => (error: unknown) => this.options.onError?.(error, component);
    const source = new InProcessEventSource(store, {
      after: () => positionBefore(store, new Date(Date.now() - (ttl + this.marginSeconds) * 1000)),
      onPosition: (p) => this.hub.advance(p),
      onError: onError('revocation hub feed'),
      // Read at every append only while an SSE connection listens; otherwise at most every 100 ms
      // (IDLE_PROMPT_WAKE_DELAY_MS), so the refresh path does not pay a read and a batch per rotation.
      prompt: () => this.hub.listening,
      // Only revocations leave the database: every other event would be read and parsed on the
      // request thread to be dropped (~3 % of the server's CPU a rotation at 64 chains on
      // PostgreSQL, bench/refresh/README.md).
      types: REVOCATION_EVENT_TYPES,
    });
    const subjectHash = (subject: string) => this.secrets.subjectHash(subject);
    this.hubFeed = new RevocationPropagator(source, [this.hub], { maxAccessTokenTtlSeconds: ttl, subjectHash, signer: this.keyRing });
    await this.hubFeed.start();
    const heartbeatMs = this.heartbeatMs;
    this.hubHeartbeat = new FeedHeartbeat({
      intervalMs: heartbeatMs,
      signer: this.keyRing,
      head: () => store.headPosition(),
      caughtUpTo: async (position) => this.hub.position >= position,
      publish: (jws) => this.hub.heartbeat(jws),
      onError: onError('revocation hub heartbeat'),
    });
    this.hubHeartbeat.start();

    const brokers = this.brokers;
    if (!brokers) return;
    const security = this.config.kafkaSecurity;
    const kafka = createKafka('token-ledger', { brokers, security });
    this.admin = kafka.admin();
    await this.admin.connect();
    await ensureTopics(this.admin, { topics: this.topics, partitions: this.options.partitions });
    const settings: KafkaPipelineSettings = {
      brokers,
      security,
      topics: this.topics,
      relayName: this.options.relayName,
      groupId: this.options.groupId,
      maxAccessTokenTtlSeconds: ttl,
      heartbeatMs,
      tombstoneSweepMs: this.options.tombstoneSweepMs,
      crypto: { signingAlg: this.config.signingAlg, kek: this.config.kek, issuer: this.config.issuer },
    };
    const feedCrypto = { signer: this.keyRing, subjectHash };
    this.kafka = placeConsumer<StoreConsumer>(store, {
      thread: (location) =>
        new SupervisedThread<KafkaThreadMessage>('kafka', path.join(__dirname, 'kafka-pipeline.worker'), { location, settings } satisfies KafkaThreadData, {
          message: (m) =>
            m.kind === 'relay'
              ? this.metrics?.relayProgress(m.stats)
              : m.kind === 'poison'
                ? this.options.onPoison?.(m.poison, m.component)
                : this.options.onError?.(Object.assign(new Error(m.error.message), m.error), m.component),
          error: (error) => this.options.onError?.(error, 'kafka thread'),
        }),
      inline: () =>
        new KafkaPipeline(
          store,
          settings,
          feedCrypto,
          (error, component) => this.options.onError?.(error, component),
          (poison, component) => this.options.onPoison?.(poison, component),
          (stats) => this.metrics?.relayProgress(stats),
        ),
    });
    await this.kafka.start();
    // Started counts as seen working: the first report comes a second later.
    this.metrics?.relayLastPublish.set(Date.now() / 1000);
    this.metrics?.relayUp.set(1);
  }

  /**
   * Resolves once the hub has processed what the store held when this was called (at most 2 s; at
   * once when the store cannot be reached):
   * a new SSE connection replays the hub's active set, which may be up to a read behind while
   * nobody listened (the feed is prompt only with listeners).
   */
  async hubCaughtUp(): Promise<void> {
    // The store unreachable: serve what the hub has, as before (its heartbeat then says it is stale).
    const head = await this.store.headPosition().catch(() => 0);
    const deadline = Date.now() + 2_000;
    while (this.hub.position < head && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  private floor?: { at: number; position: Promise<number> };

  /**
   * Where an SSE replay starts at the earliest (Last-Event-ID clamp): the last position recorded
   * before now − max access-token TTL − 1 min. Cached for 10 s: a burst of reconnects costs one
   * binary search (positionBefore), not one each.
   */
  replayFloor(): Promise<number> {
    const now = Date.now();
    if (!this.floor || now - this.floor.at > 10_000) {
      const position = positionBefore(this.store, new Date(now - (this.config.maxAccessTokenTtlSeconds + this.marginSeconds) * 1000));
      position.catch(() => (this.floor = undefined));
      this.floor = { at: now, position };
    }
    return this.floor.position;
  }

  private get marginSeconds(): number {
    return this.options.replayMarginSeconds ?? 60;
  }

  /** Period of the signed heartbeats (SSE and Kafka). */
  get heartbeatMs(): number {
    return this.options.heartbeatMs ?? this.config.revocationHeartbeatMs ?? 2_000;
  }

  /** Open SSE responses, ended when the app shuts down (else the HTTP server waits for them). */
  track(stream: { destroy(): void; once(event: 'close', fn: () => void): unknown }): void {
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
  }

  onModuleDestroy(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
  }

  /** For /readyz: the broker answers (when Kafka is configured). */
  async kafkaReachable(): Promise<boolean> {
    if (!this.admin) return !this.brokers;
    try {
      await this.admin.describeCluster();
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    await this.kafka?.stop();
    this.metrics?.relayUp.set(0);
    if (this.metrics) this.metrics.relayPosition = undefined;
    await this.admin?.disconnect().catch(() => undefined);
    await this.hubHeartbeat?.stop();
    await this.hubFeed?.stop();
  }

  /** Stops the in-process hub feed only (tests: a stalled feed must make SSE verifiers stale). */
  async stopHubFeed(): Promise<void> {
    await this.hubFeed?.stop();
  }
}
