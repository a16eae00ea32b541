import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import { BatchedConsumer } from '@token-ledger/event-store';
import { toPublicEvent, type PublicEvent } from '@token-ledger/forensics';
import { migrateMessaging, readCheckpoint, writeCheckpoint } from './checkpoints';
import type { SqlBackedStore } from './kafka-relay';
import { LruSet } from './lru-set';

/** Receives events in order (per subject at least), deduplicated by eventId. A throw = retry. */
export type EventBatchHandler = (events: PublicEvent[]) => Promise<void>;

/**
 * Where consumers (the revocation propagator, the anomaly engine) get events from: Kafka
 * (`token-ledger.events.v1`, a consumer group) when KAFKA_BROKERS is set, otherwise the event
 * store's own subscription in-process (SPEC §4). Both deliver at-least-once and both drop
 * duplicates by eventId with a bounded LRU (see LruSet), so a handler sees each event once in
 * practice and must only tolerate the rare duplicate beyond the LRU's reach.
 */
export interface EventSource {
  /** Resolves once delivery has started (subscribed / joined the group). */
  start(handler: EventBatchHandler): Promise<void>;
  stop(): Promise<void>;
}

export interface InProcessEventSourceOptions {
  /**
   * Checkpoint row in msg_checkpoints: the source resumes after the last batch its handler
   * finished. Without a name the source does not checkpoint and starts at `after`.
   */
  name?: string;
  /** Start position when there is no checkpoint (a number, or computed at start). Default 0. */
  after?: number | (() => Promise<number>);
  batchSize?: number;
  dedupCapacity?: number;
  retryDelayMs?: number;
  /** Called after each handled batch with the last store position (also for skipped events). */
  onPosition?: (position: number) => void;
  onError?: (error: unknown) => void;
}

/** The event store subscription as an EventSource (no Kafka). */
export class InProcessEventSource implements EventSource {
  private readonly seen: LruSet;
  private handled = 0;
  private consumer?: BatchedConsumer;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly options: InProcessEventSourceOptions = {},
  ) {
    this.seen = new LruSet(options.dedupCapacity);
  }

  /** Last store position whose batch the handler finished. */
  get position(): number {
    return this.handled;
  }

  async start(handler: EventBatchHandler): Promise<void> {
    const { name } = this.options;
    if (name) await migrateMessaging(this.store.sql);
    const after = this.options.after;
    this.handled = typeof after === 'function' ? await after() : after ?? 0;
    this.consumer = new BatchedConsumer(
      this.store,
      {
        resumeAfter: async () => (this.handled = name ? Math.max(this.handled, await readCheckpoint(this.store.sql, name)) : this.handled),
        commit: async (batch) => {
          const fresh = batch.filter((e) => !this.seen.has(e.eventId)).map(toPublicEvent);
          if (fresh.length > 0) await handler(fresh);
          for (const e of fresh) this.seen.add(e.eventId);
          const last = batch[batch.length - 1].position;
          if (name) await writeCheckpoint(this.store.sql, name, last);
          this.handled = last;
          this.options.onPosition?.(last);
        },
        onError: (error) => this.options.onError?.(error),
        retryDelayMs: () => this.options.retryDelayMs ?? 500,
      },
      this.options.batchSize ?? 500,
    );
    await this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }
}

export interface KafkaEventSourceOptions {
  topic: string;
  groupId: string;
  /** Where a new group starts. Default true (a new consumer group sees all retained events). */
  fromBeginning?: boolean;
  dedupCapacity?: number;
  consumer?: Partial<ConsumerConfig>;
  /**
   * Partitions whose batches the handler may work on at once (kafkajs' partitionsConsumedConcurrently;
   * default 1). Order still holds within a partition, i.e. per subject.
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Commit offsets at most this often instead of after every batch (one OffsetCommit round trip per
   * partition batch otherwise). A crash then redelivers up to this much: fine for a handler that
   * deduplicates anyway. Default: after every batch.
   */
  autoCommitIntervalMs?: number;
}

/**
 * `token-ledger.events.v1` through a consumer group as an EventSource. Offsets are committed only
 * after the handler finished a batch (at-least-once); records are JSON public events.
 */
export class KafkaEventSource implements EventSource {
  private consumer?: Consumer;
  private readonly seen: LruSet;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaEventSourceOptions,
  ) {
    this.seen = new LruSet(options.dedupCapacity);
  }

  async start(handler: EventBatchHandler): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      ...this.options.consumer,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true });
    const joined = new Promise<void>((resolve) => {
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
    await consumer.run({
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
      eachBatchAutoResolve: false,
      autoCommit: true,
      ...(this.options.autoCommitIntervalMs ? { autoCommitInterval: this.options.autoCommitIntervalMs } : {}),
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        const events: PublicEvent[] = [];
        for (const message of batch.messages) {
          if (!message.value) continue;
          const event = JSON.parse(message.value.toString('utf8')) as PublicEvent;
          if (!this.seen.has(event.eventId)) events.push(event);
        }
        if (!isRunning() || isStale()) return;
        if (events.length > 0) await handler(events);
        for (const e of events) this.seen.add(e.eventId);
        resolveOffset(batch.lastOffset());
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    });
    await joined;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = undefined;
  }
}
