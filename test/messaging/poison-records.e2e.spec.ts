import type { Kafka, Producer } from 'kafkajs';
import { RELAY_PRODUCER_CONFIG } from '@token-ledger/messaging';
import { describeWithBackend, resolveBackend } from '../backends';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { collect, deleteTopics, eventually, kafkaClient, runId, testTopics } from './support';

jest.setTimeout(120_000);

/**
 * The serve wiring of poison records: both consumers of events.v1 (the revocation propagator and
 * the anomaly engine, in their worker threads on PostgreSQL) dead-letter a garbage record, count it
 * in token_ledger_poison_records_total and log where it was — never its value — and keep going.
 */
describeWithBackend('kafka', 'poison records on events.v1 in the running ledger', (brokers) => {
  const postgres = resolveBackend('postgres');
  const run = runId();
  const topics = testTopics(run);
  let kafka: Kafka;
  let producer: Producer;
  let ledger: Ledger;

  beforeAll(async () => {
    kafka = kafkaClient(brokers);
    ledger = await startLedger({
      store: postgres.available ? { kind: 'postgres', url: postgres.url } : { kind: 'embedded' },
      messaging: { topics, groupPrefix: `tl-test-${run}` },
      env: { KAFKA_BROKERS: brokers },
    });
    producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await ledger?.destroy();
    const admin = kafka.admin();
    await admin.connect();
    await deleteTopics(admin, Object.values(topics));
    await admin.deleteGroups([`tl-test-${run}-revocations`, `tl-test-${run}-anomaly`]).catch(() => undefined);
    await admin.disconnect();
  });

  const poisonCount = async (consumer: string) => {
    const text = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
    const m = text.match(new RegExp(`^token_ledger_poison_records_total\\{consumer="${consumer}",reason="not-json"\\} (\\d+)`, 'm'));
    return m ? Number(m[1]) : 0;
  };

  it('each consumer dead-letters it once, counts it, logs its origin but not its value, and revocations still propagate', async () => {
    const dlq = await collectRaw(kafka, topics.eventsDeadLetter);
    const secret = `s3cr3t-${run}`;
    try {
      await producer.send({ topic: topics.events, messages: [{ key: 'poison', value: `not json ${secret}` }] });
      await eventually(async () => (await poisonCount('revocation propagator')) === 1 && (await poisonCount('anomaly engine')) === 1, 'both consumers counted it');
      await eventually(() => dlq.length === 2, 'one dead-letter record per consumer group');
      expect(dlq.map((d) => d.group).sort()).toEqual([`tl-test-${run}-anomaly`, `tl-test-${run}-revocations`]);

      const warns = ledger.logs.filter((l) => l.includes('is not a public event'));
      expect(warns).toHaveLength(2);
      for (const w of warns) {
        expect(JSON.parse(w)).toMatchObject({ level: 40, topic: topics.events, reason: 'not-json', deadLetterTopic: topics.eventsDeadLetter });
      }
      expect(ledger.logs.join('\n')).not.toContain(secret);

      // Not stalled: a revocation after the poison still reaches revocations.v1.
      const revocations = await collect(kafka, topics.revocations);
      try {
        const api = new LedgerClient(ledger.baseUrl);
        await api.registerClient({ clientId: 'poison-app' });
        const fam = await api.issue({ subject: 'poison-alice', clientId: 'poison-app', scope: 'api:read' });
        await api.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' });
        await eventually(() => revocations.messages.some((m) => m.key === fam.family_id), 'the revocation after the poison');
      } finally {
        await revocations.stop();
      }
      expect(await poisonCount('revocation propagator')).toBe(1);
      expect(await poisonCount('anomaly engine')).toBe(1);
    } finally {
      await dlq.stop();
    }
  });
});

/** The dead-letter topic's records: the consumer group header of each. */
async function collectRaw(kafka: Kafka, topic: string): Promise<{ group: string }[] & { stop(): Promise<void> }> {
  const out = [] as unknown as { group: string }[] & { stop(): Promise<void> };
  const consumer = kafka.consumer({ groupId: `tl-test.dlq-read.${runId()}`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void out.push({ group: String(message.headers?.['dlq-consumer-group']) }) });
  out.stop = () => consumer.disconnect();
  return out;
}
