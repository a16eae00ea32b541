/**
 * The EventStore port in memory, for unit tests: no backend, and the same contract suite as the
 * other adapters (memory-event-store.unit.spec.ts). Where the SQL stores behave in a way the port
 * leaves open, this one does the same: data, metadata and snapshots round-trip through JSON (as
 * jsonb does), event ids are unique across the store, appends wake subscriptions at once.
 *
 * The data lives in a MemoryDatabase that several store instances may share, as processes share a
 * database: a second instance, or a "reopened" one, sees the same events, snapshots and kv. Its rows
 * are exposed so tests can tamper with them the way someone with database access would.
 */
import {
  AppendOptions,
  AppendResult,
  ExpectedRevision,
  LoadedStream,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
  WrongExpectedRevisionError,
} from './event-store';
import type { OpenedStore, StoreCapabilities } from './capabilities';
import { DuplicateEventIdError, EventStoreClosedError } from './errors';
import { MemoryKeyValueStore } from './memory-key-value-store';
import { PollingSubscription, WakeHub } from './polling-subscription';

/** A stream's row: its revision and latest snapshot (as tl_streams holds them). */
export interface MemoryStream {
  revision: number;
  snapshot?: { state: unknown; revision: number };
}

export class MemoryDatabase {
  /** Stored events, appended in position order (tests may edit, delete or reorder them). */
  rows: RecordedEvent[] = [];
  readonly streams = new Map<string, MemoryStream>();
  readonly kv = new MemoryKeyValueStore();
  /** Every event id ever appended: a deleted row does not free its id, as in a unique index. */
  readonly eventIds = new Set<string>();
  /** Appends wake the subscriptions of every instance on this database (what NOTIFY does). */
  readonly wakeups = new WakeHub();
  nextPosition = 1;
}

export interface MemoryEventStoreOptions {
  /** Fallback poll period of subscriptions (default 250 ms); appends wake them anyway. */
  pollIntervalMs?: number;
}

export class MemoryEventStore implements OpenedStore {
  readonly kv: MemoryKeyValueStore;
  /** Nothing beyond the port: no SQL database, no thread location. */
  readonly capabilities: StoreCapabilities = {};
  private readonly subscriptions = new Set<PollingSubscription>();
  private closed = false;

  constructor(
    readonly database = new MemoryDatabase(),
    private readonly options: MemoryEventStoreOptions = {},
  ) {
    this.kv = database.kv;
  }

  /** The database's rows (see MemoryDatabase.rows); assignable, to delete some. */
  get rows(): RecordedEvent[] {
    return this.database.rows;
  }

  set rows(rows: RecordedEvent[]) {
    this.database.rows = rows;
  }

  get streams(): Map<string, MemoryStream> {
    return this.database.streams;
  }

  async append(streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    if (events.length === 0) throw new TypeError(`stream ${streamId}: append needs at least one event`);
    const expected = options.expectedRevision;
    const db = this.database;
    const stream = db.streams.get(streamId);
    if (!holds(expected, stream?.revision)) throw new WrongExpectedRevisionError(streamId, expected, stream?.revision);
    const ids = events.map((e) => e.eventId);
    if (new Set(ids).size < ids.length || ids.some((id) => db.eventIds.has(id))) throw new DuplicateEventIdError(streamId, ids);

    // Nothing below can fail, so the append is all or nothing.
    let revision = stream?.revision ?? -1;
    const recordedAt = new Date();
    const positions = events.map((e) => {
      const position = db.nextPosition++;
      db.eventIds.add(e.eventId);
      db.rows.push({
        eventId: e.eventId,
        type: e.type,
        data: asJson(e.data ?? null),
        metadata: asJson(e.metadata ?? {}),
        streamId,
        revision: ++revision,
        position,
        recordedAt,
      });
      return position;
    });
    // The port: a snapshot only makes sense when the caller knows the exact state it extends.
    const exact = typeof expected === 'number' || expected === 'no_stream';
    const snapshot = exact && options.snapshot !== undefined ? { state: asJson(options.snapshot), revision } : stream?.snapshot;
    db.streams.set(streamId, snapshot ? { revision, snapshot } : { revision });
    db.wakeups.wake();
    return { nextExpectedRevision: revision, position: positions[positions.length - 1], positions };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const from = options.fromRevision;
    const events =
      options.direction === 'backwards'
        ? this.streamRows(streamId, (r) => from === undefined || r.revision <= from).reverse()
        : this.streamRows(streamId, (r) => r.revision >= (from ?? 0));
    return copy(events.slice(0, limit(options.maxCount)));
  }

  async loadStream(streamId: string): Promise<LoadedStream> {
    this.assertOpen();
    const stream = this.database.streams.get(streamId);
    if (!stream) return { revision: undefined, events: [] };
    const after = stream.snapshot?.revision ?? -1;
    const events = copy(this.streamRows(streamId, (r) => r.revision > after));
    return stream.snapshot ? { revision: stream.revision, snapshot: asJson(stream.snapshot), events } : { revision: stream.revision, events };
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = options.after ?? 0;
    // Sorted on each read (after filtering): a test may have swapped the positions of rows.
    const events = this.database.rows.filter((r) => r.position > after).sort((a, b) => a.position - b.position);
    return copy(events.slice(0, limit(options.maxCount)));
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.database.rows.reduce((max, r) => Math.max(max, r.position), 0);
  }

  subscribeToAll(
    handler: (event: RecordedEvent) => Promise<void>,
    options: SubscribeOptions & { onError?: (error: unknown) => void } = {},
  ): Subscription {
    this.assertOpen();
    const subscription = new PollingSubscription(
      this,
      this.database.wakeups,
      handler,
      { ...options, pollIntervalMs: this.options.pollIntervalMs },
      (s) => this.subscriptions.delete(s),
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
  }

  /** The stream's rows that pass `keep`, in revision order. */
  private streamRows(streamId: string, keep: (row: RecordedEvent) => boolean): RecordedEvent[] {
    return this.database.rows.filter((r) => r.streamId === streamId && keep(r)).sort((a, b) => a.revision - b.revision);
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }
}

function holds(expected: ExpectedRevision, actual: number | undefined): boolean {
  if (typeof expected === 'number') {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new RangeError(`expected revision must be an integer >= 0 or no_stream/stream_exists/any, got ${expected}`);
    }
    return actual === expected;
  }
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === undefined;
    case 'stream_exists':
      return actual !== undefined;
    default:
      throw new RangeError(`unknown expected revision ${String(expected)}`);
  }
}

/** What a jsonb column gives back: undefined members dropped, dates as strings, nothing shared. */
function asJson<T>(value: T): T {
  const text = JSON.stringify(value);
  return (text === undefined ? null : JSON.parse(text)) as T;
}

/**
 * Reads hand out copies, as a database does: a caller's edits never reach the stored rows. (Not
 * structuredClone: under jest its Dates come from another realm and fail `instanceof Date`.)
 */
function copy(events: RecordedEvent[]): RecordedEvent[] {
  return events.map((e) => ({ ...e, data: asJson(e.data), metadata: asJson(e.metadata), recordedAt: new Date(e.recordedAt.getTime()) }));
}

function limit(maxCount: number | undefined): number | undefined {
  return maxCount === undefined ? undefined : Math.max(0, Math.floor(maxCount));
}
