import type fc from 'fast-check';
import { withOverrides } from './store-proxy';
import type { OpenedStore, SqlClient } from '@token-ledger/event-store';

/**
 * Hands the order of a process's store calls to fast-check's scheduler: each read and append waits
 * for its turn (a scheduled task), so the commands of one run interleave in the order fc picks, at
 * every await on the store. The calls themselves are real (PGlite); `act` lets each finish before
 * fc picks the next, so what is ready to run next does not depend on I/O timing.
 */
export class ScheduledCalls {
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  /** Calls released so far. */
  released = 0;

  constructor(
    private readonly s: fc.Scheduler,
    /** Told each time a call is released, before it runs (to start something at the n-th). */
    private readonly onRelease: (n: number) => void = () => undefined,
  ) {}

  /** For `s.waitFor(p, calls.act)`: releases one call, then waits until it (and what it started) is done. */
  readonly act = async (release: () => Promise<void>): Promise<void> => {
    await release();
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (this.inFlight === 0) return;
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  };

  private async call<T>(label: string, run: () => Promise<T>): Promise<T> {
    await this.s.schedule(Promise.resolve(label), label);
    this.onRelease(++this.released);
    this.inFlight++;
    try {
      return await run();
    } finally {
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  store(store: OpenedStore): OpenedStore {
    const overrides: Partial<Record<keyof OpenedStore, unknown>> = {
      append: (streamId: string, ...rest: Parameters<OpenedStore['append']> extends [string, ...infer R] ? R : never) =>
        this.call(`append ${streamId}`, () => store.append(streamId, ...rest)),
      loadStream: (streamId: string) => this.call(`load ${streamId}`, () => store.loadStream(streamId)),
      readStream: (streamId: string, options?: Parameters<OpenedStore['readStream']>[1]) => this.call(`read ${streamId}`, () => store.readStream(streamId, options)),
      headPosition: () => this.call('head', () => store.headPosition()),
      close: async () => undefined,
    };
    return withOverrides(store, overrides);
  }

  /** The read models' queries of the process, scheduled the same way (the family limit reads them). */
  sql(sql: SqlClient): SqlClient {
    return new Proxy(sql, {
      get: (target, property) => {
        if (property === 'query') return (text: string, params?: unknown[]) => this.call(`view ${text.slice(0, 40)}`, () => target.query(text, params));
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
}
