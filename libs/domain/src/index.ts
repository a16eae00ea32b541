/** @token-ledger/domain: pure domain code (no I/O, no clock, no randomness). */
export * from './events';
export * from './commands';
export * from './family-state';
export * from './token-secrets';
export * from './errors';
export * from './limits';
export * from './crc32';
export * from './constant-time';
export * from './refresh-token';
export * from './scope';
export * from './family-decider';
export * from './rejection-tally';
export * from './subject-decider';
export * from './client-policy';
export * from './api-key';
export { toIso, fromIso } from './time';
export * from './family-view';
export * from './canonical-json';
