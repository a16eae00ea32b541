"use strict";
/**
 * The event-store port. Every adapter (embedded PGlite, PostgreSQL, EventStoreDB) implements exactly
 * this and passes the one contract suite in `event-store.contract.ts`.
 *
 * Conventions (modelled on EventStoreDB so that adapter stays thin):
 * - A stream's first event has revision 0; a stream's revision is the revision of its last event.
 * - Global positions are positive integers, strictly increasing in commit order across all streams
 *   (gaps allowed). `readAll({ after })` returns events with position > after, so a checkpoint is
 *   simply the last position a consumer processed (0 = from the beginning).
 * - Numbers, not bigints: 2^53 events is more than any deployment will see, and positions go into JSON.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.WrongExpectedRevisionError = void 0;
class WrongExpectedRevisionError extends Error {
    streamId;
    expected;
    actual;
    constructor(streamId, expected, actual) {
        super(`stream ${streamId}: expected revision ${String(expected)}, actual ${actual === undefined ? 'no stream' : actual}`);
        this.streamId = streamId;
        this.expected = expected;
        this.actual = actual;
        this.name = 'WrongExpectedRevisionError';
    }
}
exports.WrongExpectedRevisionError = WrongExpectedRevisionError;
