/**
 * NDJSON export: one public event (SPEC §3 shape) per line, written with back-pressure so memory
 * stays at about one page whatever the size of the history.
 */
import type { Writable } from 'node:stream';
import type { EventStore, EventsInSql, StoreCapabilities } from '@token-ledger/event-store';
import { toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import { PublicEventJson, type JsonTextEvent } from './public-event-json';
import { readAllPages } from './read';
import { inRange } from './timeline';

/**
 * Writes a chunk, waiting for 'drain' when the destination's buffer is full. Rejects (instead of
 * waiting forever) when the destination fails or closes, e.g. EPIPE when `| head` has had enough.
 */
export function writeChunk(out: Writable, chunk: string | Uint8Array): Promise<void> | undefined {
  if (out.destroyed) return Promise.reject(closedError());
  if (out.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (error: Error) => done(error);
    const onClose = () => done(closedError());
    out.once('drain', onDrain);
    out.once('error', onError);
    out.once('close', onClose);
  });
}

function closedError(): Error {
  return Object.assign(new Error('output closed'), { code: 'EPIPE' });
}

/** Writes public events as NDJSON, batching lines into chunks of about `chunkEvents` events. */
export async function writeNdjson(out: Writable, events: AsyncIterable<PublicEvent>, chunkEvents = 500): Promise<number> {
  let buffer = '';
  let inBuffer = 0;
  let count = 0;
  for await (const event of events) {
    buffer += `${JSON.stringify(event)}\n`;
    count++;
    if (++inBuffer >= chunkEvents) {
      await writeChunk(out, buffer);
      buffer = '';
      inBuffer = 0;
    }
  }
  if (buffer) await writeChunk(out, buffer);
  return count;
}

export interface ExportOptions {
  /** Exclusive lower bound on position (default 0). */
  after?: number;
  /** Inclusive upper bound on position (default: the head when the export starts). */
  until?: number;
  /** Events per page (default: DEFAULT_EXPORT_PAGE on a SQL store, readAllPages' otherwise). */
  pageSize?: number;
  /** Pages read at once from a SQL store (default 2; see readJsonTextPages). */
  concurrency?: number;
  /**
   * Keep only events that occurred in [from, to] (epoch ms, both inclusive, either open): occurredAt,
   * or the commit time for an event without one — the rule of inRange and the timelines.
   */
  occurred?: { from?: number; to?: number };
  /** Keep only these events. Any predicate on the public event: the export then parses every event. */
  filter?: (event: PublicEvent) => boolean;
  /** After each page: events written, events read, the last position read and the target head. */
  onProgress?: (progress: { events: number; read: number; position: number; headPosition: number }) => void;
}

/**
 * Events per page of the copy path (one query each; the next pages are read while this one is
 * written): 2,000 measured best on the 1M-event export (1,000: more round trips; 4,000: more memory
 * and no faster). The parsing path keeps readAllPages' 1,000 (its event objects cost more to collect).
 */
export const DEFAULT_EXPORT_PAGE = 2000;

/** What hands events over with data and metadata as JSON text: a store's capabilities.eventsInSql (PGlite, PostgreSQL). */
export type JsonTextSource = Pick<EventsInSql, 'readAllJsonText'>;

/**
 * Every event of the store in global order as NDJSON (`replay --all --format ndjson`): one
 * JSON.stringify(toPublicEvent(event)) per line. On a store whose events are in SQL
 * (capabilities.eventsInSql: PGlite, PostgreSQL) the stored JSON text is copied into the lines
 * (PublicEventJson, the same bytes) instead of being parsed and serialised again; other stores
 * (EventStoreDB, or one that describes no capabilities), and a `filter`, take the parsing path.
 * Memory: a few pages (see readJsonTextPages).
 */
export async function exportAllNdjson(
  store: EventStore & { readonly capabilities?: StoreCapabilities },
  out: Writable,
  options: ExportOptions = {},
): Promise<{ events: number; headPosition: number }> {
  const headPosition = options.until ?? (await store.headPosition());
  const jsonText = store.capabilities?.eventsInSql;
  if (jsonText && !options.filter) return exportJsonText(jsonText, out, headPosition, options);
  const occurred = options.occurred ? inRange(options.occurred) : undefined;
  let events = 0;
  let read = 0;
  for await (const page of readAllPages(store, { after: options.after, until: headPosition, pageSize: options.pageSize })) {
    let chunk = '';
    for (const recorded of page) {
      if (occurred && !occurred(recorded)) continue;
      const event = toPublicEvent(recorded);
      if (options.filter && !options.filter(event)) continue;
      chunk += `${JSON.stringify(event)}\n`;
      events++;
    }
    read += page.length;
    if (chunk) await writeChunk(out, chunk);
    options.onProgress?.({ events, read, position: page[page.length - 1].position, headPosition });
  }
  return { events, headPosition };
}

async function exportJsonText(store: JsonTextSource, out: Writable, headPosition: number, options: ExportOptions): Promise<{ events: number; headPosition: number }> {
  const from = options.occurred?.from ?? Number.NEGATIVE_INFINITY;
  const to = options.occurred?.to ?? Number.POSITIVE_INFINITY;
  const ranged = from !== Number.NEGATIVE_INFINITY || to !== Number.POSITIVE_INFINITY;
  const writer = new PublicEventJson();
  let events = 0;
  let read = 0;
  for await (const page of readJsonTextPages(store, { after: options.after, until: headPosition, pageSize: options.pageSize, concurrency: options.concurrency, recordedAt: ranged })) {
    for (const event of page) {
      writer.write(event);
      if (ranged) {
        const t = writer.lastEventTimeMs(event);
        if (!(t >= from && t <= to)) {
          writer.dropLast();
          continue;
        }
      }
      events++;
    }
    read += page.length;
    const chunk = writer.take();
    if (chunk.length > 0) await writeChunk(out, chunk);
    options.onProgress?.({ events, read, position: page[page.length - 1].position, headPosition });
  }
  return { events, headPosition };
}

/**
 * Every event with after < position <= until as JSON text, page by page in position order. Pages
 * are position ranges of `pageSize` (positions are dense but for gaps, so a page holds at most that
 * many events), which lets `concurrency` of them be read at once — on PostgreSQL each on its own
 * pooled connection, so the database renders the next pages on another core while this process
 * writes the current one. A run of empty ranges (a gap in the positions) is skipped with one probe.
 */
export async function* readJsonTextPages(
  store: JsonTextSource,
  options: { after?: number; until: number; pageSize?: number; concurrency?: number; recordedAt?: boolean },
): AsyncGenerator<JsonTextEvent[]> {
  const pageSize = Math.max(1, options.pageSize ?? DEFAULT_EXPORT_PAGE);
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_EXPORT_CONCURRENCY);
  const until = options.until;
  const recordedAt = options.recordedAt;
  let next = options.after ?? 0; // start (exclusive) of the next range to ask for
  const inFlight: Promise<JsonTextEvent[]>[] = [];
  const ask = () => {
    const p = store.readAllJsonText({ after: next, until: Math.min(next + pageSize, until), maxCount: pageSize, recordedAt });
    p.catch(() => undefined); // awaited below; this only keeps an abandoned read from going unhandled
    inFlight.push(p);
    next = Math.min(next + pageSize, until);
  };
  let empty = 0;
  try {
    while (next < until || inFlight.length > 0) {
      while (inFlight.length < concurrency && next < until) ask();
      const page = await inFlight.shift()!;
      if (page.length > 0) {
        empty = 0;
        yield page;
        continue;
      }
      if (++empty < EMPTY_RANGES_BEFORE_PROBE || next >= until) continue;
      // A long gap: finish what is in flight (in order), then jump to the next event there is.
      while (inFlight.length > 0) {
        const rest = await inFlight.shift()!;
        if (rest.length > 0) yield rest;
      }
      const [first] = await store.readAllJsonText({ after: next, until, maxCount: 1 });
      if (!first) return;
      next = first.position - 1;
      empty = 0;
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}

/** Range reads in flight during an export (see readJsonTextPages). */
export const DEFAULT_EXPORT_CONCURRENCY = 2;
const EMPTY_RANGES_BEFORE_PROBE = 4;
