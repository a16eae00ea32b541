import type { Admin, Producer } from 'kafkajs';
import { CompactSign, compactVerify, createLocalJWKSet, calculateJwkThumbprint, exportJWK, generateKeyPair, type JSONWebKeySet } from 'jose';
import { createVerifier, VerifyError, type Verifier } from '@token-ledger/verifier';
import { describeWithBackend } from '../backends';
import { LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { startRevocationsApp } from './revocations-app';
import { collect, deleteTopics, eventually, kafkaClient, runId, testTopics } from './support';

jest.setTimeout(180_000);

async function rejection(verifier: Verifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    return error instanceof VerifyError ? error.code : String(error);
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describeWithBackend('postgres', 'signed revocation feed (PostgreSQL store, Kafka pipeline in its thread)', (pgUrl) => {
  describeWithBackend('kafka', 'over the real broker', (brokers) => {
    const run = runId();
    const topics = testTopics(run);
    const groups = [`tl-test.revocations.${run}`, `tl-test.revocations.${run}-2`];
    const topics2 = testTopics(`${run}-2`);
    let ledger: Ledger;
    let side: Awaited<ReturnType<typeof startRevocationsApp>>;
    let client: LedgerClient;
    let admin: Admin;
    let producer: Producer;
    const verifiers: Verifier[] = [];

    const kafkaVerifier = (opts: { topic?: string; failMode?: 'open' | 'closed'; maxStalenessMs?: number; onRetry?: () => void } = {}) => {
      const v = createVerifier({
        issuer: ledger.baseUrl,
        jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
        revocations: { kafka: { brokers: brokers.split(','), topic: opts.topic ?? topics.revocations } },
        failMode: opts.failMode ?? 'closed',
        maxStalenessMs: opts.maxStalenessMs ?? 3_000,
        jwksCooldownMs: 500,
        retry: { initialDelayMs: 100, maxDelayMs: 500, onRetry: opts.onRetry },
      });
      verifiers.push(v);
      return v;
    };
    const ledgerJwks = async () => createLocalJWKSet((await (await fetch(`${ledger.baseUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet);

    beforeAll(async () => {
      ledger = await startLedger({ store: { kind: 'postgres', url: pgUrl } });
      side = await startRevocationsApp(ledger, { kafkaBrokers: brokers.split(','), topics, partitions: 3, groupId: groups[0], relayName: `relay-${run}`, heartbeatMs: 300, tombstoneSweepMs: 300 });
      client = new LedgerClient(ledger.baseUrl);
      await client.registerClient({ clientId: 'sf-app' });
      await client.registerClient({ clientId: 'sf-short', accessTokenTtl: 2 });
      const kafka = kafkaClient(brokers);
      admin = kafka.admin();
      await admin.connect();
      producer = kafka.producer();
      await producer.connect();
    });
    afterAll(async () => {
      await Promise.all(verifiers.map((v) => v.close()));
      await side?.close();
      await ledger?.destroy();
      await producer?.disconnect();
      await deleteTopics(admin, [...Object.values(topics), ...Object.values(topics2)]);
      await admin.deleteGroups(groups).catch(() => undefined);
      await admin.disconnect();
    });

    it('records are JWS (kid, typ revocation+jwt) that verify against the JWKS, with no subject in clear; heartbeats every interval', async () => {
      const out = await collect(kafkaClient(brokers), topics.revocations);
      try {
        const fam = await client.issue({ subject: 'sf-alice@example.com', clientId: 'sf-app', scope: 'api:read' });
        await client.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' });
        await eventually(() => out.messages.some((m) => m.key === fam.family_id), 'the record');
        const jwks = await ledgerJwks();
        const m = out.messages.find((x) => x.key === fam.family_id)!;
        const { payload, protectedHeader } = await compactVerify(m.raw!, jwks);
        expect(protectedHeader).toEqual({ alg: 'ES256', kid: ledger.runtime.keyRing.activeKid, typ: 'revocation+jwt' });
        const record = JSON.parse(Buffer.from(payload).toString());
        expect(record).toEqual(
          expect.objectContaining({ familyId: fam.family_id, subjectHash: ledger.runtime.secrets.subjectHash('sf-alice@example.com'), reason: 'logout', revokedAt: expect.any(String), accessTokensValidUntil: expect.any(String) }),
        );
        expect(record).not.toHaveProperty('subject');
        expect(JSON.stringify(out.messages.map((x) => x.value))).not.toContain('sf-alice');

        await eventually(() => out.messages.filter((x) => x.key === '__heartbeat__').length >= 4, 'four heartbeats', 15_000);
        const beats = out.messages.filter((x) => x.key === '__heartbeat__');
        for (const hb of beats) {
          const v = await compactVerify(hb.raw!, jwks);
          expect(v.protectedHeader.typ).toBe('revocation-heartbeat+jwt');
        }
        const ats = beats.map((hb) => Date.parse(hb.value.at));
        for (let i = 1; i < ats.length; i++) expect(ats[i] - ats[i - 1]).toBeLessThan(3_000); // every few seconds (300 ms configured)
        expect(Math.max(...beats.map((hb) => hb.value.position))).toBeLessThanOrEqual(await ledger.store.headPosition());
      } finally {
        await out.stop();
      }
    });

    it('a foreign record (unsigned, another key, tampered, a token of the wrong typ, a tombstone) neither revokes nor un-revokes, and is counted', async () => {
      const v = kafkaVerifier();
      await v.ready;
      const live = await client.issue({ subject: 'sf-bob', clientId: 'sf-app', scope: 'api:read' });
      const gone = await client.issue({ subject: 'sf-carol', clientId: 'sf-app', scope: 'api:read' });
      await client.admin('POST', `/v1/families/${gone.family_id}/revoke`, { reason: 'admin' });
      await eventually(async () => (await rejection(v, gone.access_token)) === 'token_revoked', 'the genuine revocation');
      const genuine = await new Promise<string>((resolve, reject) => {
        void collect(kafkaClient(brokers), topics.revocations).then(async (out) => {
          try {
            await eventually(() => out.messages.some((m) => m.key === gone.family_id), 'genuine record');
            resolve(out.messages.find((m) => m.key === gone.family_id)!.raw!);
          } catch (error) {
            reject(error);
          } finally {
            await out.stop();
          }
        });
      });
      const [h, , sig] = genuine.split('.');
      const future = new Date(Date.now() + 3600_000).toISOString();
      const past = new Date(Date.now() - 3600_000).toISOString();
      const revokeLive = { familyId: live.family_id, subjectHash: 'x', reason: 'admin', revokedAt: new Date().toISOString(), accessTokensValidUntil: future, eventId: 'e', position: 1 };
      const unRevoke = { ...JSON.parse(Buffer.from(genuine.split('.')[1], 'base64url').toString()), accessTokensValidUntil: past };
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const foreignKid = await calculateJwkThumbprint(await exportJWK(publicKey));
      const foreign = await new CompactSign(Buffer.from(JSON.stringify(revokeLive))).setProtectedHeader({ alg: 'ES256', kid: foreignKid, typ: 'revocation+jwt' }).sign(privateKey);
      const before = v.feedStats();
      await producer.send({
        topic: topics.revocations,
        messages: [
          { key: live.family_id, value: JSON.stringify(revokeLive) }, // unsigned
          { key: live.family_id, value: foreign }, // another key
          { key: live.family_id, value: `${h}.${b64(revokeLive)}.${sig}` }, // tampered payload
          { key: live.family_id, value: live.access_token }, // signed by the ledger, but an access token (typ at+jwt)
          { key: gone.family_id, value: JSON.stringify(unRevoke) }, // unsigned un-revoke
          { key: gone.family_id, value: `${h}.${b64(unRevoke)}.${sig}` }, // tampered un-revoke
          { key: gone.family_id, value: null }, // tombstone
        ],
      });
      const grew = (after: ReturnType<Verifier['feedStats']>) =>
        after.rejected.unsigned - before.rejected.unsigned >= 2 &&
        after.rejected.unknown_key - before.rejected.unknown_key >= 1 &&
        after.rejected.bad_signature - before.rejected.bad_signature >= 2 &&
        after.rejected.wrong_type - before.rejected.wrong_type >= 1 &&
        after.tombstones - before.tombstones >= 1;
      await eventually(() => grew(v.feedStats()), 'every foreign value counted');
      expect(v.feedStats().records).toBe(before.records);
      expect(await rejection(v, live.access_token)).toBeUndefined();
      expect(await rejection(v, gone.access_token)).toBe('token_revoked');

      // The same on a verifier that bootstraps from the topic with the foreign values on it.
      const late = kafkaVerifier();
      await late.ready;
      const ls = late.feedStats();
      expect([ls.rejected.unsigned, ls.rejected.unknown_key, ls.rejected.bad_signature, ls.rejected.wrong_type]).toEqual([2, 1, 2, 1]);
      expect(await rejection(late, live.access_token)).toBeUndefined();
      expect(await rejection(late, gone.access_token)).toBe('token_revoked');

      // Key rotation: the pipeline thread signs with its ring until it reloads; either key is in the JWKS.
      await ledger.runtime.keyRing.rotate();
      const after = await client.issue({ subject: 'sf-dave', clientId: 'sf-app', scope: 'api:read' });
      await client.admin('POST', `/v1/families/${after.family_id}/revoke`, { reason: 'admin' });
      await eventually(async () => (await rejection(v, after.access_token)) === 'token_revoked', 'a record after the rotation');
    });

    it('tombstones a family once accessTokensValidUntil has passed', async () => {
      const out = await collect(kafkaClient(brokers), topics.revocations);
      try {
        const fam = await client.issue({ subject: 'sf-erin', clientId: 'sf-short', scope: 'api:read' });
        await client.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' });
        await eventually(() => out.messages.some((m) => m.key === fam.family_id && m.raw !== null), 'the record');
        const until = Date.parse(out.messages.find((m) => m.key === fam.family_id)!.value.accessTokensValidUntil);
        expect(until - Date.now()).toBeLessThanOrEqual(2_000);
        await eventually(() => out.messages.some((m) => m.key === fam.family_id && m.raw === null), 'the tombstone', 15_000);
        expect(Date.now()).toBeGreaterThanOrEqual(until);
      } finally {
        await out.stop();
      }
    });

    it('start retries until the topic exists; a stopped pipeline (broker still up) makes verifiers stale: closed rejects, open marks stale', async () => {
      let retries = 0;
      const closed = kafkaVerifier({ topic: topics2.revocations, maxStalenessMs: 1_500, onRetry: () => retries++ });
      const open = kafkaVerifier({ topic: topics2.revocations, failMode: 'open', maxStalenessMs: 1_500 });
      await new Promise((r) => setTimeout(r, 1_500));
      expect(retries).toBeGreaterThanOrEqual(1); // the topic does not exist yet
      const fam = await client.issue({ subject: 'sf-frank', clientId: 'sf-app', scope: 'api:read' });
      expect(await rejection(closed, fam.access_token)).toBe('feed_unavailable');

      const second = await startRevocationsApp(ledger, { kafkaBrokers: brokers.split(','), topics: topics2, partitions: 3, groupId: groups[1], relayName: `relay-${run}-2`, heartbeatMs: 300 });
      try {
        await Promise.all([closed.ready, open.ready]);
        expect((await closed.verify(fam.access_token)).stale).toBe(false);
      } finally {
        await second.close();
      }
      const stoppedAt = Date.now();
      await eventually(async () => (await rejection(closed, fam.access_token)) === 'feed_unavailable', 'stale (fail closed)', 1_500 + 300 + 2_000);
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(500);
      expect((await open.verify(fam.access_token)).stale).toBe(true);
      const offsets = await admin.fetchTopicOffsets(topics2.revocations); // the broker is up all along
      expect(offsets.length).toBe(3);
    });
  });
});
