/**
 * Group commit for the store's hot calls. Requests that arrive while `maxInFlight` batches are
 * running wait and then go together as one batch: no timer, so a lone request is sent at once, and
 * under load the round trips, socket writes and (for appends) commits are shared by many callers.
 * Each caller still gets its own result or error.
 *
 * `gather: 'immediate'`: a request waits for the end of this turn of the event loop (setImmediate),
 * so the requests that one I/O phase delivered go as one batch even with nothing in flight. For a
 * database in this thread (PGlite), whose query finishes before the next request is even parsed, it
 * is the only way batches form; across a socket it puts the loads one refresh starts side by side
 * (its family, then its client a few promise hops later) in one statement. A process.nextTick
 * gather did not: called from a request handler's synchronous code the tick runs before those
 * promise jobs, so each load went alone (bench/refresh/README.md, "One load a refresh").
 */
export class Batcher<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private gathering = false;

  constructor(
    /** Runs one batch; returns one settled result per item, in order. */
    private readonly run: (items: I[]) => Promise<PromiseSettledResult<O>[]>,
    private readonly options: { maxInFlight: number; maxBatch: number; gather?: 'immediate' },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.options.gather === undefined) this.pump();
      else if (!this.gathering) {
        this.gathering = true;
        setImmediate(() => {
          this.gathering = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      this.run(batch.map((b) => b.item))
        .then(
          (results) =>
            batch.forEach((b, i) => {
              const r = results[i];
              if (r.status === 'fulfilled') b.resolve(r.value);
              else b.reject(r.reason);
            }),
          (error: unknown) => batch.forEach((b) => b.reject(error)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
