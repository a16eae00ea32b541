import type { RecordedEvent } from './event-store';

/**
 * The events this store appended lately: one run of consecutive positions, up to the last one it
 * appended. For the embedded store, where nothing else writes the events and the subscribers
 * (projections, anomaly engine, revocation feed) all run in this process right behind the appends:
 * a read inside the run, or at its end, is answered from memory instead of by a statement on the one
 * PGlite connection the HTTP requests wait behind.
 *
 * The store adds each append's events as its statement returns, before any caller hears of it, and
 * the statements return in position order; a failed statement may have used positions up (a gap), so
 * the store calls forget(). A position that does not follow the run starts a new one. A read that
 * starts before the run goes to the database.
 */
export class RecentEvents {
  /** events[i].position === events[0].position + i */
  private events: RecordedEvent[] = [];

  constructor(private readonly capacity: number) {}

  /** One append's events, in position order, as the database holds them (readers share `data` and `metadata`). */
  add(appended: readonly RecordedEvent[]): void {
    for (const e of appended) {
      const last = this.events[this.events.length - 1];
      if (last && e.position !== last.position + 1) this.events = [];
      this.events.push(e);
    }
    if (this.events.length > this.capacity * 2) this.events = this.events.slice(-this.capacity);
  }

  /** After a failed append: the positions it may have used are unknown. */
  forget(): void {
    this.events = [];
  }

  /** Events after `after`, at most maxCount (null: no limit), each a copy; undefined when `after` is not in the run or at its end. */
  run(after: number, maxCount: number | null): RecordedEvent[] | undefined {
    if (this.events.length === 0) return undefined;
    const from = after + 1 - this.events[0].position;
    if (from < 0 || from > this.events.length) return undefined;
    const to = maxCount === null ? this.events.length : Math.min(this.events.length, from + maxCount);
    const events = new Array<RecordedEvent>(to - from);
    for (let i = from; i < to; i++) events[i - from] = { ...this.events[i] }; // each reader gets event objects of its own
    return events;
  }
}
