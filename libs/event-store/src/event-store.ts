/**
 * The event-store port. Every adapter (embedded PGlite, PostgreSQL, EventStoreDB) implements exactly
 * this and passes the one contract suite in `event-store.contract.ts`. What a store can do beyond it
 * (SQL for the read models, events in SQL, a location a thread can reopen) it describes in
 * `capabilities` (capabilities.ts).
 *
 * Conventions (modelled on EventStoreDB so that adapter stays thin):
 * - A stream's first event has revision 0; a stream's revision is the revision of its last event.
 * - Global positions are positive integers, strictly increasing in commit order across all streams
 *   (gaps allowed). `readAll({ after })` returns events with position > after, so a checkpoint is
 *   simply the last position a consumer processed (0 = from the beginning).
 * - Numbers, not bigints: 2^53 events is more than any deployment will see, and positions go into JSON.
 */

export type ExpectedRevision = number | 'no_stream' | 'stream_exists' | 'any';

export interface NewEvent {
  eventId: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
}

export interface RecordedEvent extends NewEvent {
  streamId: string;
  revision: number;
  position: number;
  /** When the store committed it (the store's clock, not the domain's occurredAt). */
  recordedAt: Date;
}

export interface AppendOptions {
  expectedRevision: ExpectedRevision;
  /**
   * State after these events, stored atomically with them (or as close to it as the store allows) so
   * the stream loads in O(1) reads. Only meaningful with an exact expectedRevision (number or
   * 'no_stream'): with 'any' the caller cannot know the state it is extending, so adapters ignore it.
   */
  snapshot?: unknown;
}

export interface AppendResult {
  /** Revision of the last appended event. */
  nextExpectedRevision: number;
  /** Global position of the last appended event. */
  position: number;
  /** Global position of each appended event, in order. */
  positions: number[];
}

export interface ReadStreamOptions {
  direction?: 'forwards' | 'backwards';
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  fromRevision?: number;
  maxCount?: number;
}

export interface ReadAllOptions {
  /** Exclusive lower bound on position; default 0 (from the beginning). */
  after?: number;
  maxCount?: number;
}

export interface LoadedStream {
  /** Revision of the stream's last event; undefined when the stream does not exist. */
  revision: number | undefined;
  /** Latest snapshot, if one was stored, with the revision it reflects. */
  snapshot?: { state: unknown; revision: number };
  /** Events after the snapshot (all events when there is none), in revision order. */
  events: RecordedEvent[];
}

export interface SubscribeOptions {
  after?: number;
  /** Max events fetched per catch-up page. */
  batchSize?: number;
  /**
   * Wake this subscription at once after an in-process append, even where the store gathers the
   * others' wake-ups (the embedded store's gatherWakeupsMs) or delays them (wakeDelayMs): for a
   * consumer whose latency is the product (the SSF outbox). A function is asked at each append: the
   * subscription is prompt only while it answers true (the SSF outbox while some stream exists, so an
   * idle transmitter costs the refresh path nothing); otherwise it is woken like the others. A hint;
   * adapters without gathering or delays ignore it.
   */
  prompt?: boolean | (() => boolean);
  /**
   * Deliver only events of these types (a consumer that needs a few kinds of event, e.g. the
   * revocation feed); the SQL stores filter in the database, so the others are neither sent nor
   * parsed. The subscription still moves past the others: `onPassed` hears each position it
   * reached without delivering (after the events before it were handled), e.g. for a checkpoint.
   */
  types?: readonly string[];
  onPassed?: (position: number) => void;
}

export interface Subscription {
  /** Resolves once the handler has seen every event that existed when subscribe() was called. */
  readonly caughtUp: Promise<void>;
  /** Last position the handler finished. */
  readonly position: number;
  /** Stops delivery; resolves when the handler is no longer running. */
  close(): Promise<void>;
}

export interface EventStore {
  /** Throws WrongExpectedRevisionError when expectedRevision does not hold; appends nothing then. */
  append(streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult>;
  /** [] when the stream does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Snapshot + the events after it, in as few round trips as the store allows (one for SQL). */
  loadStream(streamId: string): Promise<LoadedStream>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Position of the last committed event (0 when empty). */
  headPosition(): Promise<number>;
  /**
   * Catch-up then live: delivers every event with position > after, in order, one at a time
   * (the handler's promise is awaited before the next), then keeps delivering new ones.
   * A handler error stops the subscription and is reported through onError.
   */
  subscribeToAll(
    handler: (event: RecordedEvent) => Promise<void>,
    options?: SubscribeOptions & { onError?: (error: unknown) => void },
  ): Subscription;
  /**
   * A reader waits for an in-process append to reach a subscriber (a read model asked for its
   * caller's own write): a store that gathers its wake-ups (the embedded store's gatherWakeupsMs)
   * sends the pending one now instead of when its timer fires. Absent where wake-ups are not gathered.
   */
  wakeSubscriptionsNow?(): void;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class WrongExpectedRevisionError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: number | undefined,
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${actual === undefined ? 'no stream' : actual}`);
    this.name = 'WrongExpectedRevisionError';
  }
}

/**
 * Small key/value table for server-side secrets and settings (signing keys, token-hash key) that
 * live beside the events in the same database. Values are JSON.
 */
export interface KeyValueStore {
  get<T = unknown>(key: string): Promise<T | undefined>;
  /** Inserts unless present; returns whichever value is stored afterwards (the winner of a race). */
  putIfAbsent<T>(key: string, value: T): Promise<T>;
  put<T>(key: string, value: T): Promise<void>;
}
