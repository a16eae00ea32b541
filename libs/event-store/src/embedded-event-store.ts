/**
 * Embedded adapter: PGlite (PostgreSQL compiled to WASM) persisted in a directory. Needs no service,
 * keeps its data across restarts, and runs the same SQL as the PostgreSQL adapter.
 *
 * Layout of dataDir: `pgdata/` (the PGlite cluster) and `token-ledger.lock` (owner pid). PGlite is a
 * single-connection, single-process database: two instances on one directory would corrupt it, so
 * open() refuses a directory that is already open in this process or locked by a live process.
 */
import type { PGlite as PGliteInstance } from '@electric-sql/pglite';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ThreadedPgliteClient } from './pglite-thread-client';
import { SqlClient, SqlQueryable } from './sql-client';
import { SqlEventStore } from './sql-event-store';
import { schemaScript } from './sql-schema';

export interface EmbeddedEventStoreOptions {
  dataDir: string;
  /** Fallback poll period of subscriptions (default 250 ms). */
  pollIntervalMs?: number;
  /**
   * Subscriptions are woken this long after an append, all at once (SqlEventStoreOptions.
   * gatherWakeupsMs; default 250 ms). The consumers run on this event loop, on the one PGlite
   * connection: woken at every append, they paid their per-batch statements per rotation (18.8
   * statements a rotation against 6.2 with a 50 ms delay; 100 ms gave +12 % rotations/s at 64 chains
   * over 50 ms, 250 ms another +11–18 % over 100 ms: a family rotated several times in one batch is
   * one row for rm_families; bench/refresh/README.md). Subscriptions opened with SubscribeOptions.prompt
   * (the SSF outbox, the revocation feed while an SSE connection listens) are woken at once anyway,
   * and a reader waiting for its own write (minPosition) wakes them at once (wakeSubscriptionsNow).
   */
  gatherWakeupsMs?: number;
  /**
   * PGlite in a worker thread of its own (ThreadedPgliteClient) or in this thread (false, the
   * default here, for tools and tests): in the thread, the database's work leaves the HTTP event
   * loop. `serve` asks for it unless LEDGER_EMBEDDED_THREAD=off (bench/refresh/README.md, "PGlite's
   * thread kept busy").
   */
  thread?: boolean;
  /**
   * The database thread died while the store was open. Its calls are rejected (as unavailable) and
   * so is every later one; by default the error is thrown from here, uncaught, so the process ends
   * and its supervisor starts it again on the intact data directory.
   */
  onThreadDeath?: (error: Error) => void;
}

const DEFAULT_GATHER_WAKEUPS_MS = 250;

/** Thin SqlClient over one PGlite instance; PGlite queues concurrent queries itself. */
class PgliteSqlClient implements SqlClient {
  constructor(
    private readonly db: PGliteInstance,
    private readonly onClose: () => void,
  ) {}

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.db.query<R>(text, params)).rows;
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({ query: async <R>(text: string, params?: unknown[]) => (await tx.query<R>(text, params)).rows }),
    );
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      this.onClose();
    }
  }
}

/**
 * PGlite's CommonJS build loads its WASM and Node built-ins with dynamic import(), which a jest VM
 * context refuses without --experimental-vm-modules (and jest hands out a `module` whose
 * createRequire stays inside the sandbox). process.getBuiltinModule returns Node's real `module`,
 * so PGlite loads in the host context; under plain Node this is just require('@electric-sql/pglite').
 * Consequence inside jest: PGlite's rows come from the host realm, hence no `instanceof` on them.
 */
function loadPGlite(): typeof import('@electric-sql/pglite').PGlite {
  const nativeRequire = process.getBuiltinModule('node:module').createRequire(__filename);
  return (nativeRequire('@electric-sql/pglite') as typeof import('@electric-sql/pglite')).PGlite;
}

const openDirs = new Set<string>();

export class EmbeddedEventStore extends SqlEventStore {
  static async open(options: EmbeddedEventStoreOptions): Promise<EmbeddedEventStore> {
    const dataDir = path.resolve(options.dataDir);
    if (openDirs.has(dataDir)) {
      throw new Error(`embedded event store ${dataDir} is already open in this process; share that instance`);
    }
    fs.mkdirSync(dataDir, { recursive: true });
    const lock = acquireDirLock(dataDir);
    openDirs.add(dataDir);
    const release = () => {
      openDirs.delete(dataDir);
      lock.release();
    };
    const pgdata = path.join(dataDir, 'pgdata');
    let client: SqlClient | undefined;
    try {
      client =
        options.thread !== true
          ? new PgliteSqlClient(await loadPGlite().create({ dataDir: pgdata }), release)
          : await ThreadedPgliteClient.start(pgdata, {
              onClose: release,
              onDeath:
                options.onThreadDeath ??
                ((error) =>
                  setImmediate(() => {
                    throw error;
                  })),
            });
      await client.exec(schemaScript('public'));
      // No threadLocation: one PGlite per data directory, owned by this store (here or in its thread).
      return new EmbeddedEventStore(client, {
        engine: 'pglite',
        pollIntervalMs: options.pollIntervalMs,
        gatherWakeupsMs: options.gatherWakeupsMs ?? DEFAULT_GATHER_WAKEUPS_MS,
      });
    } catch (error) {
      if (client) await client.close().catch(() => undefined);
      else release();
      throw error;
    }
  }
}

/**
 * A pid file, so a second process (say the CLI while `serve` runs) fails fast instead of corrupting
 * the cluster. A lock whose pid is dead, or is our own pid (a restarted container reusing pid 1), is
 * stale and taken over.
 */
function acquireDirLock(dataDir: string): { release(): void } {
  const lockPath = path.join(dataDir, 'token-ledger.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `embedded event store ${dataDir} is in use by process ${owner} (remove ${lockPath} if that is not true)`,
        );
      }
      fs.rmSync(lockPath, { force: true });
    }
  }
  return {
    release: () => fs.rmSync(lockPath, { force: true }),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
