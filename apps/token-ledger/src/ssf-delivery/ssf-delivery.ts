import { SSF_AUTHORIZATION_PURPOSE } from '@token-ledger/domain';
import { sqlBacked, type SqlBackedStore } from '@token-ledger/event-store';
import { migrateSignals, OutboxConsumer, PushDelivery, signSet, pollOutbox, loadRoutedStream, type OutboxEntry, type PollRequest, type RoutedStream } from '@token-ledger/signals';
import type { LedgerRuntime } from '../runtime';
import { SsfMetrics } from './ssf-metrics';

/** How often a ledger without SSF streams looks for the first one (docs/ssf-delivery.md). */
const DORMANT_CHECK_MS = 250;

/**
 * The SSF data plane of one ledger process: the outbox consumer and the pusher (started by serve's
 * background work unless LEDGER_SSF_DELIVERY=off), and what the poll endpoint needs (outbox queries,
 * signing, long-poll wake-ups). See docs/ssf-delivery.md.
 */
export class SsfDelivery {
  readonly metrics: SsfMetrics;
  private readonly store: SqlBackedStore;
  private consumer?: OutboxConsumer;
  private pusher?: PushDelivery;
  private migrated?: Promise<void>;
  private readonly waiters = new Map<string, Set<() => void>>();
  private dormancy?: NodeJS.Timeout;
  private startingConsumer?: Promise<void>;
  private stopped = false;

  constructor(private readonly runtime: LedgerRuntime) {
    this.store = sqlBacked(runtime.store, 'the SSF outbox');
    this.metrics = new SsfMetrics(runtime.metrics.registry, this.store.sql);
  }

  /** The tables exist (a process with delivery off still answers polls). */
  ready(): Promise<void> {
    return (this.migrated ??= migrateSignals(this.store.sql).catch((error) => {
      this.migrated = undefined;
      throw error;
    }));
  }

  /** Outbox position: the last store position whose SETs are in the outbox (tests, bench). */
  get position(): number {
    return this.consumer?.position ?? 0;
  }

  async start(): Promise<void> {
    const { config, logger, keyRing, secrets } = this.runtime;
    if (!config.ssfDelivery.enabled) return;
    await this.ready();
    this.pusher = new PushDelivery({
      sql: this.store.sql,
      signer: keyRing,
      openAuthorization: (sealed) => secrets.openField(sealed, SSF_AUTHORIZATION_PURPOSE),
      backoff: { minMs: config.ssfDelivery.retryMinMs, maxMs: config.ssfDelivery.retryMaxMs },
      timeoutMs: config.ssfDelivery.pushTimeoutMs,
      onOutcome: (outcome, info) => {
        this.metrics.pushes.inc({ outcome });
        if (outcome === 'delivered') this.metrics.deliveryDelay.observe(Math.max(0, Date.now() - info.createdAt.getTime()) / 1000);
        else if (outcome === 'refused') logger.warn({ streamId: info.streamId, jti: info.jti, status: info.status, error: info.error }, 'ssf: the receiver refused a SET (not retried)');
        else logger.info({ streamId: info.streamId, jti: info.jti, status: info.status, error: info.error, attempts: info.attempts }, 'ssf: push failed; will retry');
      },
      onError: (error) => logger.error({ err: error }, 'ssf: push worker failed; retrying'),
    });
    this.consumer = new OutboxConsumer(this.store, {
      issuer: config.issuer,
      onRows: (streamIds, count) => {
        this.metrics.written.inc(count);
        this.pusher?.wake(streamIds);
        this.notify(streamIds);
      },
      onError: (error) => logger.error({ err: error }, 'ssf: outbox batch failed; retrying from the checkpoint'),
    });
    this.pusher.start();
    await this.startConsumerOnceAStreamExists();
  }

  /**
   * The outbox consumer reads every event the ledger writes, on the main thread: on PostgreSQL that
   * cost a quarter of the refresh throughput (bench/refresh/README.md) for a ledger that has no SSF
   * stream at all. So it sleeps until one exists — in its routing state or, for the first, in the
   * audit view (indexed by type) — checking every DORMANT_CHECK_MS, then catches up from its
   * checkpoint, which loses nothing: no stream, no SETs owed.
   */
  private async startConsumerOnceAStreamExists(): Promise<void> {
    if (await this.anyStream()) {
      await this.consumer!.start();
      return;
    }
    const check = () => {
      this.dormancy = setTimeout(async () => {
        if (this.stopped) return;
        if (!(await this.anyStream())) return check();
        if (this.stopped) return;
        this.dormancy = undefined;
        this.startingConsumer = this.consumer!.start().catch((error) => this.runtime.logger.error({ err: error }, 'ssf: outbox consumer failed to start'));
      }, DORMANT_CHECK_MS);
      this.dormancy.unref();
    };
    check();
  }

  private async anyStream(): Promise<boolean> {
    try {
      const [row] = await this.store.sql.query<{ any: boolean }>(
        `select exists (select 1 from ssf_streams) or exists (select 1 from rm_audit where type = 'SsfStreamCreated') as any`,
      );
      return row.any === true;
    } catch {
      return false; // the audit view not migrated yet, or the store away: ask again later
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.dormancy);
    await this.startingConsumer;
    await this.consumer?.stop();
    await this.pusher?.stop();
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  stream(streamId: string): Promise<RoutedStream | undefined> {
    return loadRoutedStream(this.store.sql, streamId);
  }

  poll(streamId: string, request: PollRequest): ReturnType<typeof pollOutbox> {
    return pollOutbox(this.store.sql, streamId, request);
  }

  sign(entry: OutboxEntry): Promise<string> {
    return signSet(this.runtime.keyRing, entry.claims);
  }

  /** Resolves when this process writes SETs for the stream, or after `ms` (the caller polls again either way). */
  waitForRows(streamId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(streamId);
      if (!set) this.waiters.set(streamId, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0) this.waiters.delete(streamId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  private notify(streamIds: Iterable<string>): void {
    for (const id of streamIds) for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
  }
}
