/** @token-ledger/forensics: timelines, state at any instant, export and tamper evidence, over the EventStore port. */
export * from './hash-chain';
export * from './envelope';
export * from './family-state-at';
export * from './read';
export * from './timeline';
export * from './verify';
export * from './append-chained';
export * from './ndjson';
export * from './instant';
