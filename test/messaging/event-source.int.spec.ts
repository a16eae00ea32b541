import type { Admin, Kafka, Producer } from 'kafkajs';
import { ensureTopics, KafkaEventSource, RELAY_PRODUCER_CONFIG, toKafkaMessage, type TopicNames } from '@token-ledger/messaging';
import type { PublicEvent } from '@token-ledger/envelope';
import { describeWithBackend } from '../backends';
import { deleteTopics, eventually, kafkaClient, runId, testTopics } from './support';

jest.setTimeout(60_000);

/** A public event for subject `sub` (the key, so one subject stays on one partition). */
function publicEvent(sub: string, seq: number): PublicEvent {
  return {
    eventId: `${sub}-${seq}-${Math.random().toString(36).slice(2)}`,
    type: 'TokenRotated',
    familyId: `fam_${sub}`,
    subject: sub,
    clientId: 'client-a',
    occurredAt: new Date().toISOString(),
    position: seq,
    data: { generation: seq },
    metadata: { schemaVersion: 1 },
  } as PublicEvent;
}

describeWithBackend('kafka', 'KafkaEventSource: fetching beside handling (real broker)', (brokers) => {
  const run = runId();
  const created: string[] = [];
  const groups: string[] = [];
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  /** A fresh events topic (4 partitions) and a source on it in a fresh group; `send` produces to it. */
  const fresh = async (name: string, extra: Partial<ConstructorParameters<typeof KafkaEventSource>[1]> = {}) => {
    const topics: TopicNames = testTopics(`${run}-${name}`);
    await ensureTopics(admin, { topics, partitions: 4 });
    created.push(...Object.values(topics));
    const groupId = `tl-test.source.${run}.${name}`;
    groups.push(groupId);
    const send = async (events: PublicEvent[]) => {
      await producer.send({ topic: topics.events, messages: events.map((e) => toKafkaMessage(e)) });
    };
    const make = (client: Kafka = kafka) => new KafkaEventSource(client, { topic: topics.events, groupId, retryDelayMs: 100, ...extra });
    return { send, make };
  };

  beforeAll(async () => {
    kafka = kafkaClient(brokers);
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await producer.connect();
  });

  afterAll(async () => {
    await producer.disconnect();
    await deleteTopics(admin, created);
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.disconnect();
  });

  it('keeps fetching while the handler works and hands over everything fetched meanwhile in one call, each subject in order', async () => {
    const subjects = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'];
    const calls: PublicEvent[][] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { send, make } = await fresh('overlap');
    // Counts what the source's consumer has fetched and processed (kafkajs instrumentation), so the
    // test waits for the fetching itself instead of guessing how long it takes.
    let fetched = 0;
    const counting = new Proxy(kafka, {
      get(target, prop) {
        if (prop !== 'consumer') return Reflect.get(target, prop);
        return (config: Parameters<Kafka['consumer']>[0]) => {
          const consumer = target.consumer(config);
          consumer.on(consumer.events.END_BATCH_PROCESS, (e) => (fetched += e.payload.batchSize));
          return consumer;
        };
      },
    });
    const src = make(counting);
    await src.start(async (events) => {
      calls.push(events);
      if (calls.length === 1) await held; // the first call is busy while more arrives
    });
    try {
      await send([publicEvent('s0', 0)]);
      await eventually(() => calls.length === 1, 'first call');
      const later = subjects.flatMap((s) => [1, 2, 3].map((i) => publicEvent(s, i)));
      await send(later);
      // The fetcher takes them all while the handler is still busy.
      await eventually(() => fetched >= 1 + later.length, 'everything fetched while the first call runs');
      expect(calls).toHaveLength(1);
      release();
      await eventually(() => calls.flat().length === 1 + later.length, 'all handed over');
      // Fetched while the first call ran: one call with all of it, across partitions.
      expect(calls).toHaveLength(2);
      expect(calls[1].map((e) => e.eventId).sort()).toEqual(later.map((e) => e.eventId).sort());
      for (const s of subjects) {
        const seqs = calls[1].filter((e) => e.subject === s).map((e) => e.position);
        expect(seqs).toEqual([1, 2, 3]);
      }
    } finally {
      release();
      await src.stop();
    }
  });

  it('after a handler failure re-joins and redelivers from the committed offsets: nothing is lost', async () => {
    const handled = new Set<string>();
    const errors: unknown[] = [];
    let failures = 0;
    const { send, make } = await fresh('failure', { onError: (e) => errors.push(e) });
    const src = make();
    await src.start(async (events) => {
      if (events.some((e) => e.subject === 'boom') && failures++ === 0) throw new Error('handler failed once');
      for (const e of events) handled.add(e.eventId);
    });
    try {
      const first = ['a', 'b', 'c'].map((s) => publicEvent(s, 1));
      await send(first);
      await eventually(() => first.every((e) => handled.has(e.eventId)), 'first events');
      const second = [publicEvent('boom', 2), ...['a', 'b', 'c'].map((s) => publicEvent(s, 3))];
      await send(second);
      await eventually(() => second.every((e) => handled.has(e.eventId)), 'every event after the failure', 30_000);
      expect(failures).toBeGreaterThanOrEqual(1);
      expect(errors).toHaveLength(1);
      expect(String(errors[0])).toContain('handler failed once');
    } finally {
      await src.stop();
    }
  });

  it('stop() commits what was handled, so the group resumes after it', async () => {
    const first = ['x', 'y'].flatMap((s) => [1, 2].map((i) => publicEvent(s, i)));
    const seen1: string[] = [];
    const { send, make } = await fresh('resume', { autoCommitIntervalMs: 60_000 }); // only stop() commits
    const src1 = make();
    await src1.start(async (events) => void seen1.push(...events.map((e) => e.eventId)));
    await send(first);
    await eventually(() => first.every((e) => seen1.includes(e.eventId)), 'first batch handled');
    await src1.stop();

    const later = [publicEvent('x', 3)];
    await send(later);
    const seen2: string[] = [];
    const src2 = make();
    await src2.start(async (events) => void seen2.push(...events.map((e) => e.eventId)));
    try {
      await eventually(() => seen2.includes(later[0].eventId), 'the later event');
      expect(seen2.filter((id) => first.some((e) => e.eventId === id))).toEqual([]);
    } finally {
      await src2.stop();
    }
  });
});
