import type { Logger } from 'pino';
import { KeyRing, LedgerSecrets, parseKek } from '@token-ledger/crypto';
import { openEventStore, placeConsumer, sqlBacked, type OpenedStore, type SqlClient } from '@token-ledger/event-store';
import { deriveChainMacKey } from '@token-ledger/envelope';
import { DEFAULT_TOPICS, type TopicNames } from '@token-ledger/messaging';
import {
  ALL_PROJECTIONS,
  migrateReadModels,
  ProjectionRunner,
  ThreadedProjectionRunner,
  type ProjectionRunnerOptions,
  type ReadModelRunner,
} from '@token-ledger/projections';
import type { LedgerConfig } from './config/ledger-config';
import { ConfigError } from './config/ledger-config';
import { LedgerMetrics, secondsBehind } from './health/metrics';
import { openRateLimits, type RateLimits } from './rate-limit';
import { openDpopReplayCache, type DpopReplayCache } from './dpop/dpop-replay-cache';

/** Everything with a lifecycle that the HTTP app and the CLI commands share. */
export interface LedgerRuntime {
  config: LedgerConfig;
  store: OpenedStore;
  secrets: LedgerSecrets;
  keyRing: KeyRing;
  /** The hash-chain MAC key, derived from LEDGER_KEK (libs/envelope/src/hash-chain.ts); none without it. */
  chainMacKey?: Buffer;
  metrics: LedgerMetrics;
  logger: Logger;
  /** Read models: their database, and the runner that keeps them current (started by serve). */
  readModels: { sql: SqlClient; runner: ReadModelRunner };
  /** Kafka topic names and the prefix of consumer-group ids (tests isolate runs with their own). */
  messaging: MessagingNames;
  /** Rate limiters (README "Rate limits"), with their Redis connection when LEDGER_REDIS_URL is set. */
  rateLimits: RateLimits;
  /** Used DPoP proofs (docs/dpop.md): Redis with LEDGER_REDIS_URL, else the store's SQL database, else memory. */
  dpopReplay: DpopReplayCache;
  close(): Promise<void>;
}

export interface MessagingNames {
  topics: TopicNames;
  /** Consumer groups are `<groupPrefix>-revocations` and `<groupPrefix>-anomaly`. */
  groupPrefix: string;
}

/** The configured store alone (no keys, no read models): for tools that must run before the runtime can open. */
export async function openConfiguredStore(config: LedgerConfig): Promise<OpenedStore> {
  return config.store === 'postgres'
    ? openEventStore({ store: 'postgres', url: config.databaseUrl!, acquireTimeoutMs: config.databaseAcquireTimeoutMs })
    : config.store === 'eventstoredb'
      ? // Events in EventStoreDB; read models, checkpoints and kv in DATABASE_URL (its capabilities.sql).
        openEventStore({ store: 'eventstoredb', url: config.eventStoreUrl!, databaseUrl: config.databaseUrl!, acquireTimeoutMs: config.databaseAcquireTimeoutMs })
      : openEventStore({ store: 'embedded', dataDir: config.dataDir, thread: config.embeddedThread });
}

/** `store` lets a caller (tests, tools) supply an already-open store instead of the configured one. */
export async function openRuntime(
  config: LedgerConfig,
  logger: Logger,
  opts: { store?: OpenedStore; messaging?: MessagingNames } = {},
): Promise<LedgerRuntime> {
  let kek: Buffer | undefined;
  try {
    kek = config.kek ? parseKek(config.kek) : undefined;
  } catch (error) {
    throw new ConfigError([error instanceof Error ? error.message : String(error)]);
  }
  const store = opts.store ?? (await openConfiguredStore(config));
  try {
    if (!kek) logger.warn('LEDGER_KEK is not set: signing keys and the token-hash secret are stored unencrypted, and the hash chain carries no keyed MAC');
    const secrets = await LedgerSecrets.open(store.kv, { kek });
    const keyRing = await KeyRing.open(store.kv, {
      alg: config.signingAlg,
      kek,
      issuer: config.issuer,
      maxAccessTokenTtlSeconds: config.maxAccessTokenTtlSeconds,
    });
    // Read models live in the store's SQL database (PGlite, PostgreSQL, or DATABASE_URL beside EventStoreDB).
    const readModelStore = sqlBacked(store, 'the read models');
    const sql = readModelStore.sql;
    await migrateReadModels(sql);
    const metrics = new LedgerMetrics({ maxClients: config.metricsMaxClients });
    metrics.behindSeconds = async (position) => (position === undefined ? 0 : (await secondsBehind(store, position)).seconds);
    const runnerOptions: ProjectionRunnerOptions = {
      onBatch: ({ count, lagsMs }) => {
        metrics.projectedEvents.inc(count);
        for (const ms of lagsMs) metrics.projectionLag.observe(ms / 1000);
      },
      onError: (error) => logger.error({ err: error }, 'projection batch failed; retrying from the checkpoint'),
    };
    // Where the store allows it (PostgreSQL) the runner gets a thread (and connections) of its own, so
    // the API's load does not delay the read models (projection-thread.ts).
    const runner = placeConsumer<ReadModelRunner>(store, {
      thread: (location) => new ThreadedProjectionRunner({ location, projections: ALL_PROJECTIONS.map((p) => p.name) }, ALL_PROJECTIONS, runnerOptions),
      inline: () => new ProjectionRunner(readModelStore, ALL_PROJECTIONS, runnerOptions),
    });
    // API keys name their counters by a peppered hash, the same across instances (derived from the shared master secret).
    const rateLimits = openRateLimits(config, { metrics, logger, hashKey: (identity) => secrets.hashClientSecret(identity) });
    const dpopReplay = openDpopReplayCache(config, sql, logger.child({ component: 'dpop' }));
    return {
      config,
      store,
      secrets,
      keyRing,
      chainMacKey: kek ? deriveChainMacKey(kek) : undefined,
      metrics,
      logger,
      readModels: { sql, runner },
      messaging: opts.messaging ?? { topics: DEFAULT_TOPICS, groupPrefix: 'token-ledger' },
      rateLimits,
      dpopReplay,
      async close() {
        await rateLimits.close();
        await dpopReplay.close();
        await runner.stop();
        keyRing.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
