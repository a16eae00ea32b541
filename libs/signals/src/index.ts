/**
 * @token-ledger/signals: the OpenID Shared Signals transmitter's data plane — SETs (RFC 8417) mapped
 * from ledger events, the durable outbox fed by the event store, push delivery (RFC 8935) and the
 * outbox queries poll delivery (RFC 8936) serves. A reader of the write path, like libs/messaging.
 */
export * from './set-claims';
export * from './set-mapping';
export * from './schema';
export * from './backoff';
export * from './outbox-consumer';
export * from './outbox';
export * from './push-delivery';
