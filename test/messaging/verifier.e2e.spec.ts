import type { Admin } from 'kafkajs';
import { Registry } from 'prom-client';
import { createVerifier, VerifyError, type Verifier } from '@token-ledger/verifier';
import { describeWithBackend } from '../backends';
import { ADMIN_TOKEN, LedgerClient, startLedger, type Ledger } from '../support/ledger-harness';
import { startRevocationsApp } from './revocations-app';
import { deleteTopics, eventually, kafkaClient, runId, testTopics } from './support';

jest.setTimeout(90_000);

async function rejection(verifier: Verifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    return error instanceof VerifyError ? error.code : String(error);
  }
}

describeWithBackend('kafka', 'revoke → resource-server verifier rejects (Kafka and SSE, real broker)', (brokers) => {
  const run = runId();
  const topics = testTopics(run);
  let ledger: Ledger;
  let side: Awaited<ReturnType<typeof startRevocationsApp>>;
  let client: LedgerClient;
  let admin: Admin;
  let rsApp: { clientId: string; secret: string };
  const verifiers: Verifier[] = [];

  const kafkaVerifier = (failMode: 'open' | 'closed' = 'closed', registry?: Registry) => {
    const v = createVerifier({
      registry,
      issuer: ledger.baseUrl,
      jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
      revocations: { kafka: { brokers: brokers.split(','), topic: topics.revocations } },
      failMode,
      maxStalenessMs: 2_000,
    });
    verifiers.push(v);
    return v;
  };
  const sseVerifier = (failMode: 'open' | 'closed' = 'closed', url = `${side.baseUrl}/v1/revocations/stream`, registry?: Registry) => {
    const v = createVerifier({
      registry,
      issuer: ledger.baseUrl,
      jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
      revocations: { sse: { url, token: ADMIN_TOKEN } },
      failMode,
      maxStalenessMs: 1_000,
    });
    verifiers.push(v);
    return v;
  };

  beforeAll(async () => {
    ledger = await startLedger();
    side = await startRevocationsApp(ledger, { kafkaBrokers: brokers.split(','), topics, partitions: 3, groupId: `tl-test.revocations.${run}`, relayName: `relay-${run}`, heartbeatMs: 300 });
    client = new LedgerClient(ledger.baseUrl);
    rsApp = await client.registerClient({ clientId: 'rs-app' });
    admin = kafkaClient(brokers).admin();
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.all(verifiers.map((v) => v.close()));
    await side?.close();
    await ledger?.destroy();
    await deleteTopics(admin, Object.values(topics));
    await admin.deleteGroups([`tl-test.revocations.${run}`]).catch(() => undefined);
    await admin.disconnect();
  });

  it('end to end: a revoked family and a revoked access token are rejected over Kafka and SSE', async () => {
    const [kafkaMetrics, sseMetrics] = [new Registry(), new Registry()];
    const kv = kafkaVerifier('closed', kafkaMetrics);
    const sv = sseVerifier('closed', undefined, sseMetrics);
    await Promise.all([kv.ready, sv.ready]);
    const fam = await client.issue({ subject: 'rs-alice', clientId: 'rs-app', scope: 'api:read' });
    expect((await kv.verify(fam.access_token)).payload.sid).toBe(fam.family_id);
    expect((await sv.verify(fam.access_token)).stale).toBe(false);

    await client.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' });
    await eventually(async () => (await rejection(kv, fam.access_token)) === 'token_revoked', 'Kafka verifier rejects');
    await eventually(async () => (await rejection(sv, fam.access_token)) === 'token_revoked', 'SSE verifier rejects');

    // RFC 7009 on one access token: that jti only.
    const other = await client.issue({ subject: 'rs-bob', clientId: 'rs-app', scope: 'api:read' });
    const res = await client.form('/oauth/revoke', { token: other.access_token, token_type_hint: 'access_token' }, rsApp);
    expect(res.status).toBe(200);
        await eventually(async () => (await rejection(kv, other.access_token)) === 'token_revoked', 'jti rejected (Kafka)');
    await eventually(async () => (await rejection(sv, other.access_token)) === 'token_revoked', 'jti rejected (SSE)');
    // The family's other tokens stay valid: a fresh access token from a refresh.
    const refreshed = await client.refresh(other.refresh_token, rsApp);
    expect(refreshed.status).toBe(200);
    expect((await kv.verify(refreshed.body.access_token)).payload.sid).toBe(other.family_id);

    // M5 from the verifiers' own metrics: both revocations applied, each delay observed (and short).
    for (const registry of [kafkaMetrics, sseMetrics]) {
      const text = await registry.metrics();
      const count = Number(/^token_ledger_verifier_revocation_delay_seconds_count (\S+)$/m.exec(text)?.[1]);
      const sum = Number(/^token_ledger_verifier_revocation_delay_seconds_sum (\S+)$/m.exec(text)?.[1]);
      expect(count).toBeGreaterThanOrEqual(2); // the family and the jti (a redelivery may add one)
      expect(sum / count).toBeLessThan(10);
      expect(Number(/^token_ledger_verifier_revocations_applied_total (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
      expect(Number(/^token_ledger_verifier_feed_staleness_seconds (\S+)$/m.exec(text)?.[1])).toBeLessThan(2);
      expect(text).toMatch(/^token_ledger_verifier_rejected_records_total\{reason="bad_signature"\} 0$/m);
    }
    // The relay (inline beside the embedded store) published them and reports itself alive and caught
    // up (its figures reach the registry once a second).
    let ledgerText = '';
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(ledgerText)?.[1]);
    await eventually(async () => {
      ledgerText = await (await fetch(`${ledger.baseUrl}/metrics`)).text();
      return gauge('token_ledger_relay_published_total') >= 4 && gauge('token_ledger_relay_behind_seconds') === 0;
    }, 'relay caught up');
    expect(gauge('token_ledger_relay_up')).toBe(1);
    expect(Math.abs(Date.now() / 1000 - gauge('token_ledger_relay_last_publish_timestamp_seconds'))).toBeLessThan(10);
  });

  it('a verifier started later bootstraps from the compacted topic before ready', async () => {
    const fam = await client.issue({ subject: 'rs-carol', clientId: 'rs-app', scope: 'api:read' });
    await client.admin('POST', `/v1/subjects/rs-carol/revoke`, { reason: 'password_change' });
    await eventually(async () => {
      const offsets = await admin.fetchTopicOffsets(topics.revocations);
      return offsets.reduce((n, o) => n + Number(o.high), 0) >= 2;
    }, 'record on the topic');
    await new Promise((r) => setTimeout(r, 300));
    const late = kafkaVerifier();
    await late.ready;
    expect(await rejection(late, fam.access_token)).toBe('token_revoked');
    const lateSse = sseVerifier();
    await lateSse.ready;
    expect(await rejection(lateSse, fam.access_token)).toBe('token_revoked');
  });

  it('feed down: fail-closed rejects after maxStalenessMs, fail-open accepts marked stale', async () => {
    const fam = await client.issue({ subject: 'rs-dave', clientId: 'rs-app', scope: 'api:read' });
    // An SSE endpoint that stops answering: a side app we close.
    const extra = await startRevocationsApp(ledger, { kafkaBrokers: null, heartbeatMs: 300 });
    const closed = sseVerifier('closed', `${extra.baseUrl}/v1/revocations/stream`);
    const open = sseVerifier('open', `${extra.baseUrl}/v1/revocations/stream`);
    await Promise.all([closed.ready, open.ready]);
    expect((await closed.verify(fam.access_token)).stale).toBe(false);
    await extra.close();
    // No signed heartbeat for longer than maxStalenessMs (1 s) + one heartbeat interval.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await rejection(closed, fam.access_token)).toBe('feed_unavailable');
    expect((await open.verify(fam.access_token)).stale).toBe(true);
  });
});
