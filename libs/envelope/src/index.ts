/**
 * @token-ledger/envelope: how ledger events are written to and read from the event store — stream
 * names, the stored envelope (header in metadata) and its public shape, and the hash chain that
 * links every event to the previous one in its stream. Used by the command side, projections,
 * messaging, the anomaly engine and forensics alike.
 */
export * from './streams';
export * from './new-event';
export * from './public-event';
export * from './hash-chain';
export * from './append-chained';
export * from './aggregates';
export * from './trace-context';
