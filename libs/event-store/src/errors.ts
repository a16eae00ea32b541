/**
 * Errors the adapters raise besides the port's WrongExpectedRevisionError. Kept out of the port file
 * so the agreed interface stays untouched.
 */

/**
 * An appended event reused an eventId that is already stored (or appeared twice in one batch).
 * The whole append is rolled back. Not treated as an idempotent retry on purpose: a reused id
 * with a different stream or payload would otherwise be lost silently.
 */
export class DuplicateEventIdError extends Error {
  constructor(
    readonly streamId: string,
    readonly eventIds: string[],
  ) {
    super(`stream ${streamId}: event id already stored (one of ${eventIds.join(', ')})`);
    this.name = 'DuplicateEventIdError';
  }
}

/** The store (or the subscription) was used after close(). */
export class EventStoreClosedError extends Error {
  constructor() {
    super('event store is closed');
    this.name = 'EventStoreClosedError';
  }
}
