import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { kafkajsSecurity, type KafkaSecurity } from './kafka-security';
import type { RevocationEntry } from './revocation-set';
import { readSse } from './sse-client';

/** A source of revocation records; `lastContact` = when the feed last proved it is current. */
export interface RevocationFeed {
  /** Resolves once the feed has delivered everything that existed when it started. */
  start(onRecord: (entry: RevocationEntry) => void): Promise<void>;
  readonly lastContact: number;
  close(): Promise<void>;
}

/**
 * The compacted `token-ledger.revocations.v1` topic, read from the beginning by a throwaway
 * consumer group (no offsets committed: each verifier instance reads the whole compacted topic on
 * start). Ready when every partition has been read up to the high-water mark taken at start.
 * `lastContact` moves on every fetch response (kafkajs FETCH event), i.e. every ~maxWaitTimeInMs
 * while the broker answers.
 */
export class KafkaRevocationFeed implements RevocationFeed {
  private consumer?: Consumer;
  lastContact = 0;

  constructor(private readonly opts: { brokers: string[]; topic: string; clientId?: string; groupPrefix?: string; security?: KafkaSecurity }) {}

  async start(onRecord: (entry: RevocationEntry) => void): Promise<void> {
    const kafka = new Kafka({
      clientId: this.opts.clientId ?? 'token-ledger-verifier',
      brokers: this.opts.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      ...kafkajsSecurity(this.opts.security),
    });
    const admin = kafka.admin();
    await admin.connect();
    // finally: a refused read (no ACL) must not leave the admin connection open.
    const offsets = await admin.fetchTopicOffsets(this.opts.topic).finally(() => admin.disconnect());
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
    consumer.on(consumer.events.FETCH, () => (this.lastContact = Date.now()));
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (m.value) onRecord(JSON.parse(m.value.toString('utf8')) as RevocationEntry);
        }
        const target = pending.get(batch.partition);
        if (target !== undefined && Number(batch.highWatermark) >= target && Number(batch.lastOffset()) + 1 >= target) {
          pending.delete(batch.partition);
          check();
        }
        this.lastContact = Date.now();
      },
    });
    await ready;
    this.lastContact = Date.now();
  }

  async close(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}

/**
 * `GET /v1/revocations/stream` with reconnects (backoff 250 ms → 5 s) that resume with
 * Last-Event-ID. Ready at the server's first `ready` event (after the active set or the replay).
 * `lastContact` moves on any bytes, including keep-alives (asked for every maxStalenessMs / 4).
 */
export class SseRevocationFeed implements RevocationFeed {
  private readonly abort = new AbortController();
  private lastId?: string;
  lastContact = 0;

  constructor(private readonly opts: { url: string; token: string; heartbeatMs: number }) {}

  start(onRecord: (entry: RevocationEntry) => void): Promise<void> {
    return new Promise<void>((resolveReady) => {
      const loop = async () => {
        let backoff = 250;
        while (!this.abort.signal.aborted) {
          const url = new URL(this.opts.url);
          url.searchParams.set('heartbeatMs', String(this.opts.heartbeatMs));
          const headers: Record<string, string> = { authorization: `Bearer ${this.opts.token}` };
          if (this.lastId) headers['last-event-id'] = this.lastId;
          try {
            await readSse(url.toString(), headers, {
              onActivity: () => (this.lastContact = Date.now()),
              onMessage: (m) => {
                if (m.id) this.lastId = m.id;
                if (m.event === 'revocation') onRecord(JSON.parse(m.data) as RevocationEntry);
                else if (m.event === 'ready') {
                  backoff = 250;
                  resolveReady();
                }
              },
            }, this.abort.signal);
          } catch {
            /* reconnect below */
          }
          if (this.abort.signal.aborted) return;
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(5_000, backoff * 2);
        }
      };
      void loop();
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
  }
}
