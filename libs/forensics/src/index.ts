/** @token-ledger/forensics: timelines, state at any instant, export and tamper evidence, over the EventStore port. */
export * from './public-event-json';
export * from './family-state-at';
export * from './read';
export * from './timeline';
export * from './verify';
export * from './ndjson';
export * from './instant';
