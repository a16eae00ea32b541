/** @token-ledger/anomaly: anomaly rules as pure functions over per-key state, the engine, geo lookup. */
export * from './rules-config';
export * from './detection';
export * from './observation';
export * from './state';
export * from './engine';
export * from './sql-state-store';
export * from './record-detection';
export * from './backtest';
export * from './user-agent';
export * from './geo';
