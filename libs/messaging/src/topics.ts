import type { Admin, ITopicConfig } from 'kafkajs';

/** Topic names of SPEC §4. Tests pass their own (unique per run) through `TopicNames`. */
export const DEFAULT_TOPICS = {
  events: 'token-ledger.events.v1',
  revocations: 'token-ledger.revocations.v1',
  anomalies: 'token-ledger.anomalies.v1',
  eventsDeadLetter: 'token-ledger.events.v1.dlq',
} as const;

export interface TopicNames {
  events: string;
  revocations: string;
  anomalies: string;
  /** Records on `events` that are not public events (KafkaEventSource); default `<events>.dlq`. */
  eventsDeadLetter?: string;
}

/** The dead-letter topic of an events topic when none is named. */
export function deadLetterTopicOf(topic: string): string {
  return `${topic}.dlq`;
}

/** Headers of a dead-lettered record: where it was read, why it was refused, by which group. */
export const HEADER_DLQ_TOPIC = 'dlq-source-topic';
export const HEADER_DLQ_PARTITION = 'dlq-source-partition';
export const HEADER_DLQ_OFFSET = 'dlq-source-offset';
export const HEADER_DLQ_REASON = 'dlq-reason';
export const HEADER_DLQ_GROUP = 'dlq-consumer-group';

export const HEADER_EVENT_TYPE = 'event-type';
export const HEADER_SCHEMA_VERSION = 'schema-version';
export const HEADER_EVENT_ID = 'event-id';

export interface EnsureTopicsOptions {
  topics?: TopicNames;
  /** Default 12 for events and revocations (room for 12 consumers in a group), 3 for anomalies. */
  partitions?: number;
  replicationFactor?: number;
}

/** The topic definitions (partitions and configs) ensureTopics creates. */
export function topicConfigs(opts: EnsureTopicsOptions = {}): ITopicConfig[] {
  const t = opts.topics ?? DEFAULT_TOPICS;
  const partitions = opts.partitions ?? 12;
  const replicationFactor = opts.replicationFactor ?? 1;
  return [
    {
      topic: t.events,
      numPartitions: partitions,
      replicationFactor,
      configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: String(7 * 24 * 3600 * 1000) }],
    },
    {
      // Compacted: the latest record per key is kept forever, so a verifier can rebuild the live
      // revocation set by reading from the beginning (SPEC §4).
      topic: t.revocations,
      numPartitions: partitions,
      replicationFactor,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.compaction.lag.ms', value: '0' },
        { name: 'segment.ms', value: String(3600 * 1000) },
      ],
    },
    {
      topic: t.anomalies,
      numPartitions: Math.min(partitions, 3),
      replicationFactor,
      configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: String(30 * 24 * 3600 * 1000) }],
    },
    {
      // Rare and kept long enough for someone to look at it (30 days).
      topic: t.eventsDeadLetter ?? deadLetterTopicOf(t.events),
      numPartitions: 1,
      replicationFactor,
      configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: String(30 * 24 * 3600 * 1000) }],
    },
  ];
}

/**
 * Creates the topics when missing; existing topics are left as they are (idempotent, and safe
 * when several nodes start at once: "already exists" counts as success).
 */
export async function ensureTopics(admin: Admin, opts: EnsureTopicsOptions = {}): Promise<void> {
  const wanted = topicConfigs(opts);
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing, waitForLeaders: true, timeout: 10_000 });
  } catch (error) {
    // A concurrent creator won the race: fine as long as every topic exists now.
    const now = new Set(await admin.listTopics());
    if (!missing.every((t) => now.has(t.topic))) throw error;
  }
  // createTopics resolves before every broker knows the leaders; wait for metadata to settle.
  await admin.fetchTopicMetadata({ topics: missing.map((t) => t.topic) });
}
