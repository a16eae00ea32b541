import { context, trace } from '@opentelemetry/api';
import { node } from '@opentelemetry/sdk-node';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { activeTraceparent } from '@token-ledger/envelope';
import { openEventStore, sqlBacked } from '@token-ledger/event-store';
import { ensureTopics, KafkaEventSource, KafkaRelay, KafkaRevocationSink, RELAY_PRODUCER_CONFIG, RevocationPropagator, type TopicNames } from '@token-ledger/messaging';
import { KafkaRevocationFeed } from '@token-ledger/verifier';
import { describeWithBackend, resolveBackend } from '../backends';
import { freshDatabase } from '../support/fresh-database';
import { deleteTopics, eventually, familyEvent, feedCrypto, kafkaClient, openTempStore, runId, testTopics } from './support';

jest.setTimeout(60_000);

/** A PostgreSQL database of its own when there is one (PGlite's start costs seconds more), else the embedded store. */
async function openStore() {
  const postgres = resolveBackend('postgres');
  if (!postgres.available) return openTempStore();
  const db = await freshDatabase(postgres.url, 'tl_tracing_kafka');
  const store = sqlBacked(await openEventStore({ store: 'postgres', url: db.url, poolSize: 4 }), 'the messaging checkpoints');
  return {
    store,
    async close() {
      await store.close();
      await db.drop();
    },
  };
}

/**
 * The trace of the command that revoked a family goes on across Kafka (docs/tracing.md): the relay's
 * publish span is a child of the context stored with the event, its `traceparent` header reaches the
 * propagator, and the revocations topic's header reaches the verifier SDK, whose span joins the trace.
 * A real broker; an in-memory exporter in this process (the app's SDK set-up is tested end to end in
 * test/tracing.e2e.spec.ts).
 */
describeWithBackend('kafka', 'trace context through Kafka headers (relay → propagator → verifier)', (brokers) => {
  const run = runId();
  const topics: TopicNames = testTopics(run);
  const exporter = new node.InMemorySpanExporter();
  const provider = new node.NodeTracerProvider({ spanProcessors: [new node.SimpleSpanProcessor(exporter)] });
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  beforeAll(async () => {
    provider.register();
    kafka = kafkaClient(brokers);
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, { topics, partitions: 2 });
    producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await producer.connect();
  });

  afterAll(async () => {
    await producer.disconnect();
    await deleteTopics(admin, Object.values(topics));
    await admin.deleteGroups([`tl-test.tracing.${run}`]).catch(() => undefined);
    await admin.disconnect();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it('publish, propagate and the verifier applying the record share the command trace', async () => {
    const { store, close } = await openStore();
    const crypto = await feedCrypto(store);
    const relay = new KafkaRelay(kafka, store, { topics, name: `relay-${run}` });
    const source = new KafkaEventSource(kafka, { topic: topics.events, groupId: `tl-test.tracing.${run}` });
    const propagator = new RevocationPropagator(source, [new KafkaRevocationSink(producer, topics.revocations)], { maxAccessTokenTtlSeconds: 3600, signer: crypto.signer, subjectHash: crypto.subjectHash });
    const feed = new KafkaRevocationFeed({ brokers: brokers.split(','), topic: topics.revocations, groupPrefix: `tl-test.tracing-verifier.${run}` });
    const applied: string[] = [];
    try {
      await relay.start();
      await propagator.start();
      await feed.start(async (value) => {
        if (value) applied.push(value);
      });

      // The command's span, as the ledger would have it while appending (toNewEvent stores it).
      const command = trace.getTracer('test').startSpan('command RevokeFamily');
      const traceparent = activeTraceparent(trace.setSpan(context.active(), command));
      command.end();
      const now = Date.now();
      const revoked = familyEvent('TokenFamilyRevoked', 'fam_traced', 'tracy', { reason: 'logout', revokedAt: new Date(now).toISOString(), accessTokensValidUntil: new Date(now + 300_000).toISOString() });
      revoked.metadata = { ...revoked.metadata, traceparent };
      // An event written with tracing off: relayed and propagated without spans.
      const untraced = familyEvent('TokenFamilyRevoked', 'fam_plain', 'plain', { reason: 'logout', revokedAt: new Date(now).toISOString(), accessTokensValidUntil: new Date(now + 300_000).toISOString() });
      await store.append('family-fam_traced', [revoked], { expectedRevision: 'no_stream' });
      await store.append('family-fam_plain', [untraced], { expectedRevision: 'no_stream' });

      const traceId = command.spanContext().traceId;
      const spans = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      await eventually(() => spans().some((s) => s.name === 'verifier apply revocation') && applied.length >= 2, 'the verifier span in the command trace');
      const named = (name: string) => spans().filter((s) => s.name === name);
      const [publish] = named(`publish ${topics.events}`);
      expect(publish.parentSpanContext?.spanId).toBe(command.spanContext().spanId);
      // The propagator continues the header's context (the publish span), and so does the verifier.
      const [propagate] = named('revocations propagate');
      expect(propagate.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
      const [verify] = named('verifier apply revocation');
      expect(verify.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
      // Only the traced event made spans: one publish, whatever else went through.
      expect(exporter.getFinishedSpans().filter((s) => s.name.startsWith('publish ')).length).toBe(1);
      expect(exporter.getFinishedSpans().filter((s) => s.name === 'verifier apply revocation').length).toBe(1);
    } finally {
      await feed.close();
      await propagator.stop();
      await relay.stop();
      await close();
    }
  });
});
