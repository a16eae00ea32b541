import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Kafka, logLevel, type Admin, type Consumer, type logCreator } from 'kafkajs';
import { freshEmbeddedDataDir } from '../../libs/event-store/src/testing/embedded-template';
import { openEventStore, sqlBacked, type EventStore, type NewEvent, type OpenedStore, type SqlBackedStore } from '@token-ledger/event-store';
import type { TopicNames } from '@token-ledger/messaging';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';

export const quietLogCreator: logCreator =
  () =>
  ({ namespace, level, log }) => {
    if (level <= logLevel.ERROR && process.env.KAFKA_DEBUG) console.error(`[${namespace}] ${log.message}`);
  };

export function runId(): string {
  return `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

export function testTopics(run: string): Required<TopicNames> {
  return {
    events: `tl-test.events.${run}`,
    revocations: `tl-test.revocations.${run}`,
    anomalies: `tl-test.anomalies.${run}`,
    eventsDeadLetter: `tl-test.events.${run}.dlq`,
  };
}

export function kafkaClient(brokers: string, clientId = 'tl-test'): Kafka {
  return new Kafka({
    clientId,
    brokers: brokers.split(',').map((b) => b.trim()),
    logLevel: logLevel.ERROR,
    logCreator: quietLogCreator,
    connectionTimeout: 3_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

export async function openTempStore(): Promise<{ store: OpenedStore & SqlBackedStore; dir: string; close(): Promise<void> }> {
  const dir = await freshEmbeddedDataDir('tl-msg-');
  const store = sqlBacked(await openEventStore({ store: 'embedded', dataDir: dir }), 'the messaging checkpoints');
  return {
    store,
    dir,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A family event with the header metadata the ledger writes (enough for toPublicEvent). */
export function familyEvent(type: string, familyId: string, subject: string, data: Record<string, unknown> = {}): NewEvent {
  return {
    eventId: randomUUID(),
    type,
    data,
    metadata: { familyId, subject, clientId: 'client-a', occurredAt: new Date().toISOString(), schemaVersion: 1 },
  };
}

export async function appendMany(store: EventStore, count: number, subjects = 5): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const fam = `fam_${i % 20}`;
    const ev = familyEvent('TokenRotated', fam, `user-${i % subjects}`, { n: i });
    ids.push(ev.eventId);
    await store.append(`family-${fam}`, [ev], { expectedRevision: 'any' });
  }
  return ids;
}

export interface Collected {
  key: string;
  /** JSON values parsed; a JWS (signed revocation records) decoded to its payload, unverified: see `raw`. */
  value: any;
  /** The value as sent (null: a tombstone). */
  raw: string | null;
  /** The JOSE protected header when the value is a JWS. */
  jose?: Record<string, unknown>;
  headers: Record<string, string>;
  partition: number;
}

/** Reads a topic from the beginning with a throwaway group; returns a live array and a stop function. */
export async function collect(kafka: Kafka, topic: string): Promise<{ messages: Collected[]; consumer: Consumer; stop(): Promise<void> }> {
  const messages: Collected[] = [];
  const consumer = kafka.consumer({ groupId: `tl-test.collect.${runId()}`, maxWaitTimeInMs: 50, sessionTimeout: 10_000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      const raw = message.value ? message.value.toString() : null;
      const jws = raw !== null && /^[\w-]+\.[\w-]*\.[\w-]+$/.test(raw) ? raw.split('.') : undefined;
      const value = raw === null ? null : jws ? JSON.parse(Buffer.from(jws[1], 'base64url').toString()) : JSON.parse(raw);
      const jose = jws ? JSON.parse(Buffer.from(jws[0], 'base64url').toString()) : undefined;
      messages.push({ key: message.key?.toString() ?? '', value, raw, jose, headers, partition });
    },
  });
  return { messages, consumer, stop: () => consumer.disconnect() };
}

export { eventually } from '../support/eventually';

export async function deleteTopics(admin: Admin, topics: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const mine = topics.filter((t) => existing.has(t));
  if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 10_000 }).catch(() => undefined);
}

/** A key ring and subject hash on a store's kv, as the ledger would sign its revocation feed with. */
export async function feedCrypto(store: OpenedStore): Promise<{ keyRing: KeyRing; secrets: LedgerSecrets; signer: KeyRing; subjectHash: (s: string) => string }> {
  const keyRing = await KeyRing.open(store.kv, { alg: 'ES256', issuer: 'http://tl-test', maxAccessTokenTtlSeconds: 3600, reloadIntervalMs: 0 });
  const secrets = await LedgerSecrets.open(store.kv);
  return { keyRing, secrets, signer: keyRing, subjectHash: (s) => secrets.subjectHash(s) };
}
