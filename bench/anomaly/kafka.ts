import type { Admin } from 'kafkajs';

import { DEFAULT_TOPICS } from '@token-ledger/messaging';

import { retrying } from '../propagation/kafka';

/**
 * The consumer groups `token-ledger serve` joins on events.v1 with KAFKA_BROKERS (the group prefix
 * `token-ledger` is not configurable through the environment): the anomaly engine's and the
 * revocation propagator's.
 */
export const SERVE_GROUPS = ['token-ledger-anomaly', 'token-ledger-revocations'] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Makes the server's consumer groups start at the current end of events.v1, so the measured engine
 * reads only what the fresh database's relay publishes — not the retained history of earlier runs
 * (a group without offsets starts from the beginning; one with old offsets would resume there).
 * Unlike bench:propagation this deletes nothing: topics and their records stay as they are.
 * Refuses when a group still has live members after 15 s (another token-ledger server uses the
 * broker and would share partitions with the measured one).
 */
export async function startGroupsAtEnd(admin: Admin, log: (line: string) => void): Promise<void> {
  const topic = DEFAULT_TOPICS.events;
  const topics = new Set(await admin.listTopics());
  for (const groupId of SERVE_GROUPS) {
    let group = (await admin.describeGroups([groupId])).groups[0];
    const until = Date.now() + 15_000;
    if (group && group.members.length > 0) log(`consumer group ${groupId} has ${group.members.length} member(s); waiting up to 15 s for them to leave`);
    while (group && group.members.length > 0 && Date.now() < until) {
      await sleep(500);
      group = (await admin.describeGroups([groupId])).groups[0];
    }
    if (group && group.members.length > 0) {
      throw new Error(
        `consumer group ${groupId} has ${group.members.length} live member(s): another token-ledger server with KAFKA_BROKERS ` +
          'uses this broker and would share the partitions of events.v1 with the measured server. Stop it first.',
      );
    }
    if (!topics.has(topic)) continue; // the server creates it, empty: a new group reads it from the start
    // The end as numbers: admin.resetOffsets commits -1 ("latest"), which a consumer takes for "no
    // offset" and, with fromBeginning (the server's default), reads the whole topic from the start.
    const ends = await admin.fetchTopicOffsets(topic);
    await retrying(() => admin.setOffsets({ groupId, topic, partitions: ends.map((o) => ({ partition: o.partition, offset: o.high })) }), 20_000);
    const committed = (await admin.fetchOffsets({ groupId, topics: [topic] })).flatMap((t) => t.partitions);
    const behind = ends.reduce((n, o) => n + Number(o.high) - Number(committed.find((p) => p.partition === o.partition)?.offset ?? 0), 0);
    if (behind !== 0) throw new Error(`consumer group ${groupId}: could not move its offsets to the end of ${topic} (${behind} records short)`);
    const records = ends.reduce((n, o) => n + Number(o.high), 0);
    log(`consumer group ${groupId}: offsets moved to the end of ${topic} (${records.toLocaleString('en-US')} earlier records skipped)`);
  }
}
