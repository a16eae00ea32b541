import type { Consumer, ConsumerConfig, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { BatchedConsumer, type SubscribeOptions } from '@token-ledger/event-store';
import { toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import { migrateMessaging, readCheckpoint, writeCheckpoint } from './checkpoints';
import { RELAY_PRODUCER_CONFIG, type SqlBackedStore } from './kafka-relay';
import { rememberRecordContext } from './event-trace';
import { LruSet } from './lru-set';
import { HEADER_DLQ_GROUP, HEADER_DLQ_OFFSET, HEADER_DLQ_PARTITION, HEADER_DLQ_REASON, HEADER_DLQ_TOPIC, deadLetterTopicOf } from './topics';

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
  /**
   * The handler writes checkpoint `name` itself, with its own effects and when it chooses (maybe
   * several batches later): the source never writes it, and every (re)start resumes after it and
   * forgets what it handed over since — those events come again. For a handler that keeps work in
   * memory across batches (the anomaly engine's staged state). Default false: the source checkpoints
   * after each batch its handler finished.
   */
  checkpointedByHandler?: boolean;
  /** Start position when there is no checkpoint (a number, or computed at start). Default 0. */
  after?: number | (() => Promise<number>);
  batchSize?: number;
  dedupCapacity?: number;
  /** Pause before resuming after a failed batch (default 500 ms), or a pause per error. */
  retryDelayMs?: number | ((error: unknown) => number);
  /** Called after each handled batch with the last store position (also for skipped events). */
  onPosition?: (position: number) => void;
  onError?: (error: unknown) => void;
  /** SubscribeOptions.prompt for the store subscription (default: woken like any subscriber). */
  prompt?: SubscribeOptions['prompt'];
  /**
   * Only events of these types reach the handler (SubscribeOptions.types: the SQL stores leave the
   * others in the database); the position and checkpoint still move past the others.
   */
  types?: readonly string[];
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
    const first = typeof after === 'function' ? await after() : after ?? 0;
    this.handled = first;
    const byHandler = name !== undefined && this.options.checkpointedByHandler === true;
    const resumeAfter = async (): Promise<number> => {
      if (!name) return this.handled;
      if (!byHandler) return (this.handled = Math.max(this.handled, await readCheckpoint(this.store.sql, name)));
      this.seen.clear(); // what was handed over past the checkpoint comes again, and must not count as seen
      return (this.handled = Math.max(first, await readCheckpoint(this.store.sql, name)));
    };
    this.consumer = new BatchedConsumer(
      this.store,
      {
        resumeAfter,
        commit: async (batch, last) => {
          const fresh = batch.filter((e) => !this.seen.has(e.eventId)).map(toPublicEvent);
          if (fresh.length > 0) await handler(fresh);
          for (const e of fresh) this.seen.add(e.eventId);
          if (name && !byHandler) await writeCheckpoint(this.store.sql, name, last);
          this.handled = last;
          this.options.onPosition?.(last);
        },
        onError: (error) => this.options.onError?.(error),
        retryDelayMs: (error) => {
          const delay = this.options.retryDelayMs ?? 500;
          return typeof delay === 'function' ? delay(error) : delay;
        },
      },
      this.options.batchSize ?? 500,
      { prompt: this.options.prompt, types: this.options.types },
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
   * Commit offsets at most this often instead of after every handled batch (one OffsetCommit round
   * trip each otherwise). A crash then redelivers up to this much: fine for a handler that
   * deduplicates anyway. Default: after every handled batch.
   */
  autoCommitIntervalMs?: number;
  /** Events fetched but not yet handled before fetching pauses (default 10,000). */
  maxPendingEvents?: number;
  /** Pause before re-joining after the handler failed (default 500 ms). */
  retryDelayMs?: number;
  /** Where records that are not public events go (default `<topic>.dlq`; ensureTopics creates it). */
  deadLetterTopic?: string;
  /** A record was dead-lettered (count and log it; never log the value: it could hold anything). */
  onPoison?: (poison: PoisonRecord) => void;
  onError?: (error: unknown) => void;
}

/** Why a record on events.v1 is not a public event. */
export type PoisonReason = 'empty' | 'not-json' | 'not-an-event';

/** A dead-lettered record, as the `onPoison` hook sees it: where it was, never what it held. */
export interface PoisonRecord {
  topic: string;
  partition: number;
  offset: string;
  groupId: string;
  reason: PoisonReason;
  deadLetterTopic: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optionalString = (v: unknown) => v === undefined || typeof v === 'string';

/**
 * A Kafka record's value as a PublicEvent, or why it is not one. Checks the shape consumers rely
 * on (ids, type, position, metadata), not the type: an event type this version does not know (a
 * newer ledger's) is passed on, and consumers ignore types they do not handle (docs/kafka.md).
 */
export function decodePublicEvent(value: Buffer | null): { event: PublicEvent } | { reason: PoisonReason } {
  if (!value || value.length === 0) return { reason: 'empty' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return { reason: 'not-json' };
  }
  if (
    !isObject(parsed) ||
    typeof parsed.eventId !== 'string' ||
    parsed.eventId === '' ||
    typeof parsed.type !== 'string' ||
    parsed.type === '' ||
    typeof parsed.position !== 'number' ||
    !Number.isFinite(parsed.position) ||
    !isObject(parsed.metadata) ||
    !optionalString(parsed.familyId) ||
    !optionalString(parsed.subject) ||
    !optionalString(parsed.clientId) ||
    !optionalString(parsed.occurredAt)
  ) {
    return { reason: 'not-an-event' };
  }
  return { event: parsed as unknown as PublicEvent };
}

/** Fetched records of one partition, waiting for the handler. */
interface PendingPart {
  partition: number;
  events: PublicEvent[];
  /** The partition's offset to commit once these are handled (last offset + 1). */
  next: string;
}

/**
 * `token-ledger.events.v1` through a consumer group as an EventSource; records are JSON public
 * events. Fetching and handling overlap: kafkajs fetches again only once its batch callbacks
 * return, so they only queue the records and return, and the handler takes everything queued
 * (all partitions, in arrival order, so each partition's order holds) whenever its previous call is
 * done. A record waits for the handler's current call, never for a fetch round trip after it.
 * Offsets are committed only for handled records (at-least-once); a handler failure re-joins the
 * group after a pause and resumes from the committed offsets.
 * A record that is not a public event (decodePublicEvent) would fail that way forever: it is
 * produced to the dead-letter topic (headers: source topic, partition, offset, reason, group) and
 * reported through `onPoison`, then counts as handled. If that produce fails, the batch is not
 * taken: the source re-joins and tries again (nothing is skipped unrecorded).
 */
export class KafkaEventSource implements EventSource {
  private consumer?: Consumer;
  private readonly seen: LruSet;
  private handler: EventBatchHandler = async () => undefined;
  /** Bumped on every (re)connect and stop: work of an older consumer is dropped. */
  private epoch = 0;
  private queue: PendingPart[] = [];
  private pending = 0;
  private draining?: Promise<void>;
  /** Offsets of handled records, per partition, not committed yet. */
  private readonly handled = new Map<number, string>();
  private commitTimer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private stopped = true;
  private dlqProducer?: Producer;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaEventSourceOptions,
  ) {
    this.seen = new LruSet(options.dedupCapacity);
  }

  async start(handler: EventBatchHandler): Promise<void> {
    this.handler = handler;
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.commitTimer);
    const epoch = this.epoch;
    // Let the handler finish what it has, commit that, then leave the group.
    await this.draining;
    await this.commit(epoch);
    this.epoch++;
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = undefined;
    await this.dlqProducer?.disconnect().catch(() => undefined);
    this.dlqProducer = undefined;
  }

  private get deadLetterTopic(): string {
    return this.options.deadLetterTopic ?? deadLetterTopicOf(this.options.topic);
  }

  /** Produces the poison records of one batch to the dead-letter topic (acks from all replicas). */
  private async deadLetter(partition: number, records: { message: KafkaMessage; reason: PoisonReason }[]): Promise<void> {
    if (!this.dlqProducer) {
      // The relay's settings (idempotent: a retried send does not duplicate); a lazy producer of its own, as poison is rare.
      const producer = this.kafka.producer(RELAY_PRODUCER_CONFIG);
      await producer.connect();
      this.dlqProducer = producer;
    }
    const { topic, groupId } = this.options;
    await this.dlqProducer.send({
      topic: this.deadLetterTopic,
      acks: -1,
      messages: records.map(({ message, reason }) => ({
        key: message.key,
        value: message.value,
        headers: {
          ...message.headers,
          [HEADER_DLQ_TOPIC]: topic,
          [HEADER_DLQ_PARTITION]: String(partition),
          [HEADER_DLQ_OFFSET]: message.offset,
          [HEADER_DLQ_REASON]: reason,
          [HEADER_DLQ_GROUP]: groupId,
        },
      })),
    });
    for (const { message, reason } of records) {
      this.options.onPoison?.({ topic, partition, offset: message.offset, groupId, reason, deadLetterTopic: this.deadLetterTopic });
    }
  }

  private async connect(): Promise<void> {
    const epoch = ++this.epoch;
    this.queue = [];
    this.pending = 0;
    this.handled.clear();
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
    const maxPending = this.options.maxPendingEvents ?? 10_000;
    await consumer.run({
      eachBatchAutoResolve: false,
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        // Not resolved: kafkajs fetches these again (after a rebalance, from the committed offset).
        if (epoch !== this.epoch || this.stopped || !isRunning() || isStale()) return;
        const events: PublicEvent[] = [];
        const poison: { message: KafkaMessage; reason: PoisonReason }[] = [];
        for (const message of batch.messages) {
          const decoded = decodePublicEvent(message.value);
          if ('reason' in decoded) poison.push({ message, reason: decoded.reason });
          else if (!this.seen.has(decoded.event.eventId)) {
            events.push(decoded.event);
            rememberRecordContext(decoded.event, message.headers);
          }
        }
        if (poison.length > 0) {
          try {
            await this.deadLetter(batch.partition, poison);
          } catch (error) {
            // Not dead-lettered, so not skipped: re-join and read them again from the committed offset.
            this.fail(error, epoch);
            return;
          }
          if (epoch !== this.epoch) return;
        }
        this.queue.push({ partition: batch.partition, events, next: (BigInt(batch.lastOffset()) + 1n).toString() });
        this.pending += events.length;
        this.drainSoon(epoch);
        resolveOffset(batch.lastOffset());
        // Back-pressure: a handler far behind stops the fetching until it catches up.
        while (this.pending > maxPending && this.draining && epoch === this.epoch) await this.draining;
        await heartbeat();
      },
    });
    await joined;
    const interval = this.options.autoCommitIntervalMs;
    if (interval) {
      this.commitTimer = setInterval(() => void this.commit(epoch), interval);
      this.commitTimer.unref();
    }
  }

  private drainSoon(epoch: number): void {
    this.draining ??= this.drain(epoch).finally(() => (this.draining = undefined));
  }

  /** Hands everything queued to the handler, one call at a time, until the queue is empty. */
  private async drain(epoch: number): Promise<void> {
    while (this.queue.length > 0 && epoch === this.epoch) {
      const parts = this.queue;
      this.queue = [];
      const events = parts.flatMap((p) => p.events);
      try {
        if (events.length > 0) await this.handler(events);
      } catch (error) {
        this.fail(error, epoch);
        return;
      }
      for (const e of events) this.seen.add(e.eventId);
      this.pending -= events.length;
      for (const p of parts) this.handled.set(p.partition, p.next);
      if (!this.options.autoCommitIntervalMs) await this.commit(epoch);
    }
  }

  private async commit(epoch: number): Promise<void> {
    const consumer = this.consumer;
    if (!consumer || epoch !== this.epoch || this.handled.size === 0) return;
    const offsets = [...this.handled].map(([partition, offset]) => ({ topic: this.options.topic, partition, offset }));
    this.handled.clear();
    await consumer.commitOffsets(offsets).catch(() => {
      // Usually a rebalance took the partition away (its new owner redelivers from the last commit,
      // which the handler tolerates); otherwise the next commit carries these offsets again.
      for (const o of offsets) if (!this.handled.has(o.partition)) this.handled.set(o.partition, o.offset);
    });
  }

  /** The handler failed: drop what is queued and re-join from the committed offsets after a pause. */
  private fail(error: unknown, epoch: number): void {
    if (epoch !== this.epoch || this.stopped) return;
    this.epoch++;
    this.options.onError?.(error);
    clearInterval(this.commitTimer);
    const old = this.consumer;
    this.restartTimer = setTimeout(() => {
      void (async () => {
        await old?.disconnect().catch(() => undefined);
        if (this.stopped) return;
        await this.connect().catch((e) => this.fail(e, this.epoch));
      })();
    }, this.options.retryDelayMs ?? 500);
    this.restartTimer.unref();
  }
}
