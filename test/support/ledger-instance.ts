import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CommandBus } from '@nestjs/cqrs';
import pino from 'pino';
import { openEventStore, dropPostgresSchema, type OpenedStore, type SqlClient } from '@token-ledger/event-store';
import { loadConfig, openRuntime, type LedgerConfig, type LedgerRuntime } from '../../apps/token-ledger/src';
import { AppModule } from '../../apps/token-ledger/src/app.module';
import { LedgerMetrics } from '../../apps/token-ledger/src/health/metrics';
import { SubjectRevocationReconciler } from '../../apps/token-ledger/src/ledger/subject-revocation-reconciler';
import { ADMIN_TOKEN } from './ledger-harness';
import { embeddedThreadEnv } from './embedded-thread';

/**
 * The ledger's command side without HTTP: one real store and its read models (opened once per test
 * file — PGlite, or a PostgreSQL schema), and any number of "processes" on it, each a fresh Nest
 * context (fresh handlers, repositories, reconciler, in-progress set) given the store through a
 * wrapper of the test's choosing (crash injection, a scheduler). A crashed process is abandoned and a
 * new one started on the same store: that is a restart, minus the time PGlite takes to open.
 *
 * The read-model runner belongs to the shared runtime, not to a process: it is the one thing that
 * outlives a "crash" here, which no command's promise depends on (the reconciler reads the view,
 * and the view is rebuilt from the store after a real restart anyway).
 */
export interface LedgerStoreUnderTest {
  store: OpenedStore;
  runtime: LedgerRuntime;
  /** Waits until the read models include every event in the store. */
  caughtUp(timeoutMs?: number): Promise<void>;
  start(opts?: {
    wrap?: (store: OpenedStore) => OpenedStore;
    /** The process's view of the read models' database (the runner itself stays shared). */
    wrapSql?: (sql: SqlClient) => SqlClient;
    config?: Partial<LedgerConfig>;
  }): Promise<LedgerInstance>;
  close(): Promise<void>;
}

export interface LedgerInstance {
  bus: CommandBus;
  reconciler: SubjectRevocationReconciler;
  context: INestApplicationContext;
  /** Tears the process down (what is left of it after a crash). */
  stop(): Promise<void>;
}

export type StoreUnderTest = { kind: 'embedded' } | { kind: 'postgres'; url: string };

const silent = pino({ level: 'silent' });

export async function openLedgerStore(kind: StoreUnderTest = { kind: 'embedded' }, env: Record<string, string> = {}): Promise<LedgerStoreUnderTest> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tl-instance-'));
  const schema = `tl_instance_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    LEDGER_ADMIN_TOKEN: ADMIN_TOKEN,
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ANOMALY_ENGINE: 'off',
    LEDGER_RECONCILE_GRACE_SECONDS: '0',
    ...(kind.kind === 'postgres' ? { LEDGER_STORE: 'postgres', DATABASE_URL: kind.url } : {}),
    ...embeddedThreadEnv(),
    ...env,
  });
  const store =
    kind.kind === 'postgres'
      ? await openEventStore({ store: 'postgres', url: kind.url, schema, acquireTimeoutMs: config.databaseAcquireTimeoutMs })
      : await openEventStore({ store: 'embedded', dataDir, thread: config.embeddedThread });
  const runtime = await openRuntime(config, silent, { store });
  await runtime.readModels.runner.start();
  const instances = new Set<LedgerInstance>();
  return {
    store,
    runtime,
    async caughtUp(timeoutMs = 10_000) {
      const head = await store.headPosition();
      if (!(await runtime.readModels.runner.waitFor(head, timeoutMs))) throw new Error(`read models not at ${head} within ${timeoutMs} ms`);
    },
    async start(opts = {}) {
      const processRuntime: LedgerRuntime = {
        ...runtime,
        config: { ...runtime.config, ...opts.config },
        store: opts.wrap ? opts.wrap(store) : store,
        readModels: { ...runtime.readModels, sql: opts.wrapSql ? opts.wrapSql(runtime.readModels.sql) : runtime.readModels.sql },
        // Each process registers its own gauges.
        metrics: new LedgerMetrics(),
        close: async () => undefined,
      };
      const context = await NestFactory.createApplicationContext(AppModule.forRoot(processRuntime), { logger: false, abortOnError: false });
      const instance: LedgerInstance = {
        bus: context.get(CommandBus),
        reconciler: context.get(SubjectRevocationReconciler),
        context,
        async stop() {
          instances.delete(instance);
          await context.close().catch(() => undefined);
        },
      };
      instances.add(instance);
      return instance;
    },
    async close() {
      for (const i of [...instances]) await i.stop();
      await runtime.close();
      if (kind.kind === 'postgres') await dropPostgresSchema(kind.url, schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
