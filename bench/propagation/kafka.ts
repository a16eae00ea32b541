import { Kafka, logLevel, type Admin } from 'kafkajs';

import { DEFAULT_TOPICS, ensureTopics } from '@token-ledger/messaging';

/** The consumer group RevocationsService's propagator uses (not configurable through the env). */
export const PROPAGATOR_GROUP = 'token-ledger-revocations';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class BrokerUnavailableError extends Error {}

/** Connects an admin client, or explains how to start the broker. */
export async function connectAdmin(brokers: string[]): Promise<Admin> {
  const kafka = new Kafka({
    clientId: 'token-ledger-bench-propagation',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 10_000,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
  });
  const admin = kafka.admin();
  try {
    await withTimeout(
      (async () => {
        await admin.connect();
        await admin.describeCluster();
      })(),
      8_000,
      'no answer',
    );
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    throw new BrokerUnavailableError(
      `no Kafka broker answers at ${brokers.join(',')} (${(err as Error).message}). ` +
        'Start the local one with `npm run kafka:up` (127.0.0.1:9092), or pass --brokers / set KAFKA_BROKERS.',
    );
  }
  return admin;
}

/**
 * token-ledger always uses the SPEC's topic names and the `token-ledger-revocations` group (there is
 * no env setting for either), so a clean run needs them empty: records left by an earlier run would
 * be re-read by the new verifier and the group's old offsets would make the propagator skip or
 * replay. This deletes the group and the three topics and creates the topics again (same definitions
 * as ensureTopics in the server). Refuses when the group has live members: another token-ledger
 * server is using this broker.
 */
export async function resetLedgerTopics(admin: Admin, log: (line: string) => void): Promise<void> {
  // A server killed without leaving the group (SIGKILL, e.g. an interrupted earlier run) stays a
  // member until its session times out (10 s): wait that long before calling the group in use.
  let group = (await admin.describeGroups([PROPAGATOR_GROUP])).groups[0];
  const until = Date.now() + 15_000;
  if (group && group.members.length > 0) log(`consumer group ${PROPAGATOR_GROUP} has ${group.members.length} member(s); waiting up to 15 s for them to leave`);
  while (group && group.members.length > 0 && Date.now() < until) {
    await sleep(500);
    group = (await admin.describeGroups([PROPAGATOR_GROUP])).groups[0];
  }
  if (group && group.members.length > 0) {
    throw new Error(
      `consumer group ${PROPAGATOR_GROUP} has ${group.members.length} live member(s): another token-ledger server with ` +
        'KAFKA_BROKERS uses this broker. Stop it first (or use a fresh broker: npm run kafka:down && npm run kafka:up).',
    );
  }
  if (group && group.state !== 'Dead') {
    await admin.deleteGroups([PROPAGATOR_GROUP]).catch((err: Error) => {
      throw new Error(`could not delete consumer group ${PROPAGATOR_GROUP}: ${err.message}`);
    });
    log(`deleted consumer group ${PROPAGATOR_GROUP}`);
  }

  const names = Object.values(DEFAULT_TOPICS) as string[];
  const existing = new Set(await admin.listTopics());
  const present = names.filter((t) => existing.has(t));
  if (present.length > 0) {
    await admin.deleteTopics({ topics: present, timeout: 15_000 });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const now = new Set(await admin.listTopics());
      if (!present.some((t) => now.has(t))) break;
      if (Date.now() > deadline) throw new Error(`topics ${present.join(', ')} still listed 30 s after deleting them`);
      await sleep(200);
    }
    log(`deleted topics ${present.join(', ')}`);
  }
  // A just-deleted topic can still be "marked for deletion" for a moment: retry the creation.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await ensureTopics(admin, { topics: DEFAULT_TOPICS });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`could not recreate the topics: ${(err as Error).message}`);
      await sleep(500);
    }
  }
  for (const topic of names) {
    // Right after the creation the partition leaders may not be known yet (NOT_LEADER…): retry.
    const offsets = await retrying(() => admin.fetchTopicOffsets(topic), 15_000);
    if (offsets.some((o) => Number(o.high) !== 0)) throw new Error(`topic ${topic} is not empty after recreating it`);
  }
  log(`created empty topics ${names.join(', ')}`);
}

/**
 * Waits until the propagator's group has committed the end of events.v1 and the end has not moved
 * for `quietMs`: the relay and the propagator have nothing queued (issue events included), so the
 * measured revocations do not wait behind set-up traffic. Returns false after `timeoutMs`.
 */
export async function waitForQuietPipeline(admin: Admin, quietMs: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let lastHigh = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    let high: number;
    let committed: number;
    try {
      high = (await admin.fetchTopicOffsets(DEFAULT_TOPICS.events)).reduce((n, o) => n + Number(o.high), 0);
      committed = (await admin.fetchOffsets({ groupId: PROPAGATOR_GROUP, topics: [DEFAULT_TOPICS.events] }))
        .flatMap((t) => t.partitions)
        .reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    } catch {
      await sleep(250); // a transient metadata error: ask again
      continue;
    }
    if (high !== lastHigh) {
      lastHigh = high;
      stableSince = Date.now();
    } else if (committed >= high && Date.now() - stableSince >= quietMs) {
      return true;
    }
    await sleep(100);
  }
  return false;
}

export async function retrying<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} (after ${ms / 1000} s)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
