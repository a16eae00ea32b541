"use strict";
/**
 * Errors the adapters raise besides the port's WrongExpectedRevisionError. Kept out of the port file
 * so the agreed interface stays untouched.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.EventStoreClosedError = exports.DuplicateEventIdError = void 0;
/**
 * An appended event reused an eventId that is already stored (or appeared twice in one batch).
 * The whole append is rolled back. Not treated as an idempotent retry on purpose: a reused id
 * with a different stream or payload would otherwise be lost silently.
 */
class DuplicateEventIdError extends Error {
    streamId;
    eventIds;
    constructor(streamId, eventIds) {
        super(`stream ${streamId}: event id already stored (one of ${eventIds.join(', ')})`);
        this.streamId = streamId;
        this.eventIds = eventIds;
        this.name = 'DuplicateEventIdError';
    }
}
exports.DuplicateEventIdError = DuplicateEventIdError;
/** The store (or the subscription) was used after close(). */
class EventStoreClosedError extends Error {
    constructor() {
        super('event store is closed');
        this.name = 'EventStoreClosedError';
    }
}
exports.EventStoreClosedError = EventStoreClosedError;
