import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Kafka, Message, Producer, ProducerConfig, TopicMessages } from 'kafkajs';
import { BatchedConsumer, type RecordedEvent, type SqlBackedStore } from '@token-ledger/event-store';
import { activeTraceparent, eventTraceContext, toPublicEvent, tracer, type PublicEvent } from '@token-ledger/envelope';
import { HEADER_TRACEPARENT } from './event-trace';
import { migrateMessaging, readCheckpoint, writeCheckpoint } from './checkpoints';
import { DEFAULT_TOPICS, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, type TopicNames } from './topics';

/** The relay keeps its checkpoint in the store's SQL database (capabilities.sql). */
export type { SqlBackedStore } from '@token-ledger/event-store';

export interface KafkaRelayOptions {
  topics?: TopicNames;
  /** Checkpoint row in msg_checkpoints; default `kafka-relay`. */
  name?: string;
  /** Max events per producer send (and per checkpoint write). Default 500. */
  batchSize?: number;
  /** Pause before restarting from the checkpoint after a failure. Default 500 ms. */
  retryDelayMs?: number;
  onBatch?: (info: { count: number; position: number }) => void;
  onError?: (error: unknown) => void;
}

/** Producer settings the relay relies on: idempotent, one request in flight (per-partition order). */
export const RELAY_PRODUCER_CONFIG: ProducerConfig = {
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
};

/** Kafka record for one stored event (SPEC §4): value = public event JSON, key = subject. */
export function toKafkaMessage(event: PublicEvent, streamId?: string): Message {
  return {
    // Events without a subject (ClientRegistered) are keyed by client, then stream.
    key: event.subject || (event.clientId ? `client:${event.clientId}` : streamId ?? event.eventId),
    value: JSON.stringify(event),
    headers: {
      [HEADER_EVENT_TYPE]: event.type,
      [HEADER_SCHEMA_VERSION]: String(event.metadata?.schemaVersion ?? ''),
      [HEADER_EVENT_ID]: event.eventId,
    },
  };
}

/**
 * Event store → `token-ledger.events.v1` (AnomalyDetected also → `token-ledger.anomalies.v1`).
 *
 * Follows the store's global order from the checkpoint in `msg_checkpoints` (catch-up, then live),
 * sends batches with an idempotent producer (acks = all, one request in flight) and moves the
 * checkpoint only after the broker acknowledged the batch. The checkpoint is written beside the
 * sends, not between them (one write at a time, always of the latest acknowledged position), so a
 * send never waits for a database commit. Any failure drops the buffer, recreates the producer and
 * restarts from the stored checkpoint after `retryDelayMs`: a crash or an outage re-sends what was
 * not yet acknowledged or not yet checkpointed (at-least-once; consumers dedupe by eventId) and never
 * skips an event; `stop()` writes the last checkpoint. Per-key order holds: one send at a time, in
 * position order.
 *
 * Two relays on one checkpoint (two nodes) would both publish (duplicates, still no loss); run one
 * relay per deployment or accept the duplicates.
 */
export class KafkaRelay {
  private readonly topics: TopicNames;
  private readonly name: string;
  private producer?: Producer;
  private committed = 0;
  /** Position the stored checkpoint holds, as far as this relay knows. */
  private checkpointed = 0;
  private readonly consumer: BatchedConsumer;
  /** The checkpoint write in progress, if any (it loops until the checkpoint holds `committed`). */
  private checkpointing?: Promise<void>;

  constructor(
    private readonly kafka: Kafka,
    private readonly store: SqlBackedStore,
    private readonly options: KafkaRelayOptions = {},
  ) {
    this.topics = options.topics ?? DEFAULT_TOPICS;
    this.name = options.name ?? 'kafka-relay';
    this.consumer = new BatchedConsumer(
      store,
      {
        prepare: async () => {
          if (this.producer) return;
          const producer = this.kafka.producer(RELAY_PRODUCER_CONFIG);
          await producer.connect();
          this.producer = producer;
        },
        resumeAfter: async () => (this.committed = this.checkpointed = await readCheckpoint(this.store.sql, this.name)),
        commit: async (events) => {
          const producer = this.producer;
          if (!producer) throw new Error('relay producer is not connected');
          const spans: Span[] = [];
          try {
            await producer.sendBatch({ topicMessages: this.toTopicMessages(events, spans), acks: -1 });
          } catch (error) {
            for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
            throw error;
          } finally {
            for (const span of spans) span.end();
          }
          const last = events[events.length - 1].position;
          // Only now, after the broker acknowledged: a crash before the checkpoint re-sends the batch.
          this.committed = last;
          this.checkpointSoon();
          this.options.onBatch?.({ count: events.length, position: last });
        },
        // A failed send may leave the producer in any state: start over with a new one.
        reset: async () => {
          const old = this.producer;
          this.producer = undefined;
          await old?.disconnect();
        },
        onError: (error) => this.options.onError?.(error),
        retryDelayMs: () => this.options.retryDelayMs ?? 500,
      },
      options.batchSize ?? 500,
    );
  }

  /** Last store position the broker acknowledged (the checkpoint follows it within one write). */
  get position(): number {
    return this.committed;
  }

  async start(): Promise<void> {
    await migrateMessaging(this.store.sql);
    await this.consumer.start();
  }

  async waitFor(position: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.committed < position) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
    // What was acknowledged is checkpointed before stopping, so a clean restart re-sends nothing.
    this.checkpointSoon();
    await this.checkpointing;
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }

  /**
   * Writes `committed` to the checkpoint unless a write is already running (that one goes on with
   * the newest position when it is done). A failed write is reported and retried with the next batch
   * or at stop(); until then a restart merely re-sends a little more.
   */
  private checkpointSoon(): void {
    if (this.checkpointing) return;
    this.checkpointing = (async () => {
      while (this.checkpointed < this.committed) {
        const position = this.committed;
        await writeCheckpoint(this.store.sql, this.name, position);
        this.checkpointed = Math.max(this.checkpointed, position);
      }
    })()
      .catch((error: unknown) => this.options.onError?.(error))
      .finally(() => (this.checkpointing = undefined));
  }

  /**
   * One Kafka record per event; an event written with tracing on gets a `publish` span in its
   * writer's trace (pushed to `spans`, ended once the broker answered), named in the record's
   * `traceparent` header for the consumers to continue.
   */
  private toTopicMessages(events: RecordedEvent[], spans: Span[]): TopicMessages[] {
    const main: Message[] = [];
    const anomalies: Message[] = [];
    for (const recorded of events) {
      const message = toKafkaMessage(toPublicEvent(recorded), recorded.streamId);
      const parent = eventTraceContext(recorded.metadata);
      if (parent) {
        const span = tracer.startSpan(
          `publish ${this.topics.events}`,
          {
            kind: SpanKind.PRODUCER,
            attributes: { 'messaging.system': 'kafka', 'messaging.operation.type': 'send', 'messaging.destination.name': this.topics.events, 'messaging.message.id': recorded.eventId, 'event.type': recorded.type },
          },
          parent,
        );
        spans.push(span);
        const traceparent = activeTraceparent(trace.setSpan(parent, span));
        if (traceparent) message.headers = { ...message.headers, [HEADER_TRACEPARENT]: traceparent };
      }
      main.push(message);
      if (recorded.type === 'AnomalyDetected') anomalies.push(message);
    }
    const out: TopicMessages[] = [{ topic: this.topics.events, messages: main }];
    if (anomalies.length > 0) out.push({ topic: this.topics.anomalies, messages: anomalies });
    return out;
  }
}
