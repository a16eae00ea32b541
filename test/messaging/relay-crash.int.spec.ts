import type { Admin, Kafka, Producer } from 'kafkajs';
import type { OpenedStore, SqlBackedStore, SqlClient } from '@token-ledger/event-store';
import { ensureTopics, KafkaRelay, migrateMessaging, readCheckpoint, writeCheckpoint, type TopicNames } from '@token-ledger/messaging';
import { describeWithBackend } from '../backends';
import { ProcessCrash } from '../support/crashing-store';
import { collect, deleteTopics, eventually, familyEvent, kafkaClient, openTempStore, runId, testTopics, type Collected } from './support';

/**
 * The relay (store → Kafka, checkpoint after the broker's ack) killed at its k-th send, for every k
 * of a run: either before the batch reaches the broker, or after the broker acknowledged it and
 * before the checkpoint moved. A killed relay does nothing more — no checkpoint write, no send —
 * like a SIGKILLed process (the existing "crash" test of relay.int.spec.ts is a clean stop()). A new
 * relay on the same checkpoint then runs to the head: every event is on the topic at least once,
 * and per key, deduplicated by eventId as consumers do, in store order.
 */
const EVENTS = 20;
const BATCH = 5;
const SENDS = EVENTS / BATCH;

/** A relay process that dies at its k-th sendBatch, and the Kafka client and store it sees. */
class DyingRelay {
  crashed = false;
  private sends = 0;

  constructor(private readonly at: { k: number; mode: 'before' | 'after' }) {}

  kafka(kafka: Kafka): Kafka {
    const producer = (config: Parameters<Kafka['producer']>[0]): Producer => {
      const real = kafka.producer(config);
      const sendBatch: Producer['sendBatch'] = async (batch) => {
        if (this.crashed) throw new ProcessCrash('send');
        const n = ++this.sends;
        if (n === this.at.k && this.at.mode === 'before') {
          this.crashed = true;
          throw new ProcessCrash(`send ${n}, not sent`);
        }
        const result = await real.sendBatch(batch);
        if (this.crashed || n === this.at.k) {
          this.crashed = true;
          throw new ProcessCrash(`send ${n}, acknowledged`);
        }
        return result;
      };
      return new Proxy(real, { get: (t, p) => (p === 'sendBatch' ? sendBatch : Reflect.get(t, p, t)) });
    };
    return new Proxy(kafka, { get: (t, p) => (p === 'producer' ? producer : Reflect.get(t, p, t)) });
  }

  /** The store, whose SQL (the checkpoint) and reads fail once the process is dead. */
  store(store: OpenedStore & SqlBackedStore): OpenedStore & SqlBackedStore {
    const guard = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> => (this.crashed ? Promise.reject(new ProcessCrash('store')) : fn(...a));
    const sql = new Proxy(store.sql, {
      get: (t, p) => (p === 'query' || p === 'exec' ? guard((t[p] as (...a: unknown[]) => Promise<unknown>).bind(t)) : Reflect.get(t, p, t)),
    }) as SqlClient;
    return new Proxy(store, {
      get: (t, p) => {
        if (p === 'sql') return sql;
        if (p === 'readAll' || p === 'headPosition') return guard((t[p] as (...a: unknown[]) => Promise<unknown>).bind(t));
        const value = Reflect.get(t, p, t);
        return typeof value === 'function' ? value.bind(t) : value;
      },
    });
  }
}

describeWithBackend('kafka', 'KafkaRelay killed between its send and its checkpoint (real broker)', (brokers) => {
  const run = runId();
  const topics: TopicNames = testTopics(run);
  let kafka: Kafka;
  let admin: Admin;
  let temp: Awaited<ReturnType<typeof openTempStore>>;
  let sink: { messages: Collected[]; stop(): Promise<void> };

  beforeAll(async () => {
    kafka = kafkaClient(brokers);
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, { topics, partitions: 3 });
    temp = await openTempStore();
    await migrateMessaging(temp.store.sql);
    sink = await collect(kafka, topics.events);
  });

  afterAll(async () => {
    await sink?.stop();
    await temp?.close();
    await deleteTopics(admin, Object.values(topics));
    await admin.disconnect();
  });

  const cases = Array.from({ length: SENDS }, (_, i) => (['before', 'after'] as const).map((mode): [number, 'before' | 'after'] => [i + 1, mode])).flat();

  it.each(cases)('killed at send %i (%s the ack): the restarted relay leaves no gap, per-key order holds', async (k, mode) => {
    const { store } = temp;
    const name = `relay-${run}-${k}-${mode}`;
    // This case's relay starts after everything earlier cases appended.
    await writeCheckpoint(store.sql, name, await store.headPosition());
    const ids: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const event = familyEvent('TokenRotated', `fam_${name}_${i % 3}`, `${name}-user-${i % 4}`, { n: i });
      ids.push(event.eventId);
      await store.append(`family-${name}-${i % 3}`, [event], { expectedRevision: 'any' });
    }
    const head = await store.headPosition();

    const dying = new DyingRelay({ k, mode });
    const first = new KafkaRelay(dying.kafka(kafka), dying.store(store), { topics, name, batchSize: BATCH, retryDelayMs: 60_000 });
    await first.start();
    await eventually(() => dying.crashed, `the crash at send ${k}`);
    await first.stop();
    // Dead before its checkpoint moved past the batch it died on.
    const positions = (await store.readAll({ after: head - EVENTS })).map((e) => e.position);
    expect(await readCheckpoint(store.sql, name)).toBeLessThanOrEqual(k === 1 ? head - EVENTS : positions[(k - 1) * BATCH - 1]);

    const second = new KafkaRelay(kafka, store, { topics, name, batchSize: BATCH });
    await second.start();
    await eventually(() => second.position === head, 'the restarted relay at the head');
    await second.stop();

    const mine = new Set(ids);
    await eventually(() => new Set(sink.messages.filter((m) => mine.has(m.value.eventId)).map((m) => m.value.eventId)).size === EVENTS, 'every event on the topic');
    // Deduplicated by eventId (first copy), each key's events come in store order.
    const seen = new Set<string>();
    const byKey = new Map<string, number[]>();
    for (const m of sink.messages) {
      if (!mine.has(m.value.eventId) || seen.has(m.value.eventId)) continue;
      seen.add(m.value.eventId);
      byKey.set(m.key, [...(byKey.get(m.key) ?? []), m.value.position]);
    }
    expect([...byKey.keys()].sort()).toEqual([0, 1, 2, 3].map((u) => `${name}-user-${u}`));
    for (const keyed of byKey.values()) expect(keyed).toEqual([...keyed].sort((a, b) => a - b));
    expect([...seen].sort()).toEqual([...ids].sort());
  });
});
