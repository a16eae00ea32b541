"use strict";
/**
 * Event and command types of the token ledger. Names and payloads are part of the contract
 * (SPEC §2): they reach the store, Kafka and the audit API as they are written here.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.SCHEMA_VERSION = void 0;
exports.SCHEMA_VERSION = 1;
