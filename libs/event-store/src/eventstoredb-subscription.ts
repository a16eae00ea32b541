/**
 * Catch-up-then-live subscription for the EventStoreDB adapter, on the client's own subscribeToAll
 * (server-side stream-name filter, so system streams, side streams and other namespaces never
 * cross the wire). Same contract as PollingSubscription: one handler call at a time in position
 * order, `caughtUp` once everything that existed at subscribe() time was handled, a handler error
 * stops it (onError), a connection error resubscribes from the last handled position.
 */
import type { ReadPosition } from '@eventstore/db-client';
import type { RecordedEvent, SubscribeOptions, Subscription } from './event-store';

/** What the subscription needs from the store (kept narrow so the store stays the only client user). */
export interface EventStoreDbSubscriptionSource {
  headPosition(): Promise<number>;
  /** A position the server accepts as a start, at or before `after` (START when there is none). */
  resolveStart(after: number): Promise<ReadPosition>;
  /** The live subscription from `start` (exclusive), as an async iterable of ledger events or skips. */
  openLive(start: ReadPosition): LiveFeed;
}

export interface LiveFeed extends AsyncIterable<RecordedEvent | undefined> {
  /** Stops the server-side subscription; the iteration ends or throws soon after. */
  stop(): void;
}

export interface EventStoreDbSubscriptionOptions extends SubscribeOptions {
  onError?: (error: unknown) => void;
  /** Pause before resubscribing after a connection error (default 1000 ms). */
  retryDelayMs?: number;
}

/** Marks an error as the handler's, so it is told apart from the feed's. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

export class EventStoreDbSubscription implements Subscription {
  readonly caughtUp: Promise<void>;
  private current: number;
  private closed = false;
  private caughtUpSettled = false;
  private resolveCaughtUp!: () => void;
  private rejectCaughtUp!: (error: unknown) => void;
  private feed: LiveFeed | undefined;
  private wakeWaiter: (() => void) | undefined;
  private warned = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly source: EventStoreDbSubscriptionSource,
    private readonly handler: (event: RecordedEvent) => Promise<void>,
    private readonly options: EventStoreDbSubscriptionOptions = {},
    private readonly onClosed?: (subscription: EventStoreDbSubscription) => void,
  ) {
    this.current = options.after ?? 0;
    this.caughtUp = new Promise<void>((resolve, reject) => {
      this.resolveCaughtUp = resolve;
      this.rejectCaughtUp = reject;
    });
    // Nobody is obliged to await caughtUp; a rejection there must not become an unhandled rejection.
    this.caughtUp.catch(() => undefined);
    this.loop = this.run();
  }

  get position(): number {
    return this.current;
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.settleCaughtUp(new Error('subscription closed before it caught up'));
      this.feed?.stop();
      this.wake();
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    try {
      const target = await this.retrying(() => this.source.headPosition());
      if (target === undefined) return;
      if (this.current >= target) this.settleCaughtUp();
      let start = await this.retrying(() => this.source.resolveStart(this.current));
      while (start !== undefined && !this.closed) {
        let feed: LiveFeed | undefined;
        try {
          feed = this.source.openLive(start);
          this.feed = feed;
          for await (const event of feed) {
            if (this.closed) break;
            // Skips (filtered-out records) and anything at or before the start position.
            if (!event || event.position <= this.current) continue;
            try {
              await this.handler(event);
            } catch (error) {
              throw new HandlerFailure(error);
            }
            this.current = event.position;
            this.warned = false;
            if (this.current >= target) this.settleCaughtUp();
          }
        } catch (error) {
          if (error instanceof HandlerFailure) throw error;
          if (!this.closed) this.warnOnce(`subscription dropped, resubscribing: ${messageOf(error)}`);
        } finally {
          this.feed = undefined;
          feed?.stop();
        }
        if (this.closed) return;
        // The feed ended or failed (server restart, leader change): resume after the last handled event.
        await this.pause(this.options.retryDelayMs ?? 1000);
        start = await this.retrying(() => this.source.resolveStart(this.current));
      }
    } catch (error) {
      // Only handler errors get here: the position stays at the last event the handler finished.
      const cause = error instanceof HandlerFailure ? error.error : error;
      this.closed = true;
      this.settleCaughtUp(cause ?? new Error('subscription handler failed'));
      try {
        if (this.options.onError) this.options.onError(cause);
        else process.emitWarning(`event store subscription stopped: ${messageOf(cause)}`);
      } catch {
        // An onError that throws must not turn into an unhandled rejection of close().
      }
    } finally {
      this.onClosed?.(this);
    }
  }

  /** Store reads are retried (after a pause) rather than ending the subscription; undefined once closed. */
  private async retrying<T>(read: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      try {
        return await read();
      } catch (error) {
        if (this.closed) return undefined;
        this.warnOnce(`read failed, retrying: ${messageOf(error)}`);
        await this.pause(this.options.retryDelayMs ?? 1000);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), ms);
      timer.unref();
      this.wakeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const waiter = this.wakeWaiter;
    this.wakeWaiter = undefined;
    waiter?.();
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    process.emitWarning(`event store subscription (EventStoreDB): ${message}`);
  }

  private settleCaughtUp(error?: unknown): void {
    if (this.caughtUpSettled) return;
    this.caughtUpSettled = true;
    if (error === undefined) this.resolveCaughtUp();
    else this.rejectCaughtUp(error);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
