import type { OpenedStore } from '@token-ledger/event-store';

/**
 * Fault injection around a real store: once armed, the k-th append fails like a lost connection
 * (which the ledger answers with 503) — either before it reaches the store ('lost': nothing
 * written) or after it committed ('ackLost': written, but the caller never hears so). Fires once,
 * then the store behaves again. Everything else goes straight to the store.
 */
export class FailingAppends {
  private armed?: { k: number; mode: 'lost' | 'ackLost'; seen: number };
  private recording = false;
  /** Streams appended to (written) since the last arm(), in order, until disarm(). */
  readonly appendedStreams: string[] = [];
  fired = false;

  arm(k: number, mode: 'lost' | 'ackLost'): void {
    this.armed = { k, mode, seen: 0 };
    this.recording = true;
    this.appendedStreams.length = 0;
    this.fired = false;
  }

  disarm(): void {
    this.armed = undefined;
    this.recording = false;
  }

  wrap(store: OpenedStore): OpenedStore {
    const append: OpenedStore['append'] = async (streamId, events, options) => {
      const armed = this.armed;
      const failing = armed !== undefined && ++armed.seen === armed.k;
      if (failing && armed.mode === 'lost') {
        this.armed = undefined;
        this.fired = true;
        throw blip();
      }
      const result = await store.append(streamId, events, options);
      if (failing) {
        this.appendedStreams.push(streamId);
        this.armed = undefined;
        this.fired = true;
        throw blip();
      }
      if (this.recording) this.appendedStreams.push(streamId);
      return result;
    };
    return new Proxy(store, {
      get(target, property) {
        if (property === 'append') return append;
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
}

/** What pg raises when the server goes away mid-query. */
function blip(): Error {
  return Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
}
