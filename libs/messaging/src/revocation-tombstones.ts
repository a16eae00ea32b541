import { toPublicEvent } from '@token-ledger/envelope';
import { positionBefore } from './bootstrap';
import { migrateMessaging, readCheckpoint, writeCheckpoint } from './checkpoints';
import type { SqlBackedStore } from './kafka-relay';
import { revocationKey, toRevocationRecord, type RevocationMappingOptions, type RevocationRecord } from './revocations';

export interface RevocationTombstonesOptions extends RevocationMappingOptions {
  /** Checkpoint row (msg_checkpoints): epoch ms up to which every due tombstone was written. */
  name: string;
  /** Sends null values for the keys (KafkaRevocationSink.tombstone). */
  tombstone: (keys: string[]) => Promise<void>;
  /** Sweep period; default 10 s. */
  sweepMs?: number;
  /** Propagation lag and clock steps absorbed when rebuilding from the store; default 1 h. */
  marginMs?: number;
  onError?: (error: unknown) => void;
  now?: () => number;
}

const PAGE = 1000;
const SEND_BATCH = 500;

/**
 * Tombstones a key of the compacted revocations topic once its record's `accessTokensValidUntil`
 * has passed (SPEC §4), so the topic — and a verifier's start-up, which reads all of it — stays
 * bounded by the revocations of the last max access-token TTL.
 *
 * Keys due in the future are tracked in memory (`track`, fed by the propagator). The checkpoint
 * holds the time up to which every due key was tombstoned; on start the pending set is rebuilt
 * from the store, from the last position recorded before `checkpoint − max TTL − margin` (any record
 * due after the checkpoint comes from an event recorded after that), so a restart, or a ledger that
 * was down for days, leaves no key behind. Work per sweep is bounded by the keys due.
 */
export class RevocationTombstones {
  private readonly due = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private readonly now: () => number;

  constructor(
    private readonly store: SqlBackedStore,
    private readonly opts: RevocationTombstonesOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  get pending(): number {
    return this.due.size;
  }

  async start(): Promise<void> {
    await migrateMessaging(this.store.sql);
    const done = await readCheckpoint(this.store.sql, this.opts.name);
    const marginMs = this.opts.marginMs ?? 3600_000;
    const windowMs = this.opts.maxAccessTokenTtlSeconds * 1000 + marginMs;
    let after = done === 0 ? 0 : await positionBefore(this.store, new Date(done - windowMs));
    for (;;) {
      const page = await this.store.readAll({ after, maxCount: PAGE });
      if (page.length === 0) break;
      const records: RevocationRecord[] = [];
      for (const recorded of page) {
        const r = toRevocationRecord(toPublicEvent(recorded), this.opts);
        // Due before the checkpoint (less the margin, for a record published late): done already.
        if (r && Date.parse(r.accessTokensValidUntil) > done - marginMs) records.push(r);
      }
      this.track(records);
      after = page[page.length - 1].position;
    }
    this.timer = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 10_000);
    this.timer.unref();
    await this.sweep();
  }

  /** Records just published: their keys become due at accessTokensValidUntil. */
  track(records: RevocationRecord[]): void {
    for (const r of records) {
      const until = Date.parse(r.accessTokensValidUntil);
      if (!Number.isFinite(until)) continue;
      const key = revocationKey(r);
      this.due.set(key, Math.max(until, this.due.get(key) ?? 0));
    }
  }

  /** Tombstones every key now due, then moves the checkpoint to now. Concurrent calls share one run. */
  sweep(): Promise<void> {
    this.sweeping ??= this.runSweep()
      .catch((error) => this.opts.onError?.(error))
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  private async runSweep(): Promise<void> {
    const now = this.now();
    const keys = [...this.due].filter(([, until]) => until <= now).map(([key]) => key);
    for (let i = 0; i < keys.length; i += SEND_BATCH) {
      const batch = keys.slice(i, i + SEND_BATCH);
      await this.opts.tombstone(batch);
      // A record for the key that came meanwhile (later until) keeps it pending.
      for (const key of batch) if ((this.due.get(key) ?? Infinity) <= now) this.due.delete(key);
    }
    await writeCheckpoint(this.store.sql, this.opts.name, now);
  }
}
