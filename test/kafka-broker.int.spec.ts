/**
 * Proves kafkajs (the client the app uses) works against the pinned Apache Kafka broker that
 * `npm run kafka:up` starts: admin (topics with partitions and configs, a compacted topic, list,
 * describe configs, groups and offsets), an idempotent producer with keys and headers, and a
 * consumer group. Runs when KAFKA_BROKERS is set; see docs/kafka.md.
 */
import { randomUUID } from 'node:crypto';
import {
  Admin,
  CompressionTypes,
  ConfigResourceTypes,
  Consumer,
  EachMessagePayload,
  Kafka,
  logCreator,
  logLevel,
  Partitioners,
  Producer,
} from 'kafkajs';
import { describeWithBackend } from './backends';

jest.setTimeout(30_000);

interface Received {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

function decodeHeaders(headers: EachMessagePayload['message']['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}

/**
 * kafkajs's console logger, minus the one error this suite provokes on purpose (creating a topic
 * that exists), so the output only shows what deserves a look.
 */
const quietLogCreator: logCreator =
  () =>
  ({ namespace, level, label, log }) => {
    if (log.error === 'Topic creation errors') return;
    const line = JSON.stringify({ level: label, ...log, message: `[${namespace}] ${log.message}` });
    if (level === logLevel.ERROR) console.error(line);
    else console.warn(line);
  };

/**
 * Short fetch waits: kafkajs's disconnect() waits for the in-flight fetch, 5 s by default, which
 * would dominate this suite's run time.
 */
const consumerTiming = { sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 };

/** Resolves once `predicate` holds, polling; rejects with `what` after `timeoutMs`. */
async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeWithBackend('kafka', 'Kafka broker (kafka:up) with kafkajs 2.2.4', (brokers) => {
  const run = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  const eventsTopic = `tl-test.events.${run}`;
  const revocationsTopic = `tl-test.revocations.${run}`;
  const groupId = `tl-test.group.${run}`;
  const createdTopics: string[] = [];
  const createdGroups: string[] = [];

  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    kafka = new Kafka({
      clientId: `tl-test-${run}`,
      brokers: brokers.split(',').map((broker) => broker.trim()),
      logLevel: logLevel.WARN,
      logCreator: quietLogCreator,
      connectionTimeout: 3_000,
    });
    admin = kafka.admin();
    try {
      await admin.connect();
    } catch (error) {
      const reason = (error as Error).message;
      throw new Error(`no Kafka broker answers at KAFKA_BROKERS=${brokers} (${reason}); start one with \`npm run kafka:up\``);
    }
    producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  afterAll(async () => {
    await Promise.allSettled(consumers.map((consumer) => consumer.disconnect()));
    await producer?.disconnect().catch(() => undefined);
    if (admin) {
      if (createdGroups.length) await admin.deleteGroups(createdGroups).catch(() => undefined);
      if (createdTopics.length) await admin.deleteTopics({ topics: createdTopics, timeout: 10_000 }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('describes the cluster (one broker from kafka:up)', async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.clusterId).toEqual(expect.any(String));
    expect(cluster.brokers.length).toBeGreaterThanOrEqual(1);
  });

  it('creates topics with partitions and configs, incl. a compacted one, and lists and describes them', async () => {
    const created = await admin.createTopics({
      waitForLeaders: true,
      timeout: 10_000,
      topics: [
        {
          topic: eventsTopic,
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [
            { name: 'retention.ms', value: String(7 * 24 * 3600 * 1000) },
            { name: 'message.timestamp.type', value: 'CreateTime' },
          ],
        },
        {
          topic: revocationsTopic,
          numPartitions: 2,
          replicationFactor: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'min.cleanable.dirty.ratio', value: '0.01' },
            { name: 'segment.ms', value: '60000' },
          ],
        },
      ],
    });
    expect(created).toBe(true);
    createdTopics.push(eventsTopic, revocationsTopic);

    const topics = await admin.listTopics();
    expect(topics).toEqual(expect.arrayContaining([eventsTopic, revocationsTopic]));

    const metadata = await admin.fetchTopicMetadata({ topics: [eventsTopic, revocationsTopic] });
    const partitions = Object.fromEntries(metadata.topics.map((t) => [t.name, t.partitions.length]));
    expect(partitions).toEqual({ [eventsTopic]: 3, [revocationsTopic]: 2 });

    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: eventsTopic, configNames: ['retention.ms', 'cleanup.policy'] },
        { type: ConfigResourceTypes.TOPIC, name: revocationsTopic, configNames: ['cleanup.policy', 'min.cleanable.dirty.ratio'] },
      ],
    });
    const configs = Object.fromEntries(
      described.resources.map((resource) => [
        resource.resourceName,
        Object.fromEntries(resource.configEntries.map((entry) => [entry.configName, entry.configValue])),
      ]),
    );
    expect(configs[eventsTopic]).toEqual({ 'retention.ms': '604800000', 'cleanup.policy': 'delete' });
    expect(configs[revocationsTopic]).toEqual({ 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.01' });

    // Creating an existing topic is reported, not an error (what an app's bootstrap relies on).
    await expect(
      admin.createTopics({ topics: [{ topic: eventsTopic, numPartitions: 3 }], waitForLeaders: true }),
    ).resolves.toBe(false);
  });

  it('produces keyed messages with headers (plain and gzip) and a consumer group reads them in key order', async () => {
    const subjects = ['alice', 'bob', 'carol', 'dave'];
    const perSubject = 5;
    const messages = subjects.flatMap((subject) =>
      Array.from({ length: perSubject }, (_, seq) => ({
        key: subject,
        value: JSON.stringify({ eventId: randomUUID(), subject, seq }),
        headers: { 'event-type': 'TokenRefreshed', 'schema-version': '1' },
      })),
    );
    const half = messages.length / 2;
    const first = await producer.send({ topic: eventsTopic, messages: messages.slice(0, half) });
    const second = await producer.send({
      topic: eventsTopic,
      compression: CompressionTypes.GZIP,
      messages: messages.slice(half),
    });
    for (const record of [...first, ...second]) expect(record.errorCode).toBe(0);

    const received: Received[] = [];
    const consumer = kafka.consumer({ groupId, ...consumerTiming });
    consumers.push(consumer);
    createdGroups.push(groupId);
    await consumer.connect();
    await consumer.subscribe({ topics: [eventsTopic], fromBeginning: true });
    await consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) => {
        received.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers: decodeHeaders(message.headers),
        });
      },
    });
    await eventually(() => received.length >= messages.length, `${messages.length} messages`);
    expect(received).toHaveLength(messages.length);

    // One subject always lands on one partition, so its events arrive in order.
    for (const subject of subjects) {
      const mine = received.filter((r) => r.key === subject);
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
      expect(mine.map((r) => JSON.parse(r.value ?? '{}').seq)).toEqual([0, 1, 2, 3, 4]);
      for (const r of mine) expect(r.headers).toEqual({ 'event-type': 'TokenRefreshed', 'schema-version': '1' });
    }

    // The group is real on the broker: described as Stable with our member, and its offsets committed.
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0]).toMatchObject({ groupId, state: 'Stable', protocolType: 'consumer' });
    expect(groups[0].members).toHaveLength(1);
    const listed = await admin.listGroups();
    expect(listed.groups.map((g) => g.groupId)).toContain(groupId);

    const perPartition = new Map<number, number>();
    for (const r of received) perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1);
    await eventually(async () => {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [eventsTopic] });
      const committed = new Map(topic.partitions.map((p) => [p.partition, Number(p.offset)]));
      return [...perPartition].every(([partition, count]) => committed.get(partition) === count);
    }, 'committed offsets equal to the messages read per partition');

    await consumer.disconnect();
    const after = await admin.describeGroups([groupId]);
    expect(after.groups[0].state).toBe('Empty');
  });

  it('writes keyed values and a tombstone to the compacted topic and reads them back', async () => {
    const family = `family-${run}`;
    await producer.send({
      topic: revocationsTopic,
      messages: [
        { key: family, value: JSON.stringify({ familyId: family, reason: 'reuse_detected' }) },
        { key: family, value: JSON.stringify({ familyId: family, reason: 'admin' }) },
        { key: `${family}-gone`, value: JSON.stringify({ familyId: `${family}-gone` }) },
        { key: `${family}-gone`, value: null },
      ],
    });
    const offsets = await admin.fetchTopicOffsets(revocationsTopic);
    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(4);

    const seen: Received[] = [];
    const reader = kafka.consumer({ groupId: `${groupId}.compacted`, ...consumerTiming });
    consumers.push(reader);
    createdGroups.push(`${groupId}.compacted`);
    await reader.connect();
    await reader.subscribe({ topic: revocationsTopic, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers: {},
        });
      },
    });
    await eventually(() => seen.length >= 4, '4 revocation records');
    const latest = new Map<string | null, string | null>();
    for (const r of seen) latest.set(r.key, r.value);
    expect(JSON.parse(latest.get(family) ?? '{}')).toMatchObject({ reason: 'admin' });
    expect(latest.get(`${family}-gone`)).toBeNull();
    await reader.disconnect();
  });

  it('deletes its consumer groups and topics', async () => {
    await admin.deleteGroups(createdGroups);
    const { groups } = await admin.listGroups();
    const remaining = groups.map((g) => g.groupId);
    for (const group of createdGroups) expect(remaining).not.toContain(group);
    createdGroups.length = 0;

    await admin.deleteTopics({ topics: createdTopics, timeout: 10_000 });
    await eventually(async () => {
      const topics = await admin.listTopics();
      return !topics.includes(eventsTopic) && !topics.includes(revocationsTopic);
    }, 'the topics to be gone');
    createdTopics.length = 0;
  });
});
