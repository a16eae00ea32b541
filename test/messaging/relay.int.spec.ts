import { ConfigResourceTypes, type Admin, type Kafka } from 'kafkajs';
import { ensureTopics, KafkaRelay, readCheckpoint, type TopicNames } from '@token-ledger/messaging';
import { describeWithBackend } from '../backends';
import { appendMany, collect, deleteTopics, eventually, familyEvent, kafkaClient, openTempStore, runId, testTopics } from './support';

jest.setTimeout(60_000);

describeWithBackend('kafka', 'KafkaRelay: event store → events.v1 (real broker)', (brokers) => {
  const run = runId();
  const topics: TopicNames = testTopics(run);
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = kafkaClient(brokers);
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, { topics, partitions: 3 });
  });

  afterAll(async () => {
    await deleteTopics(admin, Object.values(topics));
    await admin.disconnect();
  });

  it('ensureTopics is idempotent and makes revocations compacted', async () => {
    await ensureTopics(admin, { topics, partitions: 3 });
    const meta = await admin.fetchTopicMetadata({ topics: [topics.events, topics.revocations] });
    expect(meta.topics.map((t) => t.partitions.length)).toEqual([3, 3]);
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.revocations, configNames: ['cleanup.policy'] }],
    });
    expect(configs.resources[0].configEntries[0].configValue).toBe('compact');
  });

  it('publishes every event once with key = subject and type/schema headers; checkpoint after the ack', async () => {
    const { store, close } = await openTempStore();
    const sink = await collect(kafka, topics.events);
    const relay = new KafkaRelay(kafka, store, { topics, name: `relay-${run}-a` });
    try {
      const ids = await appendMany(store, 50);
      await relay.start();
      const more = await appendMany(store, 30);
      const all = [...ids, ...more];
      await eventually(() => sink.messages.length >= all.length, 'all events on the topic');
      expect(sink.messages.map((m) => m.value.eventId).sort()).toEqual([...all].sort());
      const first = sink.messages[0];
      expect(first.key).toBe(first.value.subject);
      expect(first.headers['event-type']).toBe('TokenRotated');
      expect(first.headers['schema-version']).toBe('1');
      expect(first.value).toEqual(
        expect.objectContaining({ eventId: expect.any(String), type: 'TokenRotated', familyId: expect.any(String), position: expect.any(Number), data: expect.any(Object) }),
      );
      // Per subject, positions arrive in order (one partition per key, one request in flight).
      const bySubject = new Map<string, number[]>();
      for (const m of sink.messages) bySubject.set(m.key, [...(bySubject.get(m.key) ?? []), m.value.position]);
      for (const positions of bySubject.values()) expect(positions).toEqual([...positions].sort((a, b) => a - b));
      const head = await store.headPosition();
      await eventually(() => relay.position === head, 'relay position = head');
      // The checkpoint follows the acknowledged position, written beside the sends.
      await eventually(async () => (await readCheckpoint(store.sql, `relay-${run}-a`)) === head, 'checkpoint = head');
    } finally {
      await relay.stop();
      await sink.stop();
      await close();
    }
  });

  it('a relay stopped mid-stream and restarted loses nothing (at-least-once)', async () => {
    const { store, close } = await openTempStore();
    const topicsB = { ...topics };
    const sink = await collect(kafka, topics.events);
    const name = `relay-${run}-b`;
    try {
      const ids = await appendMany(store, 400);
      const relay1 = new KafkaRelay(kafka, store, { topics: topicsB, name, batchSize: 20 });
      await relay1.start();
      // "Crash": stop while it is catching up.
      await eventually(() => relay1.position > 0, 'first batch acknowledged');
      await relay1.stop();
      const cp = await readCheckpoint(store.sql, name);
      expect(cp).toBeLessThan(await store.headPosition());
      // stop() checkpoints everything the broker acknowledged.
      expect(cp).toBe(relay1.position);
      const more = await appendMany(store, 100);
      const relay2 = new KafkaRelay(kafka, store, { topics: topicsB, name, batchSize: 20 });
      await relay2.start();
      const all = new Set([...ids, ...more]);
      await eventually(() => { const got = new Set(sink.messages.map((m) => m.value.eventId)); return [...all].every((id) => got.has(id)); }, 'every event after restart');
      // stop() checkpointed everything acknowledged, so the restart re-sent nothing: each event exactly once.
      const ofThisTest = sink.messages.filter((m) => all.has(m.value.eventId));
      expect(ofThisTest).toHaveLength(all.size);
      expect(new Set(ofThisTest.map((m) => m.value.eventId))).toEqual(all);
      await relay2.stop();
    } finally {
      await sink.stop();
      await close();
    }
  });

  it('recreates the producer and resends from the checkpoint after a send failure (broker outage)', async () => {
    const { store, close } = await openTempStore();
    const sink = await collect(kafka, topics.events);
    const name = `relay-${run}-c`;
    // A Kafka whose first producer dies after its second batch, as when the broker goes away.
    let producers = 0;
    const flaky = new Proxy(kafka, {
      get(target, prop) {
        if (prop !== 'producer') return Reflect.get(target, prop);
        return (config: any) => {
          const p = target.producer(config);
          const n = ++producers;
          let sends = 0;
          const original = p.sendBatch.bind(p);
          p.sendBatch = async (batch) => {
            if (n === 1 && ++sends > 2) throw new Error('simulated broker outage');
            return original(batch);
          };
          return p;
        };
      },
    });
    const errors: unknown[] = [];
    const relay = new KafkaRelay(flaky, store, { topics, name, batchSize: 10, retryDelayMs: 50, onError: (e) => errors.push(e) });
    try {
      const ids = await appendMany(store, 100);
      await relay.start();
      const head = await store.headPosition();
      await eventually(() => relay.position >= head, 'relay caught up after the outage');
      await eventually(() => { const got = new Set(sink.messages.map((m) => m.value.eventId)); return ids.every((id) => got.has(id)); }, 'all events');
      // At-least-once: only what the dead producer had acknowledged (its two batches of 10) may come
      // twice, resent from a checkpoint that lagged it; everything after arrives exactly once.
      const times = new Map<string, number>();
      for (const m of sink.messages) times.set(m.value.eventId, (times.get(m.value.eventId) ?? 0) + 1);
      expect(ids.slice(0, 20).map((id) => times.get(id)).filter((n) => n !== 1 && n !== 2)).toEqual([]);
      expect(ids.slice(20).map((id) => times.get(id)).filter((n) => n !== 1)).toEqual([]);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(producers).toBeGreaterThanOrEqual(2);
    } finally {
      await relay.stop();
      await sink.stop();
      await close();
    }
  });

  it('also sends AnomalyDetected to the anomalies topic; its triage goes to events.v1 only', async () => {
    const { store, close } = await openTempStore();
    const sink = await collect(kafka, topics.anomalies);
    const events = await collect(kafka, topics.events);
    const relay = new KafkaRelay(kafka, store, { topics, name: `relay-${run}-d` });
    try {
      await relay.start();
      const anomalyId = 'anm_0123456789abcdef0123456789abcdef';
      const triage = [
        familyEvent('AnomalyDetected', 'fam_x', 'user-x', { anomalyId, rule: 'reuse_detected', severity: 'high' }),
        familyEvent('AnomalyAcknowledged', 'fam_x', 'user-x', { anomalyId, by: 'api-key:key_1', note: 'on it' }),
        familyEvent('AnomalyDismissed', 'fam_x', 'user-x', { anomalyId, by: 'admin-token', note: null }),
      ];
      await store.append(`anomaly-${anomalyId}`, triage, { expectedRevision: 'no_stream' });
      const mine = (c: { messages: { value: { eventId: string } }[] }) => c.messages.filter((m) => triage.some((t) => t.eventId === m.value.eventId));
      await eventually(() => mine(events).length === 3 && mine(sink).length >= 1, 'anomaly and triage on their topics');
      expect(mine(events).map((m: any) => [m.value.type, m.key, m.value.data])).toEqual(triage.map((t) => [t.type, 'user-x', t.data]));
      expect(mine(sink).map((m: any) => m.value.type)).toEqual(['AnomalyDetected']);
    } finally {
      await relay.stop();
      await sink.stop();
      await events.stop();
      await close();
    }
  });
});
