/**
 * EventStoreDB adapter on `@eventstore/db-client` (gRPC). Thin by design: the contract suite in
 * event-store.contract.ts is its spec, and docs/stores.md says how it maps the port onto ESDB.
 *
 * - One ESDB stream per port stream (`<namespace><streamId>`); revisions are ESDB's, expected
 *   revisions map one to one (number → bigint, no_stream, stream_exists, any).
 * - Global position = the event's $all commit position (a byte offset in ESDB's log: positive and
 *   strictly increasing in commit order, with gaps). bigint → number is exact up to 2^53 (8 PiB of
 *   log); beyond that the adapter throws rather than round.
 * - $all as the port sees it holds only this store's streams: system streams/events (`$…`), the
 *   side streams below and other namespaces are filtered out (server-side for subscriptions; the
 *   client's readAll cannot carry a filter, so reads filter client-side and page on).
 * - Snapshots: the last event of the side stream `<namespace>snapshot-<streamId>` ($maxCount 1),
 *   written after a successful exact append; loadStream = 2 reads (snapshot, then the events after it).
 * - kv: SqlKeyValueStore on `checkpointSql` when given (read-model database), else one side stream
 *   per key (`<namespace>kv-<key>`; putIfAbsent = append with no_stream).
 */
import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type JSONType,
  type Position,
  type ReadPosition,
  type ReadRevision,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  AppendOptions,
  AppendResult,
  ExpectedRevision,
  KeyValueStore,
  LoadedStream,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
  WrongExpectedRevisionError,
} from './event-store';
import { DuplicateEventIdError, EventStoreClosedError } from './errors';
import { EventStoreDbSubscription, type EventStoreDbSubscriptionSource, type LiveFeed } from './eventstoredb-subscription';
import type { OpenedStore, StoreCapabilities } from './capabilities';
import type { SqlClient } from './sql-client';
import { SqlKeyValueStore } from './sql-key-value-store';

export interface EventStoreDbEventStoreOptions {
  /** Connection string, e.g. `esdb://localhost:2113?tls=false` (insecure dev server). */
  url: string;
  /**
   * SQL database (the read models' PostgreSQL) for `kv` (table tl_kv, created if missing); also
   * exposed as `capabilities.sql` so read models and their checkpoints live beside it. Not closed by close()
   * unless `onClose` does it. Without it, kv lives in ESDB side streams.
   */
  checkpointSql?: SqlClient;
  /**
   * Prefix of every stream this store writes, e.g. `t1a2b.` (default '': the whole database).
   * readAll, headPosition and subscriptions see only this namespace, so tests (or tenants) can
   * share one server. Letters, digits and `_ . : -` only.
   */
  namespace?: string;
  /** Runs after the store has closed (e.g. to close whatever opened `checkpointSql`). */
  onClose?: () => Promise<void>;
}

/** The part of the client this adapter uses (so a caller may bring a client with its own settings). */
export type EventStoreDbClientLike = Pick<
  EventStoreDBClient,
  'appendToStream' | 'readStream' | 'readAll' | 'subscribeToAll' | 'setStreamMetadata' | 'dispose'
>;

const SNAPSHOT_PREFIX = 'snapshot-';
const KV_PREFIX = 'kv-';
const SNAPSHOT_TYPE = 'Snapshot';
const KV_TYPE = 'KeyValueSet';
const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);
/** Largest page of a backwards $all scan (headPosition, resolveStart). */
const SCAN_PAGE = 256;
const MAX_READ_PAGE = 1000;
const PING_TIMEOUT_MS = 10_000;

/** Structural view of a record as the client returns it (its own type is a deep conditional). */
interface EsdbRecord {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  data: unknown;
  metadata: unknown;
  created: Date;
  position?: Position;
}

export class EventStoreDbEventStore implements OpenedStore {
  readonly kv: KeyValueStore;
  /** The read models' database when one was given; the events are not in SQL, and no thread can reopen the store. */
  readonly capabilities: StoreCapabilities;
  private closed = false;
  private readonly names: StreamNames;
  private readonly subscriptions = new Set<EventStoreDbSubscription>();
  private readonly subscriptionSource: EventStoreDbSubscriptionSource;

  /** Connects, checks the server answers, and prepares `kv` (tl_kv when `checkpointSql` is given). */
  static async open(options: EventStoreDbEventStoreOptions): Promise<EventStoreDbEventStore> {
    const client = EventStoreDBClient.connectionString(options.url);
    try {
      return await EventStoreDbEventStore.withClient(client, options);
    } catch (error) {
      await client.dispose().catch(() => undefined);
      throw error;
    }
  }

  /** As open(), on a client the caller built (TLS, credentials, node preference…); close() disposes it. */
  static async withClient(
    client: EventStoreDbClientLike,
    options: Omit<EventStoreDbEventStoreOptions, 'url'> = {},
  ): Promise<EventStoreDbEventStore> {
    const store = new EventStoreDbEventStore(client, options);
    await store.ping();
    if (options.checkpointSql) await ensureKvTable(options.checkpointSql);
    return store;
  }

  private constructor(
    private readonly client: EventStoreDbClientLike,
    private readonly options: Omit<EventStoreDbEventStoreOptions, 'url'>,
  ) {
    this.names = new StreamNames(options.namespace ?? '');
    this.capabilities = { sql: options.checkpointSql };
    this.kv = options.checkpointSql
      ? new SqlKeyValueStore(options.checkpointSql)
      : new EventStoreDbKeyValueStore(client, this.names, (stream) => this.limitToLatest(stream));
    this.subscriptionSource = {
      headPosition: () => this.headPosition(),
      resolveStart: (after) => this.resolveStart(after),
      openLive: (start) => this.openLive(start),
    };
  }

  async append(streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    const stream = this.names.stream(streamId);
    if (!Array.isArray(events) || events.length === 0) throw new TypeError(`stream ${streamId}: nothing to append`);
    const ids = events.map((e) => e.eventId);
    const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (repeated.length > 0) throw new DuplicateEventIdError(streamId, repeated);
    const expected = options.expectedRevision;

    let next: bigint;
    try {
      const result = await this.client.appendToStream(stream, events.map(toEventData), { expectedRevision: toExpected(expected) });
      next = result.nextExpectedRevision;
    } catch (error) {
      if (isErrorType(error, 'wrong-expected-version')) {
        const actual = (error as { actualVersion?: unknown }).actualVersion;
        throw new WrongExpectedRevisionError(streamId, expected, typeof actual === 'bigint' ? Number(actual) : undefined);
      }
      throw error;
    }

    const last = Number(next);
    const first = last - events.length + 1;
    // The port: a snapshot only makes sense when the caller knows the exact state it extends.
    const exact = typeof expected === 'number' || expected === 'no_stream';
    const [positions] = await Promise.all([
      this.positionsOf(streamId, first, ids),
      exact && options.snapshot !== undefined ? this.writeSnapshot(streamId, last, options.snapshot) : undefined,
    ]);
    return { nextExpectedRevision: last, position: positions[positions.length - 1], positions };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const stream = this.names.stream(streamId);
    const backwards = options.direction === 'backwards';
    const maxCount = options.maxCount === undefined ? undefined : Math.floor(options.maxCount);
    if (maxCount !== undefined && maxCount <= 0) return [];
    const fromRevision: ReadRevision =
      options.fromRevision === undefined ? (backwards ? END : START) : BigInt(checkRevision(options.fromRevision, 'fromRevision'));
    const records = await this.readStreamRecords(stream, { direction: backwards ? BACKWARDS : FORWARDS, fromRevision, maxCount });
    return records.map((r) => this.toRecorded(r, streamId));
  }

  /** Two reads: the latest snapshot, then the events after the revision it reflects. */
  async loadStream(streamId: string): Promise<LoadedStream> {
    this.assertOpen();
    const [snapshotRecord] = await this.readStreamRecords(this.names.snapshot(streamId), {
      direction: BACKWARDS,
      fromRevision: END,
      maxCount: 1,
    });
    const snapshot = snapshotRecord ? parseSnapshot(snapshotRecord.data) : undefined;
    const events = await this.readStream(streamId, snapshot ? { fromRevision: snapshot.revision + 1 } : {});
    const revision = events.length > 0 ? events[events.length - 1].revision : snapshot?.revision;
    return snapshot ? { revision, snapshot, events } : { revision, events };
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = Math.max(0, options.after ?? 0);
    const maxCount = options.maxCount === undefined ? Infinity : Math.floor(options.maxCount);
    if (maxCount <= 0) return [];
    if (after === 0) return this.readAllFrom(START, after, maxCount);
    try {
      // A checkpoint is an event's position, which the server accepts as a start (inclusive).
      return await this.readAllFrom(toReadPosition(after), after, maxCount);
    } catch (error) {
      if (!isInvalidStart(error)) throw error;
      // Not a record boundary (e.g. after = position - 1): start from the nearest record before it.
      return this.readAllFrom(await this.resolveStart(after), after, maxCount);
    }
  }

  /** Scans $all backwards to the newest event of this store (it is normally among the first few). */
  async headPosition(): Promise<number> {
    this.assertOpen();
    return (await this.scanBackwards((resolved) => this.toLedgerEvent(resolved)?.position)) ?? 0;
  }

  subscribeToAll(
    handler: (event: RecordedEvent) => Promise<void>,
    options: SubscribeOptions & { onError?: (error: unknown) => void } = {},
  ): Subscription {
    this.assertOpen();
    // SubscribeOptions.types: filtered here, on the client (the $all reads are already filtered
    // client-side, see above).
    const { types, onPassed } = options;
    const deliver =
      types === undefined
        ? handler
        : async (event: RecordedEvent) => (types.includes(event.type) ? handler(event) : onPassed?.(event.position));
    const subscription = new EventStoreDbSubscription(this.subscriptionSource, deliver, options, (s) =>
      this.subscriptions.delete(s),
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** One tiny $all read; bounded in time (the client's streaming reads have no deadline). */
  async ping(): Promise<void> {
    this.assertOpen();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`EventStoreDB did not answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.readAllRecords({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await Promise.all([...this.subscriptions].map((s) => s.close()));
      await this.client.dispose();
    } finally {
      await this.options.onClose?.();
    }
  }

  // ---- $all ----

  /** Forward pages of $all from `from` (inclusive), keeping this store's events with position > after. */
  private async readAllFrom(from: ReadPosition, after: number, maxCount: number): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    let cursor = from;
    let floor = after;
    for (;;) {
      const wanted = maxCount - out.length;
      // Side-stream and system events share $all with ours, so ask for more than is wanted.
      const pageSize = Number.isFinite(wanted) ? Math.min(MAX_READ_PAGE, Math.max(32, wanted * 2 + 1)) : MAX_READ_PAGE;
      const page = await this.readAllRecords({ direction: FORWARDS, fromPosition: cursor, maxCount: pageSize });
      for (const resolved of page) {
        const event = this.toLedgerEvent(resolved);
        if (event && event.position > floor && out.length < maxCount) out.push(event);
      }
      const last = page[page.length - 1]?.event?.position;
      if (out.length >= maxCount || page.length < pageSize || !last) return out;
      cursor = last;
      floor = Math.max(floor, Number(last.commit));
    }
  }

  /**
   * A start position the server accepts, at or before `after`: `after` itself when an event sits
   * there (every checkpoint), else the nearest record before it, else START.
   */
  private async resolveStart(after: number): Promise<ReadPosition> {
    if (after <= 0) return START;
    const probe = await this.readAllRecords({ direction: FORWARDS, fromPosition: toReadPosition(after), maxCount: 1 }).catch(
      (error: unknown) => {
        if (isInvalidStart(error)) return undefined;
        throw error;
      },
    );
    if (probe?.[0]?.event?.position?.commit === BigInt(after)) return toReadPosition(after);
    const bound = BigInt(after);
    const before = await this.scanBackwards((resolved) => {
      const position = resolved.event?.position;
      return position && position.commit <= bound ? position : undefined;
    });
    return before ?? START;
  }

  /** Pages $all backwards from the end (small pages first) until `pick` returns something. */
  private async scanBackwards<T>(pick: (resolved: AllStreamResolvedEvent) => T | undefined): Promise<T | undefined> {
    let from: ReadPosition = END;
    let pageSize = 8;
    for (;;) {
      const page = await this.readAllRecords({ direction: BACKWARDS, fromPosition: from, maxCount: pageSize });
      for (const resolved of page) {
        const found = pick(resolved);
        if (found !== undefined) return found;
      }
      const last = page[page.length - 1]?.event?.position;
      if (page.length < pageSize || !last) return undefined;
      from = last;
      pageSize = Math.min(SCAN_PAGE, pageSize * 4);
    }
  }

  private openLive(start: ReadPosition): LiveFeed {
    const subscription = this.client.subscribeToAll({
      fromPosition: start,
      filter: streamNameFilter({ regex: this.names.ledgerStreamRegex }),
    });
    // An error after the iteration stopped listening must not become an unhandled 'error' event.
    subscription.on('error', () => undefined);
    const toLedgerEvent = (resolved: AllStreamResolvedEvent) => this.toLedgerEvent(resolved);
    return {
      stop() {
        subscription.unsubscribe().catch(() => undefined);
        if (!subscription.destroyed) subscription.destroy();
      },
      async *[Symbol.asyncIterator]() {
        for await (const resolved of subscription) yield toLedgerEvent(resolved);
      },
    };
  }

  private readAllRecords(options: Parameters<EventStoreDbClientLike['readAll']>[0]): Promise<AllStreamResolvedEvent[]> {
    return collect(this.client.readAll(options));
  }

  // ---- streams ----

  private readStreamRecords(stream: string, options: ReadStreamRecordsOptions): Promise<EsdbRecord[]> {
    return readStreamRecords(this.client, stream, options);
  }

  /** Positions of the events just appended (the append reply carries one position, not one per event). */
  private async positionsOf(streamId: string, first: number, ids: string[]): Promise<number[]> {
    const records = await this.readStreamRecords(this.names.stream(streamId), {
      direction: FORWARDS,
      fromRevision: BigInt(first),
      maxCount: ids.length,
    });
    const read = records.map((r) => this.toRecorded(r, streamId));
    if (read.length !== ids.length || read.some((e, i) => e.eventId !== ids[i])) {
      throw new Error(`stream ${streamId}: appended events not found at revisions ${first}..${first + ids.length - 1}`);
    }
    return read.map((e) => e.position);
  }

  /** Best effort: the events are committed already, so a failed snapshot only costs a longer load. */
  private async writeSnapshot(streamId: string, revision: number, state: unknown): Promise<void> {
    const stream = this.names.snapshot(streamId);
    try {
      const result = await this.client.appendToStream(
        stream,
        jsonEvent({ id: randomUUID(), type: SNAPSHOT_TYPE, data: { revision, state } as JSONType }),
        { expectedRevision: ANY },
      );
      if (result.nextExpectedRevision === 0n) await this.limitToLatest(stream);
    } catch (error) {
      process.emitWarning(`event store (EventStoreDB): snapshot of ${streamId} at ${revision} not stored: ${messageOf(error)}`);
    }
  }

  /** $maxCount 1 on a side stream, set once when it is created: older events become scavengeable. */
  private async limitToLatest(stream: string): Promise<void> {
    try {
      await this.client.setStreamMetadata(stream, { maxCount: 1 });
    } catch (error) {
      process.emitWarning(`event store (EventStoreDB): $maxCount not set on ${stream}: ${messageOf(error)}`);
    }
  }

  // ---- conversion ----

  /** This store's event, or undefined for anything else on $all (system, side streams, other namespaces). */
  private toLedgerEvent(resolved: AllStreamResolvedEvent): RecordedEvent | undefined {
    const record = resolved.event as EsdbRecord | undefined;
    if (!record || record.type.startsWith('$')) return undefined;
    const streamId = this.names.ledgerStreamId(record.streamId);
    return streamId === undefined ? undefined : this.toRecorded(record, streamId);
  }

  private toRecorded(record: EsdbRecord, streamId: string): RecordedEvent {
    return {
      eventId: record.id,
      type: record.type,
      data: record.data,
      metadata: isPlainObject(record.metadata) ? record.metadata : {},
      streamId,
      revision: Number(record.revision),
      position: toPosition(record),
      recordedAt: record.created,
    };
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }
}

/**
 * KeyValueStore on ESDB streams, one per key (`<namespace>kv-<key>`, $maxCount 1): get reads the
 * last event, putIfAbsent appends with no_stream (the server picks the one winner of a race), put
 * appends with any.
 */
class EventStoreDbKeyValueStore implements KeyValueStore {
  constructor(
    private readonly client: EventStoreDbClientLike,
    private readonly names: StreamNames,
    private readonly limitToLatest: (stream: string) => Promise<void>,
  ) {}

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const [last] = await readStreamRecords(this.client, this.names.kv(key), { direction: BACKWARDS, fromRevision: END, maxCount: 1 });
    return isPlainObject(last?.data) && 'value' in last.data ? (last.data.value as T) : undefined;
  }

  async putIfAbsent<T>(key: string, value: T): Promise<T> {
    const stored = jsonCopy(key, value);
    try {
      await this.write(key, stored, NO_STREAM);
      return stored;
    } catch (error) {
      if (!isErrorType(error, 'wrong-expected-version')) throw error;
    }
    // Lost the race: the winner's event is committed, though a read may trail the write briefly.
    for (let attempt = 0; attempt < 100; attempt++) {
      const winner = await this.get<T>(key);
      if (winner !== undefined) return winner;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`kv ${key}: the key exists but its value is not readable`);
  }

  async put<T>(key: string, value: T): Promise<void> {
    await this.write(key, jsonCopy(key, value), ANY);
  }

  private async write(key: string, value: unknown, expectedRevision: AppendExpectedRevision): Promise<void> {
    const stream = this.names.kv(key);
    const result = await this.client.appendToStream(
      stream,
      jsonEvent({ id: randomUUID(), type: KV_TYPE, data: { value } as JSONType }),
      { expectedRevision },
    );
    if (result.nextExpectedRevision === 0n) await this.limitToLatest(stream);
  }
}

/** Stream names: `<namespace><id>` for the port's streams, reserved prefixes for the side streams. */
class StreamNames {
  /** Server-side filter (a .NET regex on the stream name) matching exactly this store's streams. */
  readonly ledgerStreamRegex: string;

  constructor(readonly namespace: string) {
    if (!/^[A-Za-z0-9_.:-]*$/.test(namespace)) {
      throw new TypeError(`EventStoreDB namespace ${JSON.stringify(namespace)}: use letters, digits and _ . : - only`);
    }
    const reserved = ['\\$', SNAPSHOT_PREFIX, KV_PREFIX].join('|');
    this.ledgerStreamRegex = `^${escapeRegex(namespace)}(?!${reserved})`;
  }

  stream(streamId: string): string {
    if (typeof streamId !== 'string' || streamId === '' || isReserved(streamId)) {
      throw new TypeError(
        `stream id ${JSON.stringify(streamId)} is not allowed on EventStoreDB: it must be non-empty and not start with $, ${SNAPSHOT_PREFIX} or ${KV_PREFIX}`,
      );
    }
    return this.namespace + streamId;
  }

  snapshot(streamId: string): string {
    this.stream(streamId); // same rules as the stream it belongs to
    return this.namespace + SNAPSHOT_PREFIX + streamId;
  }

  kv(key: string): string {
    if (typeof key !== 'string' || key === '') throw new TypeError('kv key must be a non-empty string');
    return this.namespace + KV_PREFIX + key;
  }

  /** The port's stream id for an ESDB stream name, or undefined when the stream is not one of ours. */
  ledgerStreamId(name: string): string | undefined {
    if (!name.startsWith(this.namespace)) return undefined;
    const id = name.slice(this.namespace.length);
    return id === '' || isReserved(id) ? undefined : id;
  }
}

function isReserved(id: string): boolean {
  return id.startsWith('$') || id.startsWith(SNAPSHOT_PREFIX) || id.startsWith(KV_PREFIX);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

function toExpected(expected: ExpectedRevision): AppendExpectedRevision {
  if (typeof expected === 'number') return BigInt(checkRevision(expected, 'expected revision'));
  switch (expected) {
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    case 'any':
      return ANY;
    default:
      throw new RangeError(`unknown expected revision ${String(expected)}`);
  }
}

function checkRevision(revision: number, what: string): number {
  if (!Number.isSafeInteger(revision) || revision < 0) throw new RangeError(`${what} must be an integer >= 0, got ${revision}`);
  return revision;
}

function toEventData(event: NewEvent) {
  return jsonEvent({ id: event.eventId, type: event.type, data: event.data as JSONType, metadata: event.metadata as JSONType });
}

/** An ESDB position → the port's number. Every event this adapter writes has commit == prepare. */
function toPosition(record: EsdbRecord): number {
  const position = record.position;
  if (!position || position.commit <= 0n) {
    throw new Error(`EventStoreDB returned no position for ${record.streamId}@${record.revision}: server 22.10 or later is required`);
  }
  if (position.commit !== position.prepare) {
    throw new Error(`EventStoreDB event ${record.id} has commit ${position.commit} != prepare ${position.prepare} (explicit transaction?): unsupported`);
  }
  if (position.commit > MAX_POSITION) throw new RangeError(`EventStoreDB position ${position.commit} exceeds 2^53`);
  return Number(position.commit);
}

function toReadPosition(position: number): Position {
  const p = BigInt(position);
  return { commit: p, prepare: p };
}

function parseSnapshot(data: unknown): { state: unknown; revision: number } | undefined {
  if (!isPlainObject(data) || typeof data.revision !== 'number' || !('state' in data)) return undefined;
  return { state: data.state, revision: data.revision };
}

type ReadStreamRecordsOptions = Parameters<EventStoreDbClientLike['readStream']>[1];

/** A stream's records ([] when it does not exist). */
async function readStreamRecords(client: EventStoreDbClientLike, stream: string, options: ReadStreamRecordsOptions): Promise<EsdbRecord[]> {
  try {
    const resolved = await collect<ResolvedEvent>(client.readStream(stream, options));
    return resolved.map((r) => r.event as EsdbRecord | undefined).filter((e): e is EsdbRecord => e !== undefined);
  } catch (error) {
    if (isErrorType(error, 'stream-not-found')) return [];
    throw error;
  }
}

/** Reads a whole (bounded) client read into memory. */
async function collect<T>(read: AsyncIterable<T> & { on(event: 'error', listener: (error: Error) => void): unknown }): Promise<T[]> {
  read.on('error', () => undefined);
  const out: T[] = [];
  for await (const item of read) out.push(item);
  return out;
}

function isErrorType(error: unknown, type: string): boolean {
  return typeof error === 'object' && error !== null && (error as { type?: unknown }).type === type;
}

/**
 * The server refuses a $all read that starts inside a record ("invalid position"; older servers
 * report an unknown error). Connection problems are not this and are rethrown by the caller.
 */
function isInvalidStart(error: unknown): boolean {
  if (/invalid position/i.test(messageOf(error))) return true;
  return isErrorType(error, 'unknown') || isErrorType(error, 'invalid-argument');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function jsonCopy<T>(key: string, value: T): T {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`kv ${key}: value is not JSON-serialisable`);
  return JSON.parse(json) as T;
}

async function ensureKvTable(sql: SqlClient): Promise<void> {
  try {
    await sql.query('create table if not exists tl_kv (key text primary key, value jsonb not null)');
  } catch (error) {
    // Two processes creating it at once: one loses with a unique violation, and the table is there.
    const [row] = await sql.query<{ exists: boolean }>("select to_regclass('tl_kv') is not null as exists");
    if (!row?.exists) throw error;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
