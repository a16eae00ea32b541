/**
 * SqlClient whose PGlite lives in a worker thread of its own (pglite-thread.worker.ts), so the
 * database's work — its WASM and its protocol and row parsing, about half of the main thread under
 * load when PGlite ran there (bench/refresh/README.md) — is off the HTTP event loop.
 *
 * Protocol: the main thread posts arrays of calls `{id, op, …}` (the calls made before its next
 * microtask checkpoint go as one message) and gets arrays of replies `{id, rows}` or `{id, error}` back. A
 * transaction is `begin` (its reply is the transaction's outcome), then queries tagged with its
 * `tx`, then `end` with commit or rollback; PGlite holds other callers' statements until it ends,
 * as it did in this thread. Errors cross with their SQLSTATE `code` and the other fields pg and
 * PGlite set (constraint, detail…), which the store maps (unique violations and the like).
 *
 * A thread that dies is fatal to the client: every call in flight and every later call rejects with
 * a store-unavailable error (SQLSTATE 57P02), and `onDeath` is told so the process can exit and be
 * restarted. No acknowledged write is lost: a commit is only answered once PGlite returned from it,
 * and PGlite writes through to the files of the data directory as it runs (the OS has them even if
 * the thread or the process dies right after).
 */
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { SqlClient, SqlQueryable } from './sql-client';
import { spawnWorker } from './store-thread';

export interface PgliteThreadData {
  pgdata: string;
}

export type PgliteCall =
  | { op: 'query'; id: number; text: string; params?: unknown[]; tx?: number }
  | { op: 'exec'; id: number; text: string }
  | { op: 'begin'; id: number; tx: number }
  | { op: 'end'; tx: number; commit: boolean }
  | { op: 'close'; id: number };

export interface WireError {
  name: string;
  message: string;
  stack?: string;
  fields?: Record<string, string | number | boolean>;
}

export type PgliteReply = { id: number; rows: unknown[] } | { id: number; error: WireError };

type Started = { started: true } | { started: false; error: WireError };

function fromWire(wire: WireError): Error {
  const error = Object.assign(new Error(wire.message), wire.fields ?? {});
  error.name = wire.name;
  if (wire.stack) error.stack = wire.stack;
  return error;
}

/** SQLSTATE 57P02 crash_shutdown: isStoreUnavailable takes it for "try again later" (503), never a bug. */
function threadDied(reason: string): Error {
  return Object.assign(new Error(`embedded database thread died (${reason})`), { code: '57P02' });
}

interface Pending {
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

export interface ThreadedPgliteOptions {
  /** After the thread ended on close(). */
  onClose(): void;
  /** The thread died while the client was open (its calls are already rejected). */
  onDeath(error: Error): void;
}

export class ThreadedPgliteClient implements SqlClient {
  private readonly pending = new Map<number, Pending>();
  private outbox: PgliteCall[] = [];
  private nextId = 1;
  private nextTx = 1;
  private dead: Error | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  /** Starts the thread and opens PGlite on `pgdata` there; rejects with PGlite's error when it cannot open. */
  static async start(pgdata: string, options: ThreadedPgliteOptions): Promise<ThreadedPgliteClient> {
    const worker = spawnWorker(path.join(__dirname, 'pglite-thread.worker'), { pgdata } satisfies PgliteThreadData);
    const listeners: Record<string, Parameters<Worker['removeListener']>[1]> = {};
    const started = await new Promise<Started>((resolve, reject) => {
      worker.once('message', (listeners.message = resolve));
      worker.once('error', (listeners.error = reject));
      worker.once('exit', (listeners.exit = (code: number) => reject(new Error(`embedded database thread exited with code ${code} before it started`))));
    }).finally(() => {
      // Only ours: the Worker keeps listeners of its own.
      for (const [event, listener] of Object.entries(listeners)) worker.removeListener(event, listener);
    });
    if (!started.started) {
      await new Promise((resolve) => worker.once('exit', resolve));
      throw fromWire(started.error);
    }
    return new ThreadedPgliteClient(worker, options);
  }

  private constructor(
    private readonly worker: Worker,
    private readonly options: ThreadedPgliteOptions,
  ) {
    // Held only while calls are in flight: an idle, forgotten client does not keep the process alive.
    worker.unref();
    worker.on('message', (replies: PgliteReply[]) => {
      for (const r of replies) this.settle(r);
    });
    worker.on('error', (error) => this.die(`${error.name}: ${error.message}`));
    this.exited = new Promise((resolve) =>
      worker.once('exit', (code) => {
        this.die(`exit code ${code}`);
        resolve();
      }),
    );
  }

  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]> {
    return this.call({ op: 'query', id: 0, text, params }) as Promise<R[]>;
  }

  async exec(script: string): Promise<void> {
    await this.call({ op: 'exec', id: 0, text: script });
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const tx = this.nextTx++;
    const outcome = this.call({ op: 'begin', id: 0, tx });
    // Awaited below; a thread that dies meanwhile must not count as an unhandled rejection.
    outcome.catch(() => undefined);
    const scope: SqlQueryable = {
      query: <R>(text: string, params?: unknown[]) => this.call({ op: 'query', id: 0, text, params, tx }) as Promise<R[]>,
    };
    let result: T;
    try {
      result = await fn(scope);
    } catch (error) {
      this.send({ op: 'end', tx, commit: false });
      await outcome.catch(() => undefined);
      throw error;
    }
    this.send({ op: 'end', tx, commit: true });
    await outcome;
    return result;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      const closing = this.dead ? Promise.resolve([]) : this.call({ op: 'close', id: 0 });
      // From here on calls are refused, and the thread's exit is the end that was asked for.
      this.closing = true;
      try {
        await closing;
      } catch {
        // PGlite did not close cleanly: the thread is ended anyway (the files are as after a crash).
        await this.worker.terminate();
      } finally {
        await this.exited;
        this.options.onClose();
      }
    })();
    return this.closed;
  }

  /** For tests: end the thread as a crash would. */
  kill(): Promise<number> {
    return this.worker.terminate();
  }

  private call(c: PgliteCall & { id: number }): Promise<unknown[]> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new Error('PGlite is closed'));
    return new Promise<unknown[]>((resolve, reject) => {
      c.id = this.nextId++;
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(c.id, { resolve, reject });
      this.send(c);
    });
  }

  /**
   * Calls made together go together: one message, one wake-up of the thread. Sent at the next
   * microtask checkpoint, not at the end of the turn: the store's batchers already gather a turn's
   * appends and loads into one statement each (on setImmediate), and a flush on setImmediate from
   * there waited a whole further turn of this busy loop — 1.2 ms of every append's round trip, with
   * PGlite's thread idle meanwhile (bench/refresh/README.md, "PGlite's thread kept busy").
   */
  private send(c: PgliteCall): void {
    if (this.dead) return;
    if (this.outbox.length === 0) queueMicrotask(() => this.flush());
    this.outbox.push(c);
  }

  private flush(): void {
    const calls = this.outbox;
    this.outbox = [];
    if (!this.dead && calls.length > 0) this.worker.postMessage(calls);
  }

  private settle(r: PgliteReply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('error' in r) p.reject(fromWire(r.error));
    else p.resolve(r.rows);
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = threadDied(reason);
    this.outbox = [];
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.dead);
    if (!this.closing) this.options.onDeath(this.dead);
  }
}
