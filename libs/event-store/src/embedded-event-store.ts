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
import { SqlClient, SqlQueryable } from './sql-client';
import { SqlEventStore } from './sql-event-store';
import { schemaScript } from './sql-schema';

export interface EmbeddedEventStoreOptions {
  dataDir: string;
  /** Fallback poll period of subscriptions (default 250 ms). */
  pollIntervalMs?: number;
  /**
   * Subscriptions are woken this long after an append, all at once (SqlEventStoreOptions.
   * gatherWakeupsMs; default 50 ms). The consumers run on this event loop, on the one PGlite
   * connection: woken at every append, they paid their per-batch statements per rotation (18.8
   * statements a rotation against 6.2 with a 50 ms delay, bench/refresh/README.md). Subscriptions
   * opened with SubscribeOptions.prompt (the SSF outbox) are woken at once anyway.
   */
  gatherWakeupsMs?: number;
}

const DEFAULT_GATHER_WAKEUPS_MS = 50;

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
    let db: PGliteInstance | undefined;
    try {
      db = await loadPGlite().create({ dataDir: path.join(dataDir, 'pgdata') });
      const client = new PgliteSqlClient(db, release);
      await client.exec(schemaScript('public'));
      // No threadLocation: PGlite lives in this thread's memory.
      return new EmbeddedEventStore(client, {
        engine: 'pglite',
        pollIntervalMs: options.pollIntervalMs,
        gatherWakeupsMs: options.gatherWakeupsMs ?? DEFAULT_GATHER_WAKEUPS_MS,
      });
    } catch (error) {
      await db?.close().catch(() => undefined);
      release();
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
