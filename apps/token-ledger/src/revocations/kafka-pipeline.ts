import type { Admin, Producer } from 'kafkajs';
import {
  FeedHeartbeat,
  KafkaEventSource,
  KafkaRelay,
  KafkaRevocationSink,
  RELAY_PRODUCER_CONFIG,
  RevocationPropagator,
  RevocationTombstones,
  type FeedSigner,
  type PoisonRecord,
  type SqlBackedStore,
  type TopicNames,
} from '@token-ledger/messaging';
import { createKafka, type KafkaConnection } from '../config/kafka-client';
import type { RelayStats } from '../health/metrics';

/** How often the relay's progress is reported (to the main thread's metrics). */
export const RELAY_STATS_INTERVAL_MS = 1000;

/** The Kafka side of `serve`, as plain data (it also crosses into a worker thread). */
export interface KafkaPipelineSettings extends KafkaConnection {
  topics: TopicNames;
  /** Checkpoint name of the relay (default `kafka-relay`); the tombstones' is `<relayName>:tombstones`. */
  relayName?: string;
  /** Consumer group of the propagator (default `token-ledger-revocations`). */
  groupId?: string;
  maxAccessTokenTtlSeconds: number;
  /** Period of the signed heartbeat on revocations.v1. */
  heartbeatMs: number;
  /** Period of the tombstone sweep; default 10 s. */
  tombstoneSweepMs?: number;
  /** What a worker thread needs to open its own KeyRing and LedgerSecrets on the store's kv. */
  crypto: { signingAlg: 'ES256' | 'RS256' | 'EdDSA'; kek?: string; issuer: string };
}

/** Signs the feed (KeyRing.signJws) and hashes subjects (LedgerSecrets.subjectHash). */
export interface FeedCrypto {
  signer: FeedSigner;
  subjectHash: (subject: string) => string;
}

/**
 * The relay (store → events.v1, checkpointed in msg_checkpoints), the revocation propagator
 * (consumer group on events.v1 → signed records on revocations.v1), its signed heartbeat and the
 * tombstones of expired records: Kafka and the store only, nothing of the HTTP app, so
 * RevocationsService can run it in a thread of its own (kafka-pipeline.worker.ts).
 */
export class KafkaPipeline {
  private relay?: KafkaRelay;
  private producer?: Producer;
  private admin?: Admin;
  private propagator?: RevocationPropagator;
  private heartbeat?: FeedHeartbeat;
  private tombstones?: RevocationTombstones;
  private statsTimer?: NodeJS.Timeout;
  private published = 0;
  private aliveAt = 0;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly settings: KafkaPipelineSettings,
    private readonly crypto: FeedCrypto,
    private readonly onError: (error: unknown, component: string) => void,
    /** A record on events.v1 was dead-lettered (metric and log line in the main thread). */
    private readonly onPoison: (poison: PoisonRecord, component: string) => void = () => undefined,
    /** The relay's progress every RELAY_STATS_INTERVAL_MS (metrics in the main thread). */
    private readonly onStats: (stats: RelayStats) => void = () => undefined,
  ) {}

  get relayPosition(): number | undefined {
    return this.relay?.position;
  }

  async start(): Promise<void> {
    const { topics } = this.settings;
    const groupId = this.settings.groupId ?? 'token-ledger-revocations';
    const relayName = this.settings.relayName ?? 'kafka-relay';
    const kafka = createKafka('token-ledger', this.settings);
    this.relay = new KafkaRelay(kafka, this.store, {
      topics,
      name: relayName,
      onError: (e) => this.onError(e, 'kafka relay'),
      onBatch: ({ count }) => {
        this.published += count;
        this.aliveAt = Date.now();
      },
    });
    await this.relay.start();
    this.statsTimer = setInterval(() => void this.reportStats(), RELAY_STATS_INTERVAL_MS);
    this.statsTimer.unref();
    this.producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await this.producer.connect();
    this.admin = kafka.admin();
    await this.admin.connect();
    const sink = new KafkaRevocationSink(this.producer, topics.revocations);
    const mapping = { maxAccessTokenTtlSeconds: this.settings.maxAccessTokenTtlSeconds, subjectHash: this.crypto.subjectHash };
    this.tombstones = new RevocationTombstones(this.store, {
      ...mapping,
      name: `${relayName}:tombstones`,
      tombstone: (keys) => sink.tombstone(keys),
      sweepMs: this.settings.tombstoneSweepMs,
      onError: (e) => this.onError(e, 'revocation tombstones'),
    });
    await this.tombstones.start();
    this.propagator = new RevocationPropagator(
      new KafkaEventSource(kafka, {
        topic: topics.events,
        groupId,
        deadLetterTopic: topics.eventsDeadLetter,
        onError: (e) => this.onError(e, 'revocation propagator'),
        onPoison: (p) => this.onPoison(p, 'revocation propagator'),
      }),
      [sink],
      { ...mapping, signer: this.crypto.signer, onRecords: (records) => this.tombstones?.track(records) },
    );
    await this.propagator.start();
    this.heartbeat = new FeedHeartbeat({
      intervalMs: this.settings.heartbeatMs,
      signer: this.crypto.signer,
      head: () => this.store.headPosition(),
      caughtUpTo: (position) => this.caughtUpTo(position, groupId),
      publish: (jws) => sink.heartbeat(jws),
      onError: (e) => this.onError(e, 'revocation heartbeat'),
    });
    this.heartbeat.start();
  }

  /** High-water marks of events.v1 seen at the previous check: the propagator must have committed them. */
  private previousHighs?: Map<number, bigint>;

  /**
   * The relay has published up to `position`, and the propagator's group has committed (handled)
   * everything that was on events.v1 one interval ago: both legs of the pipeline are moving.
   */
  private async caughtUpTo(position: number, groupId: string): Promise<boolean> {
    const admin = this.admin!;
    const topic = this.settings.topics.events;
    const highs = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
    const previous = this.previousHighs;
    this.previousHighs = highs;
    if ((this.relay?.position ?? 0) < position || !previous) return false;
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const offsets = new Map(committed.partitions.map((p) => [p.partition, BigInt(p.offset)]));
    for (const [partition, high] of previous) {
      if (high === 0n) continue;
      if ((offsets.get(partition) ?? -1n) < high) return false;
    }
    return true;
  }

  /**
   * Published since the last report, the relay's position, and when it was last seen working: a
   * publish, or a check that it has published everything stored (an idle relay is a live one). A
   * relay stuck on a broker or store outage stops moving that time forward, which is what
   * "relay stopped" alerts on.
   */
  private async reportStats(): Promise<void> {
    const relay = this.relay;
    if (!relay) return;
    try {
      if (relay.position >= (await this.store.headPosition())) this.aliveAt = Date.now();
    } catch {
      /* the store cannot be reached: not seen working */
    }
    const published = this.published;
    this.published = 0;
    this.onStats({ published, position: relay.position, aliveAt: this.aliveAt });
  }

  async stop(): Promise<void> {
    clearInterval(this.statsTimer);
    await this.heartbeat?.stop();
    await this.propagator?.stop();
    await this.tombstones?.stop();
    await this.relay?.stop();
    if (this.published > 0) this.onStats({ published: this.published, position: this.relay?.position ?? 0, aliveAt: this.aliveAt });
    this.published = 0;
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }
}
