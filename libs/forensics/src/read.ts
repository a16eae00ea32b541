/**
 * Paged readers over the EventStore port: memory stays bounded by one or two pages whatever the
 * length of the history.
 */
import type { EventStore, RecordedEvent } from '@token-ledger/event-store';

export const DEFAULT_STREAM_PAGE = 500;
export const DEFAULT_ALL_PAGE = 1000;

/** A stream's events in revision order, one page at a time. */
export async function* readStreamPaged(
  store: EventStore,
  streamId: string,
  options: { fromRevision?: number; pageSize?: number } = {},
): AsyncGenerator<RecordedEvent> {
  const pageSize = Math.max(1, options.pageSize ?? DEFAULT_STREAM_PAGE);
  let from = options.fromRevision ?? 0;
  for (;;) {
    const page = await store.readStream(streamId, { fromRevision: from, maxCount: pageSize });
    for (const event of page) yield event;
    if (page.length < pageSize) return;
    from = page[page.length - 1].revision + 1;
  }
}

/**
 * Every event with after < position <= until (default: to the end as it is when each page is read),
 * page by page, in position order. The next page is fetched while the caller works on the current
 * one, so the store and the consumer overlap.
 */
export async function* readAllPages(
  store: EventStore,
  options: { after?: number; until?: number; pageSize?: number } = {},
): AsyncGenerator<RecordedEvent[]> {
  const pageSize = Math.max(1, options.pageSize ?? DEFAULT_ALL_PAGE);
  const until = options.until ?? Number.POSITIVE_INFINITY;
  let after = options.after ?? 0;
  if (after >= until) return;
  const fetch = (from: number): Promise<RecordedEvent[]> => {
    const p = store.readAll({ after: from, maxCount: pageSize });
    p.catch(() => undefined); // awaited below; this only keeps an abandoned prefetch from going unhandled
    return p;
  };
  let next: Promise<RecordedEvent[]> | undefined = fetch(after);
  while (next) {
    const page: RecordedEvent[] = await next;
    next = undefined;
    if (page.length === 0) return;
    const last = page[page.length - 1].position;
    const done = page.length < pageSize || last >= until;
    if (!done) {
      after = last;
      next = fetch(after);
    }
    yield last > until ? page.filter((e) => e.position <= until) : page;
    if (done) return;
  }
}

/** Every event in position order (see readAllPages). */
export async function* readAllPaged(
  store: EventStore,
  options: { after?: number; until?: number; pageSize?: number } = {},
): AsyncGenerator<RecordedEvent> {
  for await (const page of readAllPages(store, options)) yield* page;
}

/**
 * k-way merge of position-ordered sources into one position-ordered sequence (a binary heap of the
 * sources' heads). Memory: one pending event (plus its source's page) per source.
 */
export async function* mergeByPosition(sources: AsyncIterable<RecordedEvent>[], openConcurrency = 8): AsyncGenerator<RecordedEvent> {
  type Head = { event: RecordedEvent; it: AsyncIterator<RecordedEvent> };
  const heap: Head[] = [];
  const less = (a: Head, b: Head) => a.event.position < b.event.position;
  const push = (h: Head) => {
    heap.push(h);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  };
  const pop = (): Head => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  try {
    // Open the sources a few at a time: each first read is a round trip.
    for (let i = 0; i < iterators.length; i += openConcurrency) {
      const chunk = iterators.slice(i, i + openConcurrency);
      const firsts = await Promise.all(chunk.map((it) => it.next()));
      firsts.forEach((r, j) => {
        if (!r.done) push({ event: r.value, it: chunk[j] });
      });
    }
    while (heap.length > 0) {
      const head = pop();
      yield head.event;
      const r = await head.it.next();
      if (!r.done) push({ event: r.value, it: head.it });
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.().catch(() => undefined)));
  }
}
