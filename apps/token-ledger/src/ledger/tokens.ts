/** Nest injection tokens for the things that are not classes. */
export const LEDGER_CONFIG = Symbol('LEDGER_CONFIG');
export const EVENT_STORE = Symbol('EVENT_STORE');
export const KEY_VALUE_STORE = Symbol('KEY_VALUE_STORE');
export const FAMILY_REPOSITORY = Symbol('FAMILY_REPOSITORY');
export const SUBJECT_REPOSITORY = Symbol('SUBJECT_REPOSITORY');
export const CLIENT_REPOSITORY = Symbol('CLIENT_REPOSITORY');
export const API_KEY_REPOSITORY = Symbol('API_KEY_REPOSITORY');
export const ANOMALY_REPOSITORY = Symbol('ANOMALY_REPOSITORY');
export const SSF_STREAM_REPOSITORY = Symbol('SSF_STREAM_REPOSITORY');
export const READ_MODELS = Symbol('READ_MODELS');
/** The hash-chain MAC key (Buffer) derived from LEDGER_KEK, or null without one. */
export const CHAIN_MAC_KEY = Symbol('CHAIN_MAC_KEY');

/** The read-model side of the runtime, injected into query handlers and the sweeper. */
export type ReadModels = import('../runtime').LedgerRuntime['readModels'];
