/**
 * Catch-up-then-live subscription over any store that can page its $all stream by position.
 * Shared by every SQL adapter, so delivery order, exactly-once-per-subscription and close semantics
 * are written (and tested) once.
 *
 * Delivery never depends on a wake-up arriving: wake-ups (in-process appends, LISTEN/NOTIFY) only
 * make it prompt, and a fallback poll guarantees progress if a notification is lost. The store
 * guarantees position order = commit order, so "read everything after my position" never skips.
 */
import type { ReadAllOptions, RecordedEvent, SubscribeOptions, Subscription } from './event-store';

export interface SubscriptionSource {
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  headPosition(): Promise<number>;
  /**
   * For SubscribeOptions.types, where the source can filter itself (SQL): the events of those types
   * after `after` (at most maxCount, in order), how far it looked (`scannedTo`: every event up to it
   * of those types is in `events`), and whether there is more to read now (`more`: it stopped
   * before the head). Without it the subscription reads every event and filters here.
   */
  readAllOfTypes?(options: { after: number; maxCount: number; types: readonly string[] }): Promise<{ events: RecordedEvent[]; scannedTo: number; more: boolean }>;
}

/** Fan-out of "something may have been appended" signals to the running subscriptions. */
export class WakeHub {
  private readonly listeners = new Set<() => void>();

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  wake(): void {
    for (const listener of [...this.listeners]) listener();
  }

  get size(): number {
    return this.listeners.size;
  }
}

export interface PollingSubscriptionOptions extends SubscribeOptions {
  onError?: (error: unknown) => void;
  /** Fallback poll period; wake-ups normally beat it. */
  pollIntervalMs?: number;
  /**
   * Once caught up, wait this long after a wake-up before reading (default 0: at once), so the
   * appends of that while are read, and handed over, together. For a subscriber on an idle event
   * loop (a worker thread), which would otherwise read once per append and pay every consumer's
   * per-batch round trips each time.
   */
  wakeDelayMs?: number | (() => number);
}

export const DEFAULT_POLL_INTERVAL_MS = 250;
export const DEFAULT_BATCH_SIZE = 500;

export class PollingSubscription implements Subscription {
  readonly caughtUp: Promise<void>;
  private current: number;
  private closed = false;
  private wakePending = false;
  private wakeWaiter: (() => void) | undefined;
  private caughtUpSettled = false;
  private resolveCaughtUp!: () => void;
  private rejectCaughtUp!: (error: unknown) => void;
  private readonly unregister: () => void;
  private readonly timer: NodeJS.Timeout;
  private readonly loop: Promise<void>;
  private readonly batchSize: number;
  private readWarned = false;

  constructor(
    private readonly source: SubscriptionSource,
    wakeups: WakeHub,
    private readonly handler: (event: RecordedEvent) => Promise<void>,
    private readonly options: PollingSubscriptionOptions = {},
    private readonly onClosed?: (subscription: PollingSubscription) => void,
  ) {
    this.current = options.after ?? 0;
    this.batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);
    this.caughtUp = new Promise<void>((resolve, reject) => {
      this.resolveCaughtUp = resolve;
      this.rejectCaughtUp = reject;
    });
    // Nobody is obliged to await caughtUp; a rejection there must not become an unhandled rejection.
    this.caughtUp.catch(() => undefined);
    this.unregister = wakeups.add(() => this.wake());
    this.timer = setInterval(() => this.wake(), options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    // A subscription alone must not keep a process (or a jest worker) alive.
    this.timer.unref();
    this.loop = this.run();
  }

  get position(): number {
    return this.current;
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.stopTimers();
      this.settleCaughtUp(new Error('subscription closed before it caught up'));
      this.wake();
    }
    await this.loop;
  }

  /** Wakes it now, from a source other than its hub (a store's prompt wake-ups). */
  nudge(): void {
    this.wake();
  }

  private wake(): void {
    this.wakePending = true;
    const waiter = this.wakeWaiter;
    this.wakeWaiter = undefined;
    waiter?.();
  }

  private waitForWake(): Promise<void> {
    if (this.wakePending || this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.wakeWaiter = resolve));
  }

  private async run(): Promise<void> {
    try {
      const target = await this.retrying(() => this.source.headPosition());
      if (target === undefined) return; // closed while the store was unreachable
      if (this.current >= target) this.settleCaughtUp();
      while (!this.closed) {
        // Cleared before reading: a wake-up that lands during the read triggers one more read.
        this.wakePending = false;
        const page = await this.retrying(() => this.readPage());
        if (page === undefined) return;
        for (const event of page.events) {
          if (this.closed) return;
          await this.handler(event);
          this.current = event.position;
          if (this.current >= target) this.settleCaughtUp();
        }
        if (page.scannedTo > this.current) {
          this.current = page.scannedTo;
          this.options.onPassed?.(this.current);
          if (this.current >= target) this.settleCaughtUp();
        }
        // A short page held everything committed when it was read, which was after `target`.
        if (page.short) {
          this.settleCaughtUp();
          await this.waitForWake();
          const { wakeDelayMs } = this.options;
          const delay = typeof wakeDelayMs === 'function' ? wakeDelayMs() : (wakeDelayMs ?? 0);
          if (delay > 0 && !this.closed) await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } catch (error) {
      // Only handler errors get here: the position stays at the last event the handler finished.
      this.closed = true;
      this.stopTimers();
      this.settleCaughtUp(error ?? new Error('subscription handler failed'));
      try {
        if (this.options.onError) this.options.onError(error);
        else process.emitWarning(`event store subscription stopped: ${messageOf(error)}`);
      } catch {
        // An onError that throws must not turn into an unhandled rejection of close().
      }
    } finally {
      this.stopTimers();
      this.onClosed?.(this);
    }
  }

  /** The next page: every event, or (SubscribeOptions.types) only those types and how far it looked. */
  private async readPage(): Promise<{ events: RecordedEvent[]; scannedTo: number; short: boolean }> {
    const after = this.current;
    const maxCount = this.batchSize;
    const { types } = this.options;
    if (types === undefined) {
      const events = await this.source.readAll({ after, maxCount });
      return { events, scannedTo: after, short: events.length < maxCount };
    }
    if (this.source.readAllOfTypes) {
      const { events, scannedTo, more } = await this.source.readAllOfTypes({ after, maxCount, types });
      return { events, scannedTo, short: !more };
    }
    const all = await this.source.readAll({ after, maxCount });
    return {
      events: all.filter((e) => types.includes(e.type)),
      scannedTo: all.length > 0 ? all[all.length - 1].position : after,
      short: all.length < maxCount,
    };
  }

  /**
   * Store reads are retried on the next wake-up or poll instead of killing the subscription: a
   * database restart must not silently stop a projection. Resolves undefined once closed.
   */
  private async retrying<T>(read: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      try {
        const result = await read();
        this.readWarned = false;
        return result;
      } catch (error) {
        if (!this.readWarned) {
          this.readWarned = true;
          process.emitWarning(`event store subscription: read failed, retrying: ${messageOf(error)}`);
        }
        this.wakePending = false;
        await this.waitForWake();
      }
    }
  }

  private settleCaughtUp(error?: unknown): void {
    if (this.caughtUpSettled) return;
    this.caughtUpSettled = true;
    if (error === undefined) this.resolveCaughtUp();
    else this.rejectCaughtUp(error);
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    this.unregister();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
