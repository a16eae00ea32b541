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

/**
 * Node socket errors of a store connection that cannot be made or was lost: the database host is
 * down, unreachable or not resolvable right now. (Node's AggregateError for a host with several
 * addresses carries the first one's code.)
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATEs of a server that is going away or not taking connections: class 08 (connection
 * exception), 57P01 admin_shutdown (also pg_terminate_backend), 57P02 crash_shutdown,
 * 57P03 cannot_connect_now (starting up, shutting down, in recovery), 53300 too_many_connections.
 */
const SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;

/**
 * What the drivers raise, without a code, when a connection is gone, the client was closed, or no
 * connection could be had in time (pg's Client and Pool, PGlite). The two timeouts are the pool's
 * bound (PostgresEventStoreOptions.acquireTimeoutMs): the first when every pooled connection stayed
 * busy, the second when a new connection was not made in time.
 */
const UNAVAILABLE_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
  'PGlite is closed',
  'PGlite is closing',
]);

/** @eventstore/db-client error types of a node that cannot answer now (gRPC UNAVAILABLE, deadline, a leader change). */
const ESDB_TYPES = new Set(['unavailable', 'deadline-exceeded', 'not-leader']);

/**
 * True when `error` says the store cannot be reached right now — closed, connection refused or lost,
 * server restarting or out of connections, no pooled connection free in time — as opposed to a fault of the request or of the code.
 * Callers answer such a failure with "try again later", never as a bug. Any store adapter's errors
 * (and those of the SQL client the read models share with it) may be passed.
 */
export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof EventStoreClosedError) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { code, type, message } = error as { code?: unknown; type?: unknown; message?: unknown };
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || SQLSTATE.test(code))) return true;
  if (typeof type === 'string' && ESDB_TYPES.has(type)) return true;
  // No instanceof Error: socket errors and PGlite's come from the host realm under jest.
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.has(message);
}
