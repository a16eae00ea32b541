import { Kafka, logLevel, type Admin } from 'kafkajs';

import { DEFAULT_TOPICS } from '@token-ledger/messaging';

import { retrying } from './kafka';

/**
 * When each revocation reached the two topics, from the records' own timestamps: kafkajs stamps
 * every record with Date.now() when the producer builds the batch (CreateTime), so
 * - events.v1 TokenFamilyRevoked timestamp  = when the relay sent the event,
 * - revocations.v1 record timestamp        = when the propagator sent the revocation record.
 * Read after the measurement (not during it), with a throw-away consumer group that is deleted
 * afterwards. Same machine, same clock as the driver's performance.timeOrigin + now(); ms resolution.
 */
export interface TopicTimes {
  /** familyId → events.v1 TokenFamilyRevoked record timestamp (epoch ms). */
  relayed: Map<string, number>;
  /** familyId → revocations.v1 record timestamp (epoch ms). */
  propagated: Map<string, number>;
}

export async function readTopicTimes(brokers: string[], admin: Admin, groupId: string, timeoutMs: number): Promise<TopicTimes> {
  const topics = [DEFAULT_TOPICS.events, DEFAULT_TOPICS.revocations];
  // Read each partition up to its end as of now.
  const pending = new Map<string, number>();
  for (const topic of topics) {
    for (const o of await retrying(() => admin.fetchTopicOffsets(topic), 10_000)) if (Number(o.high) > Number(o.low)) pending.set(`${topic}/${o.partition}`, Number(o.high));
  }
  const times: TopicTimes = { relayed: new Map(), propagated: new Map() };
  if (pending.size === 0) return times;
  const kafka = new Kafka({ clientId: 'token-ledger-bench-propagation-stages', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3_000 });
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1_000, allowAutoTopicCreation: false });
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.value) continue;
          const ts = Number(m.timestamp);
          if (batch.topic === DEFAULT_TOPICS.events) {
            if (m.headers?.['event-type']?.toString() !== 'TokenFamilyRevoked') continue;
            const event = JSON.parse(m.value.toString('utf8')) as { familyId?: string };
            if (event.familyId && !times.relayed.has(event.familyId)) times.relayed.set(event.familyId, ts);
          } else {
            // A signed record (JWS): its payload, unverified (timing only); heartbeats have no familyId.
            const record = decodeJwsPayload(m.value.toString('utf8')) as { familyId?: string; jti?: string };
            if (record.familyId && !record.jti && !times.propagated.has(record.familyId)) times.propagated.set(record.familyId, ts);
          }
        }
        const key = `${batch.topic}/${batch.partition}`;
        const target = pending.get(key);
        if (target !== undefined && Number(batch.lastOffset()) + 1 >= target) {
          pending.delete(key);
          if (pending.size === 0) resolveDone();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return times;
}

/** The payload of a JWS compact serialization, not verified. */
function decodeJwsPayload(jws: string): unknown {
  const payload = jws.split('.')[1];
  return payload ? JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) : {};
}
