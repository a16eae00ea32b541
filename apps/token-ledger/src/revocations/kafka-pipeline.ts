import type { Producer } from 'kafkajs';
import {
  KafkaEventSource,
  KafkaRelay,
  KafkaRevocationSink,
  RELAY_PRODUCER_CONFIG,
  RevocationPropagator,
  type SqlBackedStore,
  type TopicNames,
} from '@token-ledger/messaging';
import { createKafka, type KafkaConnection } from '../config/kafka-client';

/** The Kafka side of `serve`, as plain data (it also crosses into a worker thread). */
export interface KafkaPipelineSettings extends KafkaConnection {
  topics: TopicNames;
  /** Checkpoint name of the relay (default `kafka-relay`). */
  relayName?: string;
  /** Consumer group of the propagator (default `token-ledger-revocations`). */
  groupId?: string;
  maxAccessTokenTtlSeconds: number;
}

/**
 * The relay (store → events.v1, checkpointed in msg_checkpoints) and the revocation propagator
 * (consumer group on events.v1 → revocations.v1): Kafka and the store only, nothing of the HTTP
 * app, so RevocationsService can run it in a thread of its own (kafka-pipeline.worker.ts).
 */
export class KafkaPipeline {
  private relay?: KafkaRelay;
  private producer?: Producer;
  private propagator?: RevocationPropagator;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly settings: KafkaPipelineSettings,
    private readonly onError: (error: unknown, component: string) => void,
  ) {}

  get relayPosition(): number | undefined {
    return this.relay?.position;
  }

  async start(): Promise<void> {
    const { topics } = this.settings;
    const kafka = createKafka('token-ledger', this.settings);
    this.relay = new KafkaRelay(kafka, this.store, { topics, name: this.settings.relayName, onError: (e) => this.onError(e, 'kafka relay') });
    await this.relay.start();
    this.producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await this.producer.connect();
    this.propagator = new RevocationPropagator(
      new KafkaEventSource(kafka, {
        topic: topics.events,
        groupId: this.settings.groupId ?? 'token-ledger-revocations',
        onError: (e) => this.onError(e, 'revocation propagator'),
      }),
      [new KafkaRevocationSink(this.producer, topics.revocations)],
      { maxAccessTokenTtlSeconds: this.settings.maxAccessTokenTtlSeconds },
    );
    await this.propagator.start();
  }

  async stop(): Promise<void> {
    await this.propagator?.stop();
    await this.relay?.stop();
    await this.producer?.disconnect().catch(() => undefined);
  }
}
