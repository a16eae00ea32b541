/**
 * A consumer of the store in a worker thread of its own (the projection runner, the anomaly engine,
 * the Kafka pipeline, where the store allows it: placeConsumer): its round trips to the database
 * then do not wait behind the API's requests in the main event loop. The thread opens the store
 * again from `capabilities.threadLocation` (reopenEventStore).
 *
 * Protocol: the thread posts `started` once it runs (or `error` and exits when it cannot start),
 * then messages of its own and `error`s; the main thread posts `stop` (the thread closes what it
 * opened and ends) and messages of its own. A thread that dies after it started is started again
 * after a second: the consumers keep their checkpoints in the database, so they resume from them.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { OpenedStore, ThreadLocation } from './capabilities';

/** Something that consumes the store until stopped: a projection runner, a relay, a pipeline, or a thread running one. */
export interface StoreConsumer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Where a consumer of the store runs, decided here and nowhere else: in a worker thread of its own
 * when the store can be opened again there (`capabilities.threadLocation`: PostgreSQL), else in this
 * thread, on the store itself (PGlite lives in this thread's memory; EventStoreDB's subscriptions
 * arrive over gRPC to this process). `thread` builds the consumer that runs in a thread (usually a
 * SupervisedThread given the location in its data), `inline` the one that runs here.
 */
export function placeConsumer<T extends StoreConsumer>(store: OpenedStore, place: { thread(location: ThreadLocation): T; inline(): T }): T {
  const location = store.capabilities.threadLocation;
  return location ? place.thread(location) : place.inline();
}

export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
}

type Lifecycle = { kind: 'started'; position?: number } | { kind: 'error'; error: ThreadError } | { kind: 'stop' };

const RESPAWN_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;

export function describeError(e: unknown): ThreadError {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };
}

const asError = (e: ThreadError) => Object.assign(new Error(e.message), e);

export interface SupervisedThreadHandlers<In> {
  /** A message of the thread's own (not started/error). */
  message(m: In): void;
  /** Each time the thread (re)starts. */
  started?(m: { position?: number }): void;
  /** Errors the thread reports after it started, and its deaths (it is then started again). */
  error(e: Error): void;
}

/** The main thread's side: starts the thread, restarts it when it dies, stops it. */
export class SupervisedThread<In extends { kind: string }, Out extends { kind: string } = never> {
  private worker: Worker | undefined;
  private stopping = false;
  private respawn: NodeJS.Timeout | undefined;

  /** `entry`: the worker module's path without extension (next to the caller: path.join(__dirname, 'x.worker')). */
  constructor(
    private readonly name: string,
    private readonly entry: string,
    private readonly data: unknown,
    private readonly handlers: SupervisedThreadHandlers<In>,
  ) {}

  /** Resolves once the thread posted `started`; rejects with its reason when it cannot start. */
  start(): Promise<void> {
    this.stopping = false;
    return new Promise<void>((resolve, reject) => {
      const worker = spawnWorker(this.entry, this.data);
      this.worker = worker;
      let started = false;
      worker.on('message', (m: In | Lifecycle) => {
        if (m.kind === 'started') {
          started = true;
          this.handlers.started?.(m as { position?: number });
          resolve();
        } else if (m.kind === 'error') {
          const error = asError((m as { error: ThreadError }).error);
          if (started) this.handlers.error(error);
          else reject(error);
        } else this.handlers.message(m as In);
      });
      worker.on('error', (error) => (started ? this.handlers.error(error) : reject(error)));
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        if (!started) return reject(new Error(`${this.name} thread exited with code ${code} before it started`));
        if (this.stopping) return;
        this.handlers.error(new Error(`${this.name} thread exited with code ${code}; starting it again`));
        this.scheduleRespawn();
      });
    });
  }

  /** Starts the thread again in a second, and again after that for as long as it cannot start (the database is down). */
  private scheduleRespawn(): void {
    this.respawn = setTimeout(() => {
      if (this.stopping) return;
      this.start().catch((error) => {
        this.handlers.error(error);
        if (!this.stopping) this.scheduleRespawn();
      });
    }, RESPAWN_DELAY_MS);
  }

  /** Posts a message to the running thread (dropped when there is none: it is restarting). */
  post(m: Out): void {
    this.worker?.postMessage(m);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.respawn);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ kind: 'stop' } satisfies Lifecycle);
    const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** For tests: kill the thread as a crash would. */
  kill(): Promise<number> | undefined {
    return this.worker?.terminate();
  }
}

/**
 * The thread's side: runs `main(workerData, post)`, which starts the work and returns how to stop
 * it; posts `started` (with what `main` returns as position), forwards messages to `onMessage`, and
 * on `stop` calls the returned stop and lets the thread end.
 */
export function runThread<D, Out extends { kind: string }, In extends { kind: string } = never>(
  main: (data: D, post: (m: Out | Lifecycle) => void) => Promise<{ stop(): Promise<void>; position?: number; onMessage?(m: In): void }>,
): void {
  const port = parentPort!;
  const post = (m: Out | Lifecycle) => port.postMessage(m);
  main(workerData as D, post).then(
    (running) => {
      port.on('message', (m: In | Lifecycle) => {
        if (m.kind !== 'stop') return running.onMessage?.(m as In);
        // Nothing else holds the event loop open: the thread ends once the work is stopped.
        void running
          .stop()
          .catch((e) => post({ kind: 'error', error: describeError(e) }))
          .finally(() => port.close());
      });
      post({ kind: 'started', position: running.position });
    },
    (error) => {
      post({ kind: 'error', error: describeError(error) });
      process.exit(1);
    },
  );
}

/**
 * Starts `work` on the store a thread opened: if it cannot start, it is stopped (what it did start
 * is let go) and the store closed before the error goes on; the returned stop stops it, then closes
 * the store.
 */
export async function startOnStore(store: { close(): Promise<void> }, work: StoreConsumer): Promise<{ stop(): Promise<void> }> {
  try {
    await work.start();
  } catch (error) {
    await work.stop().catch(() => undefined);
    await store.close();
    throw error;
  }
  return {
    stop: async () => {
      await work.stop();
      await store.close();
    },
  };
}

const threadPreloads: string[] = [];

/**
 * A module every store thread started from now on requires before its entry (as `--require`), so it
 * runs before the thread's own imports: the app's tracing set-up, which must see pg and kafkajs load.
 */
export function preloadInStoreThreads(modulePath: string): void {
  if (!threadPreloads.includes(modulePath)) threadPreloads.push(modulePath);
}

/**
 * A worker on `entry` (path without extension): its compiled .js, else its .ts through scripts/ts-worker.js.
 * `preloads: false` for a thread that talks to nothing the preloads are for (the signing thread).
 */
export function spawnWorker(entry: string, data: unknown, options: { preloads?: boolean } = {}): Worker {
  const compiled = `${entry}.js`;
  // Without preloads the thread inherits the process's options; with them, those plus the preloads.
  const preloads = options.preloads === false ? [] : threadPreloads;
  const execArgv = preloads.length > 0 ? [...process.execArgv, ...preloads.flatMap((m) => ['--require', m])] : undefined;
  if (existsSync(compiled)) return new Worker(compiled, { workerData: data, execArgv });
  // Running from TypeScript sources (jest compiles them in its own thread only): scripts/ts-worker.js
  // compiles the worker's modules as they load, with the project's .swcrc.
  return new Worker(path.resolve(__dirname, '../../../scripts/ts-worker.js'), { workerData: { ...(data as object), tsEntry: `${entry}.ts` }, execArgv });
}
