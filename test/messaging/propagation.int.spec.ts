import type { Admin, Kafka, Producer } from 'kafkajs';
import {
  ensureTopics,
  InProcessEventSource,
  KafkaEventSource,
  KafkaRelay,
  KafkaRevocationSink,
  RELAY_PRODUCER_CONFIG,
  RevocationHub,
  RevocationPropagator,
  toKafkaMessage,
  type RevocationRecord,
  type SignedRevocation,
  type TopicNames,
} from '@token-ledger/messaging';
import { toPublicEvent } from '@token-ledger/envelope';
import { compactVerify, createLocalJWKSet } from 'jose';
import { describeWithBackend } from '../backends';
import { collect, deleteTopics, eventually, familyEvent, feedCrypto, kafkaClient, openTempStore, runId, testTopics } from './support';

jest.setTimeout(60_000);

const HOUR = 3600_000;
const iso = (ms: number) => new Date(ms).toISOString();

function revocationEvents() {
  const now = Date.now();
  return [
    familyEvent('TokenFamilyRevoked', 'fam_a', 'alice', { reason: 'logout', revokedAt: iso(now), accessTokensValidUntil: iso(now + 300_000) }),
    familyEvent('TokenReuseDetected', 'fam_b', 'bob', { presentedGeneration: 1, headGeneration: 3 }),
    familyEvent('TokenFamilyRevoked', 'fam_b', 'bob', { reason: 'reuse_detected', revokedAt: iso(now), accessTokensValidUntil: iso(now + 300_000) }),
    familyEvent('AccessTokenRevoked', 'fam_c', 'carol', { jti: 'jti-1', expiresAt: iso(now + 200_000) }),
    familyEvent('TokenFamilyExpired', 'fam_d', 'dave', { reason: 'idle', expiredAt: iso(now) }),
    familyEvent('TokenRotated', 'fam_c', 'carol', { generation: 2 }),
  ];
}

describe('RevocationPropagator in-process (no Kafka)', () => {
  it('turns every revoking event into a record on the hub, once', async () => {
    const { store, close } = await openTempStore();
    const crypto = await feedCrypto(store);
    const opts = { maxAccessTokenTtlSeconds: 3600, signer: crypto.signer, subjectHash: crypto.subjectHash };
    const hub = new RevocationHub();
    const signed: SignedRevocation[] = [];
    const got: RevocationRecord[] = [];
    hub.subscribe((r) => {
      signed.push(...r);
      got.push(...r.map((s) => s.record));
    });
    const source = new InProcessEventSource(store, { name: 'test-inproc' });
    const propagator = new RevocationPropagator(source, [hub], opts);
    try {
      await propagator.start();
      for (const e of revocationEvents()) await store.append(`family-${(e.metadata as any).familyId}`, [e], { expectedRevision: 'any' });
      await eventually(() => got.length === 4, '4 records');
      expect(got.map((r) => [r.familyId, r.reason, r.jti])).toEqual([
        ['fam_a', 'logout', undefined],
        ['fam_b', 'reuse_detected', undefined],
        ['fam_c', 'access_token_revoked', 'jti-1'],
        ['fam_d', 'expired_idle', undefined],
      ]);
      expect(Date.parse(got[3].accessTokensValidUntil) - Date.parse(got[3].revokedAt)).toBe(HOUR);
      expect(hub.active()).toHaveLength(4);
      // Each record is signed by the ring's active key, typ revocation+jwt, with the subject hashed.
      const jwks = createLocalJWKSet(crypto.keyRing.jwks());
      for (const { record, jws } of signed) {
        const { payload, protectedHeader } = await compactVerify(jws, jwks);
        expect(protectedHeader).toEqual({ alg: 'ES256', kid: crypto.keyRing.activeKid, typ: 'revocation+jwt' });
        expect(JSON.parse(Buffer.from(payload).toString())).toEqual(record);
        expect(jws).not.toContain(Buffer.from('"alice"').toString('base64url').slice(0, 6));
      }
      expect(got[0].subjectHash).toBe(crypto.secrets.subjectHash('alice'));
      expect(got[0].subjectHash).not.toBe(got[1].subjectHash);
      expect(JSON.stringify(got)).not.toMatch(/alice|bob|carol|dave/);
      // Restart from the checkpoint: nothing is delivered twice.
      await propagator.stop();
      const again = new RevocationPropagator(new InProcessEventSource(store, { name: 'test-inproc' }), [hub], opts);
      await again.start();
      const late = familyEvent('TokenFamilyRevoked', 'fam_e', 'erin', { reason: 'admin', revokedAt: iso(Date.now()), accessTokensValidUntil: iso(Date.now() + 1000) });
      await store.append('family-fam_e', [late], { expectedRevision: 'any' });
      await eventually(() => got.length === 5, 'the late record');
      expect(got[4].familyId).toBe('fam_e');
      await again.stop();
    } finally {
      await propagator.stop();
      await close();
    }
  });
});

describeWithBackend('kafka', 'RevocationPropagator over Kafka (real broker)', (brokers) => {
  const run = runId();
  const topics: TopicNames = testTopics(run);
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  beforeAll(async () => {
    kafka = kafkaClient(brokers);
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, { topics, partitions: 3 });
    producer = kafka.producer(RELAY_PRODUCER_CONFIG);
    await producer.connect();
  });

  afterAll(async () => {
    await producer.disconnect();
    await deleteTopics(admin, Object.values(topics));
    await admin.deleteGroups([`tl-test.revocations.${run}`]).catch(() => undefined);
    await admin.disconnect();
  });

  it('events.v1 → revocations.v1 (compaction keys) and the hub; duplicate deliveries are harmless', async () => {
    const { store, close } = await openTempStore();
    const crypto = await feedCrypto(store);
    const relay = new KafkaRelay(kafka, store, { topics, name: `relay-${run}` });
    const hub = new RevocationHub();
    const hubRecords: SignedRevocation[] = [];
    hub.subscribe((r) => hubRecords.push(...r));
    const propagator = new RevocationPropagator(
      new KafkaEventSource(kafka, { topic: topics.events, groupId: `tl-test.revocations.${run}` }),
      [new KafkaRevocationSink(producer, topics.revocations), hub],
      { maxAccessTokenTtlSeconds: 3600, signer: crypto.signer, subjectHash: crypto.subjectHash },
    );
    const out = await collect(kafka, topics.revocations);
    try {
      await relay.start();
      await propagator.start();
      const events = revocationEvents();
      for (const e of events) await store.append(`family-${(e.metadata as any).familyId}`, [e], { expectedRevision: 'any' });
      await eventually(() => out.messages.length >= 4, '4 revocation records');
      // Duplicate delivery: the relay's at-least-once resend of already-published events.
      const recorded = await store.readAll({});
      await producer.send({ topic: topics.events, messages: recorded.map((r) => toKafkaMessage(toPublicEvent(r), r.streamId)) });
      const marker = familyEvent('TokenFamilyRevoked', 'fam_z', 'zed', { reason: 'admin', revokedAt: iso(Date.now()), accessTokensValidUntil: iso(Date.now() + 1000) });
      await store.append('family-fam_z', [marker], { expectedRevision: 'any' });
      await eventually(() => out.messages.some((m) => m.value.familyId === 'fam_z'), 'the marker record');
      // The marker can overtake duplicates on other partitions: wait until the propagator has
      // committed past everything on events.v1 (it commits after handling), then until every record
      // on revocations.v1 has been collected. Only then does "no extra record" mean something.
      const endOffsets = async (topic: string) => (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
      await eventually(async () => {
        const end = await endOffsets(topics.events);
        const [committed] = await admin.fetchOffsets({ groupId: `tl-test.revocations.${run}`, topics: [topics.events] });
        return end.every((e) => e.offset === '0' || committed.partitions.some((c) => c.partition === e.partition && BigInt(c.offset) >= BigInt(e.offset)));
      }, 'the propagator committed past the duplicates');
      await eventually(async () => {
        const onTopic = (await admin.fetchTopicOffsets(topics.revocations)).reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
        return out.messages.length === onTopic;
      }, 'every record on revocations.v1 collected');
      expect(out.messages.map((m) => m.key).sort()).toEqual(['fam_a', 'fam_b', 'fam_c:jti-1', 'fam_d', 'fam_z']);
      expect(out.messages.find((m) => m.key === 'fam_b')!.value).toEqual(
        expect.objectContaining({ familyId: 'fam_b', subjectHash: crypto.subjectHash('bob'), reason: 'reuse_detected', revokedAt: expect.any(String), accessTokensValidUntil: expect.any(String) }),
      );
      // On the topic: JWS values that verify against the ring's JWKS, kid and typ in the header.
      const jwks = createLocalJWKSet(crypto.keyRing.jwks());
      for (const m of out.messages) {
        expect(m.jose).toEqual({ alg: 'ES256', kid: crypto.keyRing.activeKid, typ: 'revocation+jwt' });
        await expect(compactVerify(m.raw!, jwks)).resolves.toBeDefined();
        expect(m.value).not.toHaveProperty('subject');
      }
      expect(hubRecords).toHaveLength(5);
    } finally {
      await propagator.stop();
      await relay.stop();
      await out.stop();
      await close();
    }
  });
});
