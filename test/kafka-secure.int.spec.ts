import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { createVerifier, kafkajsSecurity, kafkaSecurityFromEnv, VerifyError, type KafkaSecurity, type Verifier } from '@token-ledger/verifier';
import { DEFAULT_TOPICS } from '@token-ledger/messaging';
import { describeWithBackend } from './backends';
import { freePort } from './support/free-port';
import { LedgerClient, startLedger, type Ledger } from './support/ledger-harness';
import { eventually, quietLogCreator } from './messaging/support';

/**
 * Issue #15 item 2: the ledger and the verifier SDK against a real broker started by
 * `npm run kafka:up -- --secure` (SASL_SSL, StandardAuthorizer, the ledger's ACLs) on free ports.
 * KAFKA_SECURE_PORT=<port> reuses a secured broker already started on that port (and leaves it up).
 */
jest.setTimeout(240_000);

const exec = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const UP = path.join(ROOT, 'scripts/kafka/up.js');
const DOWN = path.join(ROOT, 'scripts/kafka/down.js');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { resolveConfig } = require('../scripts/kafka/common') as { resolveConfig(env: NodeJS.ProcessEnv): { instanceDir: string; stateFile: string } };

type Principal = 'admin' | 'ledger' | 'verifier' | 'other';

/** KEY=VALUE lines of `<instance>/<user>.env`, as written by kafka:up --secure. */
function readEnvFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/** The kafkajs error type behind a rejection (kafkajs wraps some in KafkaJSNonRetriableError). */
async function failureOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
    return 'succeeded';
  } catch (error) {
    let e = error as { name?: string; type?: string; message?: string; cause?: unknown; originalError?: unknown } | undefined;
    while (e && !e.type && (e.cause || e.originalError)) e = (e.cause ?? e.originalError) as typeof e;
    return e?.type ?? (/Topic authorization failed/.test(String(e?.message)) ? 'TOPIC_AUTHORIZATION_FAILED' : `${e?.name}: ${e?.message}`);
  }
}

async function rejection(verifier: Verifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    return error instanceof VerifyError ? error.code : String(error);
  }
}

describeWithBackend('kafka', 'Kafka with TLS and SASL: kafka:up --secure, the ledger and the verifier SDK (real broker)', () => {
  describeWithBackend('postgres', 'on a SASL_SSL listener with ACLs', (databaseUrl) => {
    let port: number;
    let started = false;
    let env: Record<Principal, Record<string, string>>;
    let brokers: string[];
    let ledger: Ledger;
    let client: LedgerClient;
    const closers: Array<() => Promise<unknown>> = [];

    const kafkaAs = (security: KafkaSecurity | undefined, extra: Partial<KafkaConfig> = {}): Kafka =>
      new Kafka({
        clientId: 'tl-test-secure',
        brokers,
        logLevel: logLevel.ERROR,
        logCreator: quietLogCreator,
        connectionTimeout: 3_000,
        requestTimeout: 5_000,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
        ...kafkajsSecurity(security),
        ...extra,
      });
    const principal = (user: Principal) => kafkaAs(kafkaSecurityFromEnv(env[user]));

    beforeAll(async () => {
      const reuse = process.env.KAFKA_SECURE_PORT;
      port = reuse ? Number(reuse) : await freePort();
      const scriptEnv: NodeJS.ProcessEnv = { ...process.env, KAFKA_PORT: String(port), KAFKA_SECURE: '1', KAFKA_UP_TIMEOUT_SECONDS: '180' };
      if (!reuse) {
        scriptEnv.KAFKA_CONTROLLER_PORT = String(await freePort());
        started = true;
        await exec(process.execPath, [UP, '--secure'], { env: scriptEnv, timeout: 220_000 });
      }
      const state = JSON.parse(readFileSync(resolveConfig(scriptEnv).stateFile, 'utf8')) as { secure?: boolean; envFiles: Record<Principal, string> };
      expect(state.secure).toBe(true);
      env = Object.fromEntries(Object.entries(state.envFiles).map(([user, file]) => [user, readEnvFile(file)])) as typeof env;
      brokers = env.ledger.KAFKA_BROKERS.split(',');

      // The ledger as an operator runs it: PostgreSQL (so the relay and the propagator run in a
      // worker thread, fed the settings through workerData) and the ledger principal's env.
      ledger = await startLedger({ store: { kind: 'postgres', url: databaseUrl }, env: env.ledger });
      client = new LedgerClient(ledger.baseUrl);
      await client.registerClient({ clientId: 'rs-app' });
    });

    afterAll(async () => {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      await ledger?.destroy();
      if (started) {
        const scriptEnv = { ...process.env, KAFKA_PORT: String(port) };
        await exec(process.execPath, [DOWN], { env: scriptEnv, timeout: 60_000 });
        rmSync(resolveConfig(scriptEnv).instanceDir, { recursive: true, force: true });
      }
    });

    it('the ledger relays its events and revocations as User:ledger, and a verifier as User:verifier rejects a revoked token', async () => {
      const verifier = createVerifier({
        issuer: ledger.baseUrl,
        jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
        revocations: { kafka: { brokers, security: kafkaSecurityFromEnv(env.verifier) } },
        failMode: 'closed',
        maxStalenessMs: 5_000,
      });
      closers.push(() => verifier.close());
      await verifier.ready;
      const fam = await client.issue({ subject: 'sec-alice', clientId: 'rs-app', scope: 'api:read' });
      expect((await verifier.verify(fam.access_token)).payload.sid).toBe(fam.family_id);

      await client.admin('POST', `/v1/families/${fam.family_id}/revoke`, { reason: 'logout' });
      await eventually(async () => (await rejection(verifier, fam.access_token)) === 'token_revoked', 'the verifier rejects the revoked token', 60_000);

      const admin = principal('ledger').admin();
      await admin.connect();
      closers.push(() => admin.disconnect());
      const total = async (topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
      expect(await total(DEFAULT_TOPICS.events)).toBeGreaterThanOrEqual(2); // issued, revoked
      expect(await total(DEFAULT_TOPICS.revocations)).toBeGreaterThanOrEqual(1);
      // The propagator and the anomaly engine consume as User:ledger too (in their worker threads),
      // and nothing in the ledger failed on the way.
      const { groups } = await admin.describeGroups(['token-ledger-revocations', 'token-ledger-anomaly']);
      expect(groups.map((g) => [g.groupId, g.state])).toEqual([
        ['token-ledger-revocations', 'Stable'],
        ['token-ledger-anomaly', 'Stable'],
      ]);
      expect(ledger.logs.filter((line) => /failed; retrying|AUTHORIZATION_FAILED|SASL/.test(line))).toEqual([]);
    });

    it('User:other can neither write nor read the ledger’s topics', async () => {
      const kafka = principal('other');
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      closers.push(() => producer.disconnect());
      for (const topic of [DEFAULT_TOPICS.events, DEFAULT_TOPICS.revocations]) {
        expect(await failureOf(producer.send({ topic, messages: [{ key: 'k', value: '{"forged":true}' }] }))).toBe('TOPIC_AUTHORIZATION_FAILED');
      }

      const admin = kafka.admin();
      await admin.connect();
      closers.push(() => admin.disconnect());
      expect(await failureOf(admin.fetchTopicOffsets(DEFAULT_TOPICS.revocations))).toBe('TOPIC_AUTHORIZATION_FAILED');
      expect(await admin.listTopics()).toEqual([]); // the topics are not even visible

      const consumer = kafka.consumer({ groupId: 'token-ledger-verifier-other', allowAutoTopicCreation: false });
      await consumer.connect();
      closers.push(() => consumer.disconnect());
      expect(await failureOf(consumer.subscribe({ topics: [DEFAULT_TOPICS.events, DEFAULT_TOPICS.revocations], fromBeginning: true }))).toBe(
        'TOPIC_AUTHORIZATION_FAILED',
      );
      // And the same records a reader with rights sees are not reachable by the SDK either.
      const sneaky = createVerifier({
        issuer: ledger.baseUrl,
        jwksUri: `${ledger.baseUrl}/.well-known/jwks.json`,
        revocations: { kafka: { brokers, security: kafkaSecurityFromEnv(env.other) } },
        failMode: 'closed',
        maxStalenessMs: 5_000,
        // The SDK retries its start forever by default (a broker not up yet); refused is final here.
        retry: { maxAttempts: 1 },
      });
      closers.push(() => sneaky.close());
      expect(await failureOf(sneaky.ready)).toBe('TOPIC_AUTHORIZATION_FAILED');
    });

    it('User:verifier reads the revocations topic only: it cannot write it nor read the events', async () => {
      const kafka = principal('verifier');
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      closers.push(() => producer.disconnect());
      expect(await failureOf(producer.send({ topic: DEFAULT_TOPICS.revocations, messages: [{ key: 'k', value: '{}' }] }))).toBe('TOPIC_AUTHORIZATION_FAILED');
      const admin = kafka.admin();
      await admin.connect();
      closers.push(() => admin.disconnect());
      expect(await failureOf(admin.fetchTopicOffsets(DEFAULT_TOPICS.events))).toBe('TOPIC_AUTHORIZATION_FAILED');
      expect(await admin.listTopics()).toEqual([DEFAULT_TOPICS.revocations]);
    });

    it('refuses a client without TLS, without SASL, with a wrong password or without the CA', async () => {
      const ledgerSecurity = kafkaSecurityFromEnv(env.ledger)!;
      const listTopics = async (kafka: Kafka) => {
        const admin = kafka.admin();
        try {
          await admin.connect();
          return await admin.listTopics();
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      };
      // The same principal with the right settings gets in (PLAIN and SCRAM-SHA-256 too).
      expect(await listTopics(kafkaAs(ledgerSecurity))).toEqual(expect.arrayContaining([DEFAULT_TOPICS.events, DEFAULT_TOPICS.revocations]));
      for (const mechanism of ['plain', 'scram-sha-256'] as const) {
        expect(await listTopics(kafkaAs({ ...ledgerSecurity, sasl: { ...ledgerSecurity.sasl!, mechanism } }))).toContain(DEFAULT_TOPICS.events);
      }

      expect(await failureOf(listTopics(kafkaAs(undefined)))).toMatch(/Closed connection|ECONNRESET|Connection (error|timeout)|KafkaJS/);
      expect(await failureOf(listTopics(kafkaAs({ ssl: ledgerSecurity.ssl })))).not.toBe('succeeded');
      expect(await failureOf(listTopics(kafkaAs({ ...ledgerSecurity, sasl: { ...ledgerSecurity.sasl!, password: 'not-the-password' } })))).toMatch(
        /KafkaJSSASLAuthenticationError: .*invalid credentials/,
      );
      expect(await failureOf(listTopics(kafkaAs({ ...ledgerSecurity, ssl: { rejectUnauthorized: true } })))).toMatch(/self-signed certificate/);
    });
  });
});
