import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import type { RecordedEvent, Subscription } from '@token-ledger/event-store';
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
  private subscription?: Subscription;
  private handler?: EventBatchHandler;
  private buffer: RecordedEvent[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private generation = 0;
  private stopped = true;
  private restartTimer?: NodeJS.Timeout;
  private readonly seen: LruSet;
  private handled = 0;

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
    this.handler = handler;
    this.stopped = false;
    if (this.options.name) await migrateMessaging(this.store.sql);
    const after = this.options.after;
    this.handled = typeof after === 'function' ? await after() : after ?? 0;
    await this.subscribe();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.restartTimer);
    await this.subscription?.close().catch(() => undefined);
    await this.flushing.catch(() => undefined);
  }

  private async subscribe(): Promise<void> {
    const generation = ++this.generation;
    this.buffer = [];
    if (this.options.name) this.handled = Math.max(this.handled, await readCheckpoint(this.store.sql, this.options.name));
    const batchSize = this.options.batchSize ?? 500;
    this.subscription = this.store.subscribeToAll(
      async (event) => {
        if (generation !== this.generation) return;
        this.buffer.push(event);
        if (this.buffer.length >= batchSize) await this.flush(generation);
        else this.scheduleFlush(generation);
      },
      { after: this.handled, batchSize, onError: (error) => this.fail(error, generation) },
    );
  }

  private scheduleFlush(generation: number): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush(generation).catch(() => undefined);
    });
  }

  private flush(generation: number): Promise<void> {
    this.flushing = this.flushing.catch(() => undefined).then(async () => {
      if (generation !== this.generation || this.buffer.length === 0) return;
      const batch = this.buffer;
      this.buffer = [];
      try {
        const fresh = batch.filter((e) => !this.seen.has(e.eventId)).map(toPublicEvent);
        if (fresh.length > 0) await this.handler!(fresh);
        for (const e of fresh) this.seen.add(e.eventId);
        const last = batch[batch.length - 1].position;
        if (this.options.name) await writeCheckpoint(this.store.sql, this.options.name, last);
        this.handled = last;
        this.options.onPosition?.(last);
      } catch (error) {
        this.fail(error, generation);
        throw error;
      }
    });
    return this.flushing;
  }

  private fail(error: unknown, generation: number): void {
    if (generation !== this.generation || this.stopped) return;
    this.generation++;
    this.options.onError?.(error);
    const old = this.subscription;
    this.restartTimer = setTimeout(() => {
      void (async () => {
        await old?.close().catch(() => undefined);
        if (!this.stopped) await this.subscribe().catch((e) => this.fail(e, this.generation));
      })();
    }, this.options.retryDelayMs ?? 500);
    this.restartTimer.unref();
  }
}

export interface KafkaEventSourceOptions {
  topic: string;
  groupId: string;
  /** Where a new group starts. Default true (a new consumer group sees all retained events). */
  fromBeginning?: boolean;
  dedupCapacity?: number;
  consumer?: Partial<ConsumerConfig>;
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
      eachBatchAutoResolve: false,
      autoCommit: true,
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
