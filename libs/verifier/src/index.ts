/** @token-ledger/verifier: the resource-server SDK (access-token verification + live revocations). */
export * from './sse-client';
export * from './revocation-set';
export * from './feeds';
export * from './kafka-security';
export * from './verifier';
export * from './verifier.guard';
export * from './signed-records';
export * from './verifier-metrics';
export * from './dpop-proof';
export * from './dpop-replay-cache';
export * from './htu';
