/** @token-ledger/messaging: the Kafka relay, topics, event sources (Kafka / in-process) and revocation propagation. */
export * from './topics';
export * from './lru-set';
export * from './checkpoints';
export * from './kafka-relay';
export * from './event-source';
export * from './revocations';
export * from './bootstrap';
export * from './revocation-record';
export * from './feed-heartbeat';
export * from './revocation-tombstones';
export * from './event-trace';
