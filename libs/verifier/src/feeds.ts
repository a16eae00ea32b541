import { randomUUID } from 'node:crypto';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { kafkajsSecurity, type KafkaSecurity } from './kafka-security';
import { readSse } from './sse-client';

/** Called for each value of the feed, in order; the feed waits for it (the verifier checks signatures). */
export type FeedValueHandler = (value: string | null, key?: string) => Promise<void>;

/** Backoff of a feed's (re)connects: initialDelayMs doubling up to maxDelayMs; maxAttempts for the start. */
export interface RetryOptions {
  /** Default 250 ms. */
  initialDelayMs?: number;
  /** Default 5 s. */
  maxDelayMs?: number;
  /** Attempts to start before `ready` rejects; default unlimited. */
  maxAttempts?: number;
  /** Each failed attempt (for logs). */
  onRetry?: (error: unknown, attempt: number) => void;
}

/** A source of the revocation feed's raw values (signed records, heartbeats, tombstones). */
export interface RevocationFeed {
  /** Resolves once the feed has delivered everything that existed when it started. */
  start(onValue: FeedValueHandler): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The compacted `token-ledger.revocations.v1` topic, read from the beginning by a throwaway
 * consumer group (no offsets committed: each verifier instance reads the whole compacted topic on
 * start; tombstones keep it bounded). Ready when every partition has been read up to the
 * high-water mark taken at start. A failed start (broker down, topic not created yet) is retried
 * with backoff (RetryOptions) instead of failing once.
 */
export class KafkaRevocationFeed implements RevocationFeed {
  private consumer?: Consumer;
  private closed = false;

  constructor(private readonly opts: { brokers: string[]; topic: string; clientId?: string; groupPrefix?: string; retry?: RetryOptions; security?: KafkaSecurity }) {}

  async start(onValue: FeedValueHandler): Promise<void> {
    const retry = this.opts.retry ?? {};
    let delay = retry.initialDelayMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce(onValue);
      } catch (error) {
        await this.consumer?.disconnect().catch(() => undefined);
        this.consumer = undefined;
        if (this.closed || attempt >= (retry.maxAttempts ?? Infinity)) throw error;
        retry.onRetry?.(error, attempt);
        await sleep(delay);
        delay = Math.min(retry.maxDelayMs ?? 5_000, delay * 2);
        if (this.closed) throw error;
      }
    }
  }

  private async startOnce(onValue: FeedValueHandler): Promise<void> {
    const kafka = new Kafka({
      clientId: this.opts.clientId ?? 'token-ledger-verifier',
      brokers: this.opts.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      retry: { retries: 2 },
      ...kafkajsSecurity(this.opts.security),
    });
    const admin = kafka.admin();
    await admin.connect();
    let offsets: Awaited<ReturnType<typeof admin.fetchTopicOffsets>>;
    try {
      offsets = await admin.fetchTopicOffsets(this.opts.topic);
    } finally {
      // A refused read (no ACL) must not leave the admin connection open.
      await admin.disconnect().catch(() => undefined);
    }
    // Next offset to reach per partition (high-water mark at start); done when all are reached.
    const pending = new Map(offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]));
    let resolveReady!: () => void;
    const ready = new Promise<void>((r) => (resolveReady = r));
    const check = () => {
      if (pending.size === 0) resolveReady();
    };
    check();
    const consumer = kafka.consumer({
      groupId: `${this.opts.groupPrefix ?? 'token-ledger-verifier'}-${randomUUID()}`,
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        for (const m of batch.messages) {
          await applyTraced(m, batch.topic, () => onValue(m.value ? m.value.toString('utf8') : null, m.key?.toString('utf8')));
          await heartbeat();
        }
        const target = pending.get(batch.partition);
        if (target !== undefined && Number(batch.highWatermark) >= target && Number(batch.lastOffset()) + 1 >= target) {
          pending.delete(batch.partition);
          check();
        }
      },
    });
    await ready;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }
}

/**
 * `GET /v1/revocations/stream` with reconnects (backoff per RetryOptions, default 250 ms → 5 s)
 * that resume with Last-Event-ID. Ready at the server's first `ready` event (after the active set
 * or the replay). Values (`revocation` and `heartbeat` events) are handed on in order.
 */
export class SseRevocationFeed implements RevocationFeed {
  private readonly abort = new AbortController();
  private lastId?: string;
  /** Values are verified one after the other, in stream order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: { url: string; token: string; heartbeatMs: number; retry?: RetryOptions }) {}

  start(onValue: FeedValueHandler): Promise<void> {
    return new Promise<void>((resolveReady, rejectReady) => {
      const retry = this.opts.retry ?? {};
      const loop = async () => {
        const initial = retry.initialDelayMs ?? 250;
        let backoff = initial;
        let failures = 0;
        let isReady = false;
        while (!this.abort.signal.aborted) {
          const url = new URL(this.opts.url);
          url.searchParams.set('heartbeatMs', String(this.opts.heartbeatMs));
          const headers: Record<string, string> = { authorization: `Bearer ${this.opts.token}` };
          if (this.lastId) headers['last-event-id'] = this.lastId;
          try {
            await readSse(url.toString(), headers, {
              onMessage: (m) => {
                const id = m.id;
                this.chain = this.chain.then(async () => {
                  if (m.event === 'revocation' || m.event === 'heartbeat') await onValue(m.data);
                  else if (m.event === 'ready') {
                    backoff = initial;
                    failures = 0;
                    isReady = true;
                    resolveReady();
                  }
                  // The id moves only once what came before it is handled: a reconnect resumes there.
                  if (id) this.lastId = id;
                }).catch(() => undefined); // only when closing: the verifier retries everything else
              },
            }, this.abort.signal);
          } catch (error) {
            if (!isReady && ++failures >= (retry.maxAttempts ?? Infinity)) return rejectReady(error);
            retry.onRetry?.(error, failures);
          }
          await this.chain.catch(() => undefined);
          if (this.abort.signal.aborted) return;
          await sleep(backoff);
          backoff = Math.min(retry.maxDelayMs ?? 5_000, backoff * 2);
        }
      };
      void loop();
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
  }
}

const tracer = trace.getTracer('token-ledger-verifier');

/**
 * A record the ledger published with tracing on carries a `traceparent` header (the trace of the
 * request that caused the revocation): applying it is a span in that trace. Only the OpenTelemetry
 * API: spans are recorded when the resource server runs an SDK, and are no-ops otherwise.
 */
async function applyTraced(m: KafkaMessage, topic: string, apply: () => Promise<void>): Promise<void> {
  const header = m.headers?.traceparent;
  if (header === undefined) return apply();
  const parent = propagation.extract(ROOT_CONTEXT, { traceparent: String(Array.isArray(header) ? header[0] : header) });
  if (!trace.getSpanContext(parent)) return apply();
  const span = tracer.startSpan('verifier apply revocation', { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'kafka', 'messaging.operation.type': 'process', 'messaging.destination.name': topic } }, parent);
  try {
    await context.with(trace.setSpan(parent, span), apply);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}
