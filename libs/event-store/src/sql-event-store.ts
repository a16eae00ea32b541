/**
 * The EventStore port implemented once on a SqlClient. The embedded (PGlite) and PostgreSQL adapters
 * only construct the client and, for Postgres, a cross-process wake-up source (LISTEN/NOTIFY).
 */
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
import type { JsonTextEvent, ReadAllJsonTextOptions, OpenedStore, StoreCapabilities, ThreadLocation } from './capabilities';
import { DuplicateEventIdError, EventStoreClosedError } from './errors';
import { Batcher } from './batcher';
import { PollingSubscription, WakeHub } from './polling-subscription';
import { SqlClient, toNumber, toOptionalNumber } from './sql-client';
import { SqlKeyValueStore } from './sql-key-value-store';
import { RecentEvents } from './recent-events';

/** Cross-process wake-ups; started when the first subscription opens, stopped on close. */
export interface ExternalWakeups {
  start(wake: () => void): Promise<void> | void;
  close(): Promise<void>;
}

export interface SqlEventStoreOptions {
  /** Which database engine holds the events (capabilities.eventsInSql.engine). */
  engine: 'postgres' | 'pglite';
  /** Set when a worker thread can open this store again (capabilities.threadLocation). */
  threadLocation?: ThreadLocation;
  /** Fallback poll period of subscriptions (default 250 ms). */
  pollIntervalMs?: number;
  /** Subscriptions' wake-up delay (PollingSubscriptionOptions.wakeDelayMs; default 0). */
  wakeDelayMs?: number;
  /**
   * Instead (PGlite, whose consumers all run in this thread): the in-process wake-up goes out this
   * long after an append, to every subscription at once, so they read the same page together (one
   * statement: readAll) and every append of that while in it.
   */
  gatherWakeupsMs?: number;
  externalWakeups?: ExternalWakeups;
}

interface EventRow {
  position: string | number;
  stream_id: string;
  revision: string | number;
  event_id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  recorded_at: Date | string;
}

interface AppendRow {
  conflict: boolean;
  actual_revision: string | number | null;
  next_revision: string | number | null;
  positions: Array<string | number> | null;
}

interface LoadRow extends Partial<EventRow> {
  loaded_stream_id: string;
  stream_revision: string | number;
  snapshot: unknown;
  snapshot_revision: string | number | null;
}

const EVENT_COLUMNS = 'position, stream_id, revision, event_id, type, data, metadata, recorded_at';
const MAX_BIGINT = '9223372036854775807';
/** Positions one typed subscription read looks at, at most (readAllOfTypes). */
const TYPED_SCAN_SPAN = 50_000;

/** An append on its way to tl_append / tl_append_batch (the batch function reads these field names). */
interface AppendRequest {
  streamId: string;
  expected: ExpectedRevision;
  kind: string;
  revision: number | null;
  /** recordedAt: the row's recorded_at (else the database's now()). */
  events: { eventId: string; type: string; data: unknown; metadata: Record<string, unknown>; recordedAt?: string }[];
  hasSnapshot: boolean;
  snapshot: unknown;
}

/** Appends are serialised by the store anyway (see tl_append), so one batch in flight is enough. */
const APPEND_BATCHING = { maxInFlight: 1, maxBatch: 256 };
/** Reads run in parallel on the pool; a couple of batches in flight keeps latency low. */
const LOAD_BATCHING = { maxInFlight: 2, maxBatch: 256 };
/** PGlite: how many appended events stay in memory for the in-process readers (RecentEvents): some seconds' worth. */
const RECENT_EVENTS = 10_000;
/** An event id the uuid column prints back unchanged but for case (other spellings are not remembered). */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * While a predicate-prompt subscription's predicate says no, it reads at most this often: it sits on
 * the ordinary wake-ups, which on a store without a gather or delay (PostgreSQL's main thread) come at
 * every append — a read and a consumer batch per refresh, for a consumer with nothing to do.
 */
export const IDLE_PROMPT_WAKE_DELAY_MS = 100;

function wakeDelayFor(prompt: SubscribeOptions['prompt'], storeDelayMs: number | undefined): number | (() => number) | undefined {
  if (prompt === true) return 0;
  if (typeof prompt === 'function') return () => (prompt() ? 0 : Math.max(storeDelayMs ?? 0, IDLE_PROMPT_WAKE_DELAY_MS));
  return storeDelayMs;
}

export class SqlEventStore implements OpenedStore {
  readonly kv: KeyValueStore;
  /** The events are in `tl_events` of `sql`, which also holds the read models (capabilities.ts). */
  readonly capabilities: StoreCapabilities;
  private readonly appends: Batcher<AppendRequest, AppendResult>;
  private readonly loads: Batcher<string, LoadedStream>;
  private readonly wakeups = new WakeHub();
  /** Subscriptions with SubscribeOptions.prompt: woken at every append, never gathered. */
  private readonly promptWakeups = new WakeHub();
  private readonly subscriptions = new Set<PollingSubscription>();
  private readonly pagesInFlight = new Map<string, Promise<EventRow[]>>();
  /** PGlite (no other process writes): what this store appended lately, for its in-process readers. */
  private readonly recent?: RecentEvents;
  /**
   * What subscriptions read through: on PGlite, a page that starts in RecentEvents comes from memory.
   * Only they: readAll itself always asks the database (forensics must see what is stored there).
   */
  private readonly liveSource = {
    readAll: (options: ReadAllOptions): Promise<RecordedEvent[]> => {
      const remembered = this.recent?.run(options.after ?? 0, limit(options.maxCount));
      return remembered ? Promise.resolve(remembered) : this.readAll(options);
    },
    headPosition: (): Promise<number> => this.headPosition(),
    readAllOfTypes: (options: { after: number; maxCount: number; types: readonly string[] }) => this.readAllOfTypes(options),
  };
  private wakeTimer: NodeJS.Timeout | undefined;
  private externalStarted: Promise<void> | undefined;
  private closed = false;

  constructor(
    /** Exposed so read models in the same database can share the one connection / pool. */
    readonly sql: SqlClient,
    private readonly options: SqlEventStoreOptions,
  ) {
    this.kv = new SqlKeyValueStore(sql);
    // PGlite runs in this thread: batches only form if requests are gathered (Batcher). Loads are
    // gathered on every engine, so a refresh's family and client loads go as one statement.
    const gather = options.engine === 'pglite' ? ({ gather: 'immediate' } as const) : {};
    this.appends = new Batcher((r) => this.appendMany(r), { ...APPEND_BATCHING, ...gather });
    this.loads = new Batcher((ids) => this.loadMany(ids), { ...LOAD_BATCHING, gather: 'immediate' });
    if (options.engine === 'pglite') this.recent = new RecentEvents(RECENT_EVENTS);
    this.capabilities = {
      sql,
      eventsInSql: { engine: options.engine, readAllJsonText: (o) => this.readAllJsonText(o) },
      threadLocation: options.threadLocation,
    };
  }

  async append(streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    if (events.length === 0) throw new TypeError(`stream ${streamId}: append needs at least one event`);
    const [kind, revision] = expectation(options.expectedRevision);
    // The port: a snapshot only makes sense when the caller knows the exact state it extends.
    const exact = kind === 'exact' || kind === 'no_stream';
    // PGlite: the time goes in with the events, so what RecentEvents hands out matches the row.
    const recordedAt = this.recent ? new Date().toISOString() : undefined;
    const request: AppendRequest = {
      streamId,
      expected: options.expectedRevision,
      kind,
      revision,
      events: events.map((e) => ({ eventId: e.eventId, type: e.type, data: e.data ?? null, metadata: e.metadata ?? {}, recordedAt })),
      hasSnapshot: exact && options.snapshot !== undefined,
      snapshot: exact && options.snapshot !== undefined ? options.snapshot : null,
    };
    const result = await this.appends.submit(request);
    this.pagesInFlight.clear();
    // In-process subscriptions hear about it now (or gatherWakeupsMs from now) rather than at the
    // next poll or NOTIFY.
    this.promptWakeups.wake();
    const gather = this.options.gatherWakeupsMs;
    if (!gather) this.wakeups.wake();
    else if (!this.wakeTimer && !this.closed) this.wakeTimer = setTimeout(() => this.wakeSubscriptionsNow(), gather);
    return result;
  }

  /** The gathered wake-up, if one is pending, goes out now (EventStore.wakeSubscriptionsNow). */
  wakeSubscriptionsNow(): void {
    if (!this.wakeTimer) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeups.wake();
  }

  /** One append on its own: tl_append. */
  private async appendOne(r: AppendRequest): Promise<AppendResult> {
    let row: AppendRow;
    try {
      [row] = await this.sql.query<AppendRow>(
        'select conflict, actual_revision, next_revision, positions from tl_append($1, $2, $3, $4::jsonb, $5::json)',
        [r.streamId, r.kind, r.revision, JSON.stringify(r.events), r.hasSnapshot ? JSON.stringify(r.snapshot) ?? null : null],
      );
    } catch (error) {
      this.recent?.forget();
      if (isUniqueViolation(error, 'event_id')) throw new DuplicateEventIdError(r.streamId, r.events.map((e) => e.eventId));
      throw error;
    }
    const result = appendResult(r, row);
    this.remember(r, result);
    return result;
  }

  /** PGlite: as the statement returns, before its callers hear of it (RecentEvents). */
  private remember(r: AppendRequest, result: AppendResult): void {
    if (!this.recent) return;
    if (r.events.every((e) => CANONICAL_UUID.test(e.eventId))) this.recent.add(recorded(r, result));
    else this.recent.forget();
  }

  /**
   * Several appends in one transaction (tl_append_batch). If the batch fails as a whole (say one
   * item repeats an event id), every item is retried on its own so only the faulty one fails.
   */
  private async appendMany(requests: AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    if (requests.length === 1) return Promise.allSettled([this.appendOne(requests[0])]);
    let rows: (AppendRow & { idx: number })[];
    try {
      rows = await this.sql.query<AppendRow & { idx: number }>(
        'select idx, conflict, actual_revision, next_revision, positions from tl_append_batch($1::jsonb, $2::json)',
        // The snapshots travel apart, as a json array (tl_append_batch).
        [
          JSON.stringify(requests.map((r) => ({ streamId: r.streamId, kind: r.kind, revision: r.revision, events: r.events, hasSnapshot: r.hasSnapshot }))),
          JSON.stringify(requests.map((r) => (r.hasSnapshot ? r.snapshot : null))),
        ],
      );
    } catch {
      this.recent?.forget();
      const settled: PromiseSettledResult<AppendResult>[] = [];
      for (const r of requests) settled.push(...(await Promise.allSettled([this.appendOne(r)])));
      return settled;
    }
    rows.sort((a, b) => a.idx - b.idx);
    return requests.map((r, i) => {
      try {
        const result = appendResult(r, rows[i]);
        this.remember(r, result);
        return { status: 'fulfilled', value: result };
      } catch (reason) {
        return { status: 'rejected', reason };
      }
    });
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const backwards = options.direction === 'backwards';
    const rows = await this.sql.query<EventRow>(
      backwards
        ? `select ${EVENT_COLUMNS} from tl_events where stream_id = $1 and revision <= coalesce($2::bigint, ${MAX_BIGINT})
           order by revision desc limit $3`
        : `select ${EVENT_COLUMNS} from tl_events where stream_id = $1 and revision >= coalesce($2::bigint, 0)
           order by revision asc limit $3`,
      [streamId, options.fromRevision ?? null, limit(options.maxCount)],
    );
    return rows.map(toRecorded);
  }

  loadStream(streamId: string): Promise<LoadedStream> {
    this.assertOpen();
    return this.loads.submit(streamId);
  }

  /**
   * One statement for many streams (tl_load_streams, sql-schema.ts): each stream row (revision,
   * snapshot) and only the events after its snapshot, so a fresh snapshot means O(1) work.
   */
  private async loadMany(streamIds: string[]): Promise<PromiseSettledResult<LoadedStream>[]> {
    const rows = await this.sql.query<LoadRow>('select * from tl_load_streams($1::text[])', [[...new Set(streamIds)]]);
    const byStream = new Map<string, LoadRow[]>();
    for (const row of rows) {
      const list = byStream.get(row.loaded_stream_id);
      if (list) list.push(row);
      else byStream.set(row.loaded_stream_id, [row]);
    }
    return streamIds.map((id) => ({ status: 'fulfilled', value: toLoaded(byStream.get(id)) }));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = options.after ?? 0;
    const count = limit(options.maxCount);
    // PGlite: the subscribers of one wake-up usually ask for the same page (the consumers all run in
    // this thread, caught up to the same position): one statement, and one parse of its rows, for
    // all of them. Each caller gets event objects of its own; the parsed data and metadata are
    // shared. Only a read issued after the last append returned is joined (append() forgets the
    // others), and PGlite has no other writer, so a caller still sees every append that returned.
    const key = `${after}:${count}`;
    let page = this.options.engine === 'pglite' ? this.pagesInFlight.get(key) : undefined;
    if (!page) {
      page = this.sql.query<EventRow>(`select ${EVENT_COLUMNS} from tl_events where position > $1 order by position limit $2`, [after, count]);
      this.pagesInFlight.set(key, page);
      const asked = page;
      const forget = () => this.pagesInFlight.get(key) === asked && this.pagesInFlight.delete(key);
      asked.then(forget, forget);
    }
    return (await page).map(toRecorded);
  }

  /**
   * SubscribeOptions.types: only rows of those types leave the database. The head comes from the
   * same statement (one snapshot), and positions become visible in order (the append lock), so
   * every event up to it that is not returned was read past, never missed. One statement looks at
   * most TYPED_SCAN_SPAN positions, so a catch-up over millions of events is many short statements.
   */
  private async readAllOfTypes(options: { after: number; maxCount: number; types: readonly string[] }): Promise<{ events: RecordedEvent[]; scannedTo: number; more: boolean }> {
    this.assertOpen();
    const { after, maxCount } = options;
    const rows = await this.sql.query<EventRow & { head: string | number }>(
      `select h.head, e.* from (select coalesce(max(position), 0) as head from tl_events) h
         left join lateral (select ${EVENT_COLUMNS} from tl_events
                             where position > $1 and position <= least(h.head, $4::bigint) and type = any($3::text[])
                             order by position limit $2) e on true`,
      [after, maxCount, [...options.types], after + TYPED_SCAN_SPAN],
    );
    const events = rows.filter((r) => r.position !== null).map(toRecorded);
    if (events.length >= maxCount) return { events, scannedTo: events[events.length - 1].position, more: true };
    const head = toNumber(rows[0].head);
    const bound = Math.min(head, after + TYPED_SCAN_SPAN);
    return { events, scannedTo: bound, more: bound < head };
  }

  /**
   * The export read path (capabilities.eventsInSql, not the port): like readAll, but `data` and `metadata`
   * come back as the database's own JSON text (jsonb output: keys in jsonb order, ", " and ": "
   * between items) instead of parsed values, with only the columns an export needs — so a caller
   * that copies JSON through (the forensics NDJSON export, libs/forensics/src/ndjson.ts) skips a
   * JSON.parse per column here and a JSON.stringify later. Positions after < position <= until, at
   * most maxCount, in order. eventId is the uuid column's text (hex digits and dashes).
   */
  async readAllJsonText(options: ReadAllJsonTextOptions = {}): Promise<JsonTextEvent[]> {
    this.assertOpen();
    // One text column per row besides the type: position, event id, data and metadata joined by
    // \x01, which none of them holds (jsonb text escapes control characters). The driver's cost is
    // mostly per column, and this is an export's hot path. Ordered by the column e.position.
    const rows = await this.sql.query<{ packed: string; type: string; recordedAt?: Date | string }>(
      `select e.position::text || E'\\x01' || e.event_id::text || E'\\x01' || e.data::text || E'\\x01' || e.metadata::text as packed,
              e.type${options.recordedAt ? ', e.recorded_at as "recordedAt"' : ''}
         from tl_events e where e.position > $1 and e.position <= coalesce($2::bigint, ${MAX_BIGINT}) order by e.position limit $3`,
      [options.after ?? 0, options.until ?? null, limit(options.maxCount)],
    );
    const events = new Array<JsonTextEvent>(rows.length);
    for (let k = 0; k < rows.length; k++) {
      const { packed, type, recordedAt } = rows[k];
      const a = packed.indexOf('\x01');
      const b = packed.indexOf('\x01', a + 1);
      const c = packed.indexOf('\x01', b + 1);
      const event: JsonTextEvent = { position: Number(packed.slice(0, a)), eventId: packed.slice(a + 1, b), type, data: packed.slice(b + 1, c), metadata: packed.slice(c + 1) };
      // As toRecorded: pg hands back a Date, PGlite one from another realm (inside jest).
      if (recordedAt !== undefined) event.recordedAt = recordedAt instanceof Date ? recordedAt : new Date(recordedAt);
      events[k] = event;
    }
    return events;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    const [row] = await this.sql.query<{ head: string | number }>('select coalesce(max(position), 0) as head from tl_events');
    return toNumber(row.head);
  }

  subscribeToAll(
    handler: (event: RecordedEvent) => Promise<void>,
    options: SubscribeOptions & { onError?: (error: unknown) => void } = {},
  ): Subscription {
    this.assertOpen();
    this.startExternalWakeups();
    const { prompt } = options;
    let promptWhile: (() => void) | undefined;
    const subscription = new PollingSubscription(
      this.liveSource,
      prompt === true ? this.promptWakeups : this.wakeups,
      handler,
      { ...options, pollIntervalMs: this.options.pollIntervalMs, wakeDelayMs: wakeDelayFor(prompt, this.options.wakeDelayMs) },
      (s) => {
        this.subscriptions.delete(s);
        promptWhile?.();
      },
    );
    // Prompt only while the predicate holds; the ordinary (gathered) wake-ups reach it regardless.
    if (typeof prompt === 'function') promptWhile = this.promptWakeups.add(() => prompt() && subscription.nudge());
    this.subscriptions.add(subscription);
    return subscription;
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await this.sql.query('select 1');
  }

  async close(): Promise<void> {
    clearTimeout(this.wakeTimer);
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.externalStarted?.catch(() => undefined);
    await this.options.externalWakeups?.close();
    await this.sql.close();
  }

  private startExternalWakeups(): void {
    const external = this.options.externalWakeups;
    if (!external || this.externalStarted) return;
    // Failing to LISTEN is not fatal: the fallback poll still delivers, only later.
    this.externalStarted = Promise.resolve(external.start(() => {
      this.wakeups.wake();
      this.promptWakeups.wake();
    })).catch((error) =>
      process.emitWarning(`event store: cross-process wake-ups unavailable, polling only: ${String(error)}`),
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }
}

function appendResult(r: AppendRequest, row: AppendRow): AppendResult {
  if (row.conflict) throw new WrongExpectedRevisionError(r.streamId, r.expected, toOptionalNumber(row.actual_revision));
  const positions = (row.positions ?? []).map(toNumber);
  return { nextExpectedRevision: toNumber(row.next_revision), position: positions[positions.length - 1], positions };
}

function toLoaded(rows: LoadRow[] | undefined): LoadedStream {
  if (!rows || rows.length === 0) return { revision: undefined, events: [] };
  const first = rows[0];
  const loaded: LoadedStream = {
    revision: toNumber(first.stream_revision),
    events: rows.filter((r) => r.position !== null && r.position !== undefined).map((r) => toRecorded(r as EventRow)),
  };
  if (first.snapshot_revision !== null && first.snapshot_revision !== undefined) {
    loaded.snapshot = { state: first.snapshot, revision: toNumber(first.snapshot_revision) };
  }
  return loaded;
}

function expectation(expected: ExpectedRevision): [kind: string, revision: number | null] {
  if (typeof expected === 'number') {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new RangeError(`expected revision must be an integer >= 0 or no_stream/stream_exists/any, got ${expected}`);
    }
    return ['exact', expected];
  }
  if (expected === 'no_stream' || expected === 'stream_exists' || expected === 'any') return [expected, null];
  throw new RangeError(`unknown expected revision ${String(expected)}`);
}

function limit(maxCount: number | undefined): number | null {
  return maxCount === undefined ? null : Math.max(0, Math.floor(maxCount));
}

/**
 * An append's events as readAll would return them: values through JSON as jsonb keeps them (so no
 * reader shares the caller's objects), the event id as the uuid column prints it, recordedAt as the
 * append set it on the row.
 */
function recorded(r: AppendRequest, result: AppendResult): RecordedEvent[] {
  const events = JSON.parse(JSON.stringify(r.events)) as AppendRequest['events'];
  const recordedAt = new Date(events[0].recordedAt!);
  const first = result.nextExpectedRevision - events.length + 1;
  return events.map((e, i) => ({
    eventId: e.eventId.toLowerCase(),
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    streamId: r.streamId,
    revision: first + i,
    position: result.positions[i],
    recordedAt,
  }));
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    streamId: row.stream_id,
    revision: toNumber(row.revision),
    position: toNumber(row.position),
    recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at),
  };
}

/** pg and PGlite both surface SQLSTATE as `code` and the violated constraint as `constraint`. */
function isUniqueViolation(error: unknown, column: string): boolean {
  const e = error as { code?: string; constraint?: string; detail?: string; message?: string } | null;
  if (!e || e.code !== '23505') return false;
  return [e.constraint, e.detail, e.message].some((text) => typeof text === 'string' && text.includes(column));
}
