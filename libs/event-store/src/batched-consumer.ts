import type { EventStore, RecordedEvent, SubscribeOptions, Subscription } from './event-store';

export interface BatchedConsumerHooks {
  /** Position to resume after; read again on every (re)start, so it should be the committed checkpoint. */
  resumeAfter(): Promise<number>;
  /**
   * Makes one batch durable. Batches come one at a time, in position order; throwing restarts.
   * `upTo`: the position the batch takes the consumer to — its last event's, or further when the
   * subscription read past events of other types (`types`); only then can a batch be empty.
   */
  commit(events: RecordedEvent[], upTo: number): Promise<void>;
  /** Before every (re)start, e.g. connect a producer. */
  prepare?(): Promise<void>;
  /** After a failure, before the pause, e.g. drop a broken producer. */
  reset?(): Promise<void>;
  onError?(error: unknown): void;
  /** Pause before restarting after this error; default 500 ms. */
  retryDelayMs?(error: unknown): number;
}

/**
 * Follows the store's global order (catch-up, then live) and hands it over in batches: whatever the
 * subscription has ready goes out together (no timer), up to `batchSize`. Any failure drops the
 * uncommitted buffer and restarts from `resumeAfter()` after a pause, so a consumer that commits its
 * checkpoint with (or after) its side effects never skips an event. Projections, the Kafka relay and
 * in-process transports all consume the store this way.
 */
export class BatchedConsumer {
  private subscription?: Subscription;
  private buffer: RecordedEvent[] = [];
  /** How far the subscription has read (events handed over or passed); the next batch goes up to it. */
  private readTo = 0;
  private committedTo = 0;
  private flushing: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private stopped = true;
  private generation = 0;
  private restartTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: EventStore,
    private readonly hooks: BatchedConsumerHooks,
    private readonly batchSize = 500,
    /** SubscribeOptions.prompt and .types for its subscription. */
    private readonly subscribeOptions: Pick<SubscribeOptions, 'prompt' | 'types'> = {},
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.subscribe();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.restartTimer);
    await this.subscription?.close().catch(() => undefined);
    await this.flushing.catch(() => undefined);
  }

  private async subscribe(): Promise<void> {
    const generation = ++this.generation;
    this.buffer = [];
    await this.hooks.prepare?.();
    const after = await this.hooks.resumeAfter();
    if (generation !== this.generation) return;
    this.readTo = this.committedTo = after;
    this.subscription = this.store.subscribeToAll(
      async (event) => {
        if (generation !== this.generation) return;
        this.buffer.push(event);
        this.readTo = event.position;
        if (this.buffer.length >= this.batchSize) await this.flush(generation);
        else this.scheduleFlush();
      },
      {
        ...this.subscribeOptions,
        after,
        batchSize: this.batchSize,
        onError: (error) => this.fail(error, generation),
        onPassed: (position) => {
          if (generation !== this.generation) return;
          this.readTo = position;
          this.scheduleFlush();
        },
      },
    );
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the subscription has handed over what it has ready: batches form without a timer. The
    // buffer is always the current generation's, so flush that one: a flush scheduled before a
    // restart must not swallow the first batch after it (it would wait for the next event).
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush(this.generation).catch(() => undefined);
    });
  }

  private flush(generation: number): Promise<void> {
    // Chained so batches commit in order; a failed batch must not wedge the chain for later ones.
    this.flushing = this.flushing.catch(() => undefined).then(async () => {
      if (generation !== this.generation || this.readTo <= this.committedTo) return;
      const events = this.buffer;
      const upTo = this.readTo;
      this.buffer = [];
      try {
        await this.hooks.commit(events, upTo);
        if (generation === this.generation) this.committedTo = upTo;
      } catch (error) {
        this.fail(error, generation);
        throw error;
      }
    });
    return this.flushing;
  }

  private fail(error: unknown, generation: number): void {
    if (generation !== this.generation || this.stopped) return;
    this.generation++; // ignore whatever the old subscription still delivers
    this.hooks.onError?.(error);
    const old = this.subscription;
    this.restartTimer = setTimeout(() => {
      void (async () => {
        await old?.close().catch(() => undefined);
        await this.hooks.reset?.().catch(() => undefined);
        if (this.stopped) return;
        await this.subscribe().catch((e) => this.fail(e, this.generation));
      })();
    }, this.hooks.retryDelayMs?.(error) ?? 500);
    this.restartTimer.unref();
  }
}
