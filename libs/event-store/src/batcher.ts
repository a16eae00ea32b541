/**
 * Group commit for the store's hot calls. Requests that arrive while `maxInFlight` batches are
 * running wait and then go together as one batch: no timer, so a lone request is sent at once, and
 * under load the round trips, socket writes and (for appends) commits are shared by many callers.
 * Each caller still gets its own result or error.
 *
 * `gather: 'immediate'` is for a database that runs in this thread (PGlite): its query finishes
 * before the next request is even parsed, so nothing ever waits for a batch in flight. A request
 * then waits for the end of this turn of the event loop (setImmediate), so the requests that one
 * I/O phase delivered go as one batch.
 *
 * `gather: 'tick'` is for a database across a socket (PostgreSQL): a request waits only until the
 * promise jobs queued with it have run (process.nextTick, no I/O, no timer), so the loads one
 * request starts side by side (a refresh's client and family) go as one query, while a lone
 * request still goes at once.
 */
export class Batcher<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private gathering = false;

  constructor(
    /** Runs one batch; returns one settled result per item, in order. */
    private readonly run: (items: I[]) => Promise<PromiseSettledResult<O>[]>,
    private readonly options: { maxInFlight: number; maxBatch: number; gather?: 'immediate' | 'tick' },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      const gather = this.options.gather;
      if (gather === undefined) this.pump();
      else if (!this.gathering) {
        this.gathering = true;
        const pump = () => {
          this.gathering = false;
          this.pump();
        };
        if (gather === 'immediate') setImmediate(pump);
        else process.nextTick(pump);
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
