import type { OpenedStore } from '@token-ledger/event-store';
import { withOverrides } from './store-proxy';

/** What a "process" sees once it has died: nothing it started afterwards reaches the store. */
export class ProcessCrash extends Error {
  constructor(what: string) {
    super(`process crashed (${what})`);
    this.name = 'ProcessCrash';
  }
}

/**
 * A process that dies at its k-th append: 'before' it reaches the store (not written) or 'after' it
 * committed (written, nobody hears of it). From then on every call of this process into the store
 * fails — reads, appends, and the answers of calls that were in flight — so no further step of any
 * command runs, as after a SIGKILL. Without `at` it only counts appends (to learn how many a command
 * makes). Unlike FailingAppends (a blip the process survives), the process does not go on.
 */
export class CrashingStore {
  appends = 0;
  crashed = false;

  constructor(private readonly at?: { k: number; mode: 'before' | 'after' }) {}

  wrap(store: OpenedStore): OpenedStore {
    const guard = (what: string) => {
      if (this.crashed) throw new ProcessCrash(what);
    };
    const append: OpenedStore['append'] = async (streamId, events, options) => {
      guard('append');
      const n = ++this.appends;
      if (this.at?.k === n && this.at.mode === 'before') {
        this.crashed = true;
        throw new ProcessCrash(`append ${n}, not written`);
      }
      const result = await store.append(streamId, events, options);
      guard('append acknowledged after the crash');
      if (this.at?.k === n) {
        this.crashed = true;
        throw new ProcessCrash(`append ${n}, written`);
      }
      return result;
    };
    const read =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>, what: string) =>
      async (...args: A): Promise<R> => {
        guard(what);
        const result = await fn(...args);
        guard(`${what} answered after the crash`);
        return result;
      };
    const overrides: Partial<Record<keyof OpenedStore, unknown>> = {
      append,
      loadStream: read(store.loadStream.bind(store), 'loadStream'),
      readStream: read(store.readStream.bind(store), 'readStream'),
      readAll: read(store.readAll.bind(store), 'readAll'),
      headPosition: read(store.headPosition.bind(store), 'headPosition'),
      // The store outlives the process: closing it is the next process's business.
      close: async () => undefined,
    };
    return withOverrides(store, overrides);
  }
}
