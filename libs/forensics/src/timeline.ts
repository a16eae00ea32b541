/**
 * Forensic timelines read from the event store (never from read models): a family's events and its
 * state as of any instant; a subject's events across all its families over a time range.
 */
import type { EventStore, RecordedEvent } from '@token-ledger/event-store';
import { familyStreamId, occurredAtMs, subjectStreamId, toPublicEvent, type PublicEvent } from '@token-ledger/envelope';
import type { FamilyView } from '@token-ledger/domain';
import { FamilyStateAt } from './family-state-at';
import { mergeByPosition, readStreamPaged } from './read';

/** An instant: Date, epoch ms, or an ISO-8601 string. */
export type Instant = Date | number | string;

export function toEpochMs(instant: Instant): number {
  const ms = instant instanceof Date ? instant.getTime() : typeof instant === 'number' ? instant : Date.parse(instant);
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid instant: ${String(instant)}`);
  return ms;
}

/** Inclusive time window on occurredAt. */
export interface TimeRange {
  from?: Instant;
  to?: Instant;
}

export function inRange(range: { from?: number; to?: number }): (event: RecordedEvent) => boolean {
  const from = range.from ?? Number.NEGATIVE_INFINITY;
  const to = range.to ?? Number.POSITIVE_INFINITY;
  return (event) => {
    const t = occurredAtMs(event);
    return t >= from && t <= to;
  };
}

// ---------------------------------------------------------------------------------------------
// Family

/** A family stream's events in revision (= position) order, paged. */
export function familyEvents(store: EventStore, familyId: string, options: { fromRevision?: number; pageSize?: number } = {}): AsyncGenerator<RecordedEvent> {
  return readStreamPaged(store, familyStreamId(familyId), options);
}

export interface FamilyTimelineOptions {
  /** The instant the state is rebuilt for; events after it are left out. Default: now. */
  at?: Instant;
  /** Continue from this stream revision (a previous answer's nextCursor). */
  cursor?: number;
  /** At most this many events in `events` (the state always reflects every event up to `at`). */
  limit?: number;
  pageSize?: number;
}

export interface FamilyTimeline {
  familyId: string;
  /** The instant of `state`, ISO-8601. */
  at: string;
  /** The family as of `at` (SPEC §3 family shape); null when it did not exist yet. */
  state: FamilyView | null;
  /** Events with occurredAt <= at, in order. */
  events: PublicEvent[];
  /** Pass as `cursor` for the next events; null when there are no more. */
  nextCursor: string | null;
}

/**
 * The family's events up to `at` and its state as of `at`, folded with the domain's evolveFamily.
 * null when the family's stream does not exist. One pass over the stream, page by page.
 */
export async function familyTimeline(store: EventStore, familyId: string, options: FamilyTimelineOptions = {}): Promise<FamilyTimeline | null> {
  const at = options.at === undefined ? Date.now() : toEpochMs(options.at);
  const cursor = options.cursor ?? 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const folder = new FamilyStateAt(at);
  const events: PublicEvent[] = [];
  let seen = 0;
  let nextCursor: string | null = null;
  for await (const event of familyEvents(store, familyId, { pageSize: options.pageSize })) {
    seen++;
    if (!folder.apply(event)) continue;
    if (event.revision < cursor) continue;
    if (events.length < limit) events.push(toPublicEvent(event));
    else if (nextCursor === null) nextCursor = String(event.revision);
  }
  if (seen === 0) return null;
  return { familyId, at: new Date(at).toISOString(), state: folder.view(), events, nextCursor };
}

// ---------------------------------------------------------------------------------------------
// Subject

/** Family ids linked to a subject (FamilyLinkedToSubject, and any SubjectRevoked lists), in link order. */
export async function subjectFamilyIds(store: EventStore, subject: string, pageSize?: number): Promise<string[]> {
  const ids = new Set<string>();
  for await (const event of readStreamPaged(store, subjectStreamId(subject), { pageSize })) {
    const data = event.data as { familyId?: unknown; familyIds?: unknown } | null;
    if (event.type === 'FamilyLinkedToSubject' && typeof data?.familyId === 'string') ids.add(data.familyId);
    if (Array.isArray(data?.familyIds)) for (const id of data.familyIds) if (typeof id === 'string') ids.add(id);
  }
  return [...ids];
}

export interface SubjectEventsOptions {
  /** Also yield the subject stream's own events (links, SubjectRevoked…). Default true. */
  includeSubjectStream?: boolean;
  /** Upper bound on events buffered across all streams (default 4096). */
  bufferedEvents?: number;
}

/**
 * Every event of every family of the subject (plus the subject stream's own), merged by global
 * position. The subject stream lists the families; each family stream is read page by page, with
 * pages small enough that all the buffers together stay under `bufferedEvents`.
 */
export async function* subjectEvents(store: EventStore, subject: string, options: SubjectEventsOptions = {}): AsyncGenerator<RecordedEvent> {
  const familyIds = await subjectFamilyIds(store, subject);
  const streams = familyIds.map(familyStreamId);
  if (options.includeSubjectStream !== false) streams.unshift(subjectStreamId(subject));
  if (streams.length === 0) return;
  const budget = options.bufferedEvents ?? 4096;
  const pageSize = Math.max(8, Math.min(500, Math.floor(budget / streams.length)));
  yield* mergeByPosition(streams.map((id) => readStreamPaged(store, id, { pageSize })));
}

/** The subject's events with occurredAt in [from, to], in global order, as public events. */
export async function* subjectTimeline(store: EventStore, subject: string, range: TimeRange = {}): AsyncGenerator<PublicEvent> {
  const keep = inRange({
    from: range.from === undefined ? undefined : toEpochMs(range.from),
    to: range.to === undefined ? undefined : toEpochMs(range.to),
  });
  for await (const event of subjectEvents(store, subject)) if (keep(event)) yield toPublicEvent(event);
}

/**
 * The states, as of `at`, of the families of a subject (each folded from its own stream). For the
 * CLI's `replay --subject --at`.
 */
export async function subjectFamilyStatesAt(store: EventStore, subject: string, at: Instant): Promise<FamilyView[]> {
  const ms = toEpochMs(at);
  const views: FamilyView[] = [];
  for (const familyId of await subjectFamilyIds(store, subject)) {
    const folder = new FamilyStateAt(ms);
    for await (const event of familyEvents(store, familyId)) folder.apply(event);
    const view = folder.view();
    if (view) views.push(view);
  }
  return views;
}
