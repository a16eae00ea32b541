import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import {
  ensureTopics,
  HEADER_DLQ_GROUP,
  HEADER_DLQ_OFFSET,
  HEADER_DLQ_PARTITION,
  HEADER_DLQ_REASON,
  HEADER_DLQ_TOPIC,
  KafkaEventSource,
  RELAY_PRODUCER_CONFIG,
  toKafkaMessage,
  type PoisonRecord,
} from '@token-ledger/messaging';
import type { PublicEvent } from '@token-ledger/envelope';
import { LedgerMetrics } from '../../apps/token-ledger/src/health/metrics';
import { describeWithBackend } from '../backends';
import { deleteTopics, eventually, kafkaClient, runId, testTopics } from './support';

jest.setTimeout(90_000);

function publicEvent(sub: string, seq: number, type = 'TokenRotated'): PublicEvent {
  return {
    eventId: `${sub}-${seq}-${Math.random().toString(36).slice(2)}`,
    type,
    familyId: `fam_${sub}`,
    subject: sub,
    clientId: 'client-a',
    occurredAt: new Date().toISOString(),
    position: seq,
    data: { generation: seq },
    metadata: { schemaVersion: 1 },
  } as PublicEvent;
}

/** Garbage keyed like subject `sub`'s events, so it lands between them on their partition. */
const garbage = (sub: string): { message: Message; reason: string }[] => [
  { message: { key: sub, value: 'this is {not json' }, reason: 'not-json' },
  { message: { key: sub, value: '[1,2,3]' }, reason: 'not-an-event' },
  { message: { key: sub, value: '{"hello":"world"}' }, reason: 'not-an-event' },
  { message: { key: sub, value: JSON.stringify({ eventId: 'x', type: 'TokenRotated', position: 'seven', metadata: {} }) }, reason: 'not-an-event' },
  { message: { key: sub, value: '"a string"' }, reason: 'not-an-event' },
  { message: { key: sub, value: null }, reason: 'empty' },
];

describeWithBackend('kafka', 'KafkaEventSource: poison records go to the dead-letter topic and stall nothing (real broker)', (brokers) => {
  const run = runId();
  const created: string[] = [];
  const groups: string[] = [];
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  const fresh = async (name: string) => {
    const topics = testTopics(`${run}-${name}`);
    await ensureTopics(admin, { topics, partitions: 4 });
    created.push(...Object.values(topics));
    const groupId = `tl-test.poison.${run}.${name}`;
    groups.push(groupId);
    return { topics, groupId };
  };

  /** The dead-letter topic's records (value as text, headers as strings), read with a throwaway consumer. */
  const readDlq = async (topic: string, expected: number) => {
    const out: { key: string; value: string | null; headers: Record<string, string> }[] = [];
    const consumer = kafka.consumer({ groupId: `tl-test.poison-read.${runId()}`, maxWaitTimeInMs: 50 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({ key: message.key?.toString() ?? '', value: message.value ? message.value.toString() : null, headers });
      },
    });
    try {
      await eventually(() => out.length >= expected, `${expected} dead-lettered records`);
      await new Promise((r) => setTimeout(r, 500)); // and no more than that
      return out;
    } finally {
      await consumer.disconnect();
    }
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

  it('handles every valid event in order, dead-letters the rest with their origin, counts them, and a restart does not redeliver them', async () => {
    const { topics, groupId } = await fresh('mixed');
    const metrics = new LedgerMetrics();
    const poisoned: PoisonRecord[] = [];
    const errors: unknown[] = [];
    const handled: PublicEvent[] = [];
    const make = () =>
      new KafkaEventSource(kafka, {
        topic: topics.events,
        groupId,
        retryDelayMs: 100,
        deadLetterTopic: topics.eventsDeadLetter,
        onError: (e) => errors.push(e),
        onPoison: (p) => {
          poisoned.push(p);
          metrics.poisonRecords.inc({ consumer: 'test', reason: p.reason });
        },
      });
    const src = make();
    await src.start(async (events) => void handled.push(...events));

    // s0: valid, garbage, valid, garbage… on one partition; s1 alongside; a type this version does not know passes through.
    const bad = garbage('s0');
    const valid = [0, 1, 2, 3, 4, 5, 6].map((i) => publicEvent('s0', i));
    const future = publicEvent('s0', 7, 'SomethingANewerLedgerWrites');
    const messages: Message[] = [];
    valid.forEach((e, i) => {
      messages.push(toKafkaMessage(e));
      if (bad[i]) messages.push(bad[i].message);
    });
    messages.push(toKafkaMessage(future));
    const other = [1, 2, 3].map((i) => publicEvent('s1', i));
    await producer.send({ topic: topics.events, messages: [...messages, ...other.map((e) => toKafkaMessage(e))] });
    try {
      await eventually(() => handled.length === valid.length + 1 + other.length, 'every valid event');
      expect(handled.filter((e) => e.subject === 's0').map((e) => e.eventId)).toEqual([...valid, future].map((e) => e.eventId));
      expect(handled.filter((e) => e.subject === 's1').map((e) => e.eventId)).toEqual(other.map((e) => e.eventId));
      expect(errors).toEqual([]);

      // Nothing stalls: an event after the poison is handled promptly.
      const after = publicEvent('s0', 8);
      const sentAt = Date.now();
      await producer.send({ topic: topics.events, messages: [toKafkaMessage(after)] });
      await eventually(() => handled.some((e) => e.eventId === after.eventId), 'the event after the poison', 5_000);
      expect(Date.now() - sentAt).toBeLessThan(5_000);

      // The hook: one call per record, in offset order, reasons as decoded.
      expect(poisoned.map((p) => p.reason)).toEqual(bad.map((b) => b.reason));
      const partition = poisoned[0].partition;
      expect(poisoned.every((p) => p.topic === topics.events && p.groupId === groupId && p.partition === partition)).toBe(true);
      const offsets = poisoned.map((p) => BigInt(p.offset));
      expect([...offsets].sort((a, b) => (a < b ? -1 : 1))).toEqual(offsets);

      // The metric counts them by reason.
      const counts = Object.fromEntries((await metrics.poisonRecords.get()).values.map((v) => [v.labels.reason, v.value]));
      expect(counts).toEqual({ 'not-json': 1, 'not-an-event': 4, empty: 1 });

      // The dead-letter topic holds each, unchanged, with where it came from and why.
      const dlq = await readDlq(topics.eventsDeadLetter, bad.length);
      expect(dlq).toHaveLength(bad.length);
      expect(dlq.map((d) => d.value)).toEqual(bad.map((b) => b.message.value));
      dlq.forEach((d, i) => {
        expect(d.key).toBe('s0');
        expect(d.headers).toMatchObject({
          [HEADER_DLQ_TOPIC]: topics.events,
          [HEADER_DLQ_PARTITION]: String(partition),
          [HEADER_DLQ_OFFSET]: poisoned[i].offset,
          [HEADER_DLQ_REASON]: bad[i].reason,
          [HEADER_DLQ_GROUP]: groupId,
        });
      });
    } finally {
      await src.stop();
    }

    // A restart resumes after them: no poison again, no valid event again, the next one arrives.
    const poisonedBefore = poisoned.length;
    const handledBefore = new Set(handled.map((e) => e.eventId));
    const seen2: PublicEvent[] = [];
    const src2 = make();
    await src2.start(async (events) => void seen2.push(...events));
    try {
      const next = publicEvent('s0', 9);
      await producer.send({ topic: topics.events, messages: [toKafkaMessage(next)] });
      await eventually(() => seen2.some((e) => e.eventId === next.eventId), 'the event after the restart');
      expect(seen2.filter((e) => handledBefore.has(e.eventId))).toEqual([]);
      expect(poisoned).toHaveLength(poisonedBefore);
      expect(await readDlq(topics.eventsDeadLetter, bad.length)).toHaveLength(bad.length);
    } finally {
      await src2.stop();
    }
  });

  it('when the dead-letter topic cannot be written, does not skip the poison: retries until it can, then goes on', async () => {
    const { topics, groupId } = await fresh('dlqdown');
    const missing = `${topics.events}.missing-dlq`;
    created.push(missing);
    const errors: unknown[] = [];
    const poisoned: PoisonRecord[] = [];
    const handled: PublicEvent[] = [];
    const src = new KafkaEventSource(kafka, {
      topic: topics.events,
      groupId,
      retryDelayMs: 100,
      deadLetterTopic: missing, // not created yet
      onError: (e) => errors.push(e),
      onPoison: (p) => poisoned.push(p),
    });
    await src.start(async (events) => void handled.push(...events));
    try {
      const before = publicEvent('s0', 1);
      const after = publicEvent('s0', 2);
      await producer.send({ topic: topics.events, messages: [toKafkaMessage(before), { key: 's0', value: 'garbage' }, toKafkaMessage(after)] });
      await eventually(() => errors.length >= 1, 'the failed dead-letter produce', 45_000);
      expect(poisoned).toEqual([]);
      expect(handled.some((e) => e.eventId === after.eventId)).toBe(false);

      await admin.createTopics({ topics: [{ topic: missing, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
      await eventually(() => handled.some((e) => e.eventId === after.eventId), 'the event after the poison', 60_000);
      expect(poisoned.map((p) => p.reason)).toContain('not-json');
      expect(handled.filter((e) => e.subject === 's0').map((e) => e.eventId).filter((id, i, all) => all.indexOf(id) === i)).toEqual([before.eventId, after.eventId]);
      const dlq = await readDlq(missing, 1);
      expect(dlq.map((d) => d.value)).toContain('garbage');
    } finally {
      await src.stop();
    }
  });
});
