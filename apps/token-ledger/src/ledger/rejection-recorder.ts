import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { mergeTallies, REJECTION_RECORD_INTERVAL_MS, tallyRejection, type RejectionTally, type UnrecordedRejection } from '@token-ledger/domain';
import { LedgerMetrics } from '../health/metrics';
import { RecordRejectionsCommand } from './commands/record-rejections.command';

/** Families whose tallies wait at once before a flush is started early. */
const FLUSH_EARLY_AT = 10_000;
/** Beyond this many waiting families (a flush that cannot keep up), new families are only counted in the metric. */
const MAX_PENDING_FAMILIES = 50_000;
/** Families recorded at once by a flush (their appends share group commits). */
const FLUSH_CONCURRENCY = 32;

/**
 * Tallies the refused refreshes the decider did not record (those within REJECTION_RECORD_INTERVAL_MS
 * of the family's last recorded refusal) and records them once per interval: one append per family,
 * one RefreshRejected per reason with the count, first and last time and per-address counts. So a
 * flood of forged tokens aimed at one family costs its stream about one event per interval, and
 * each forged request nothing but the read. Tallies live in memory: a crash loses at most the last
 * interval's counts (a graceful stop flushes them); each node tallies what it refused.
 */
@Injectable()
export class RejectionRecorder implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('rejection-recorder');
  private pending = new Map<string, RejectionTally[]>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(
    private readonly commandBus: CommandBus,
    private readonly metrics: LedgerMetrics,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), REJECTION_RECORD_INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Counts one refusal of `familyId` towards the next flush. */
  note(familyId: string, rejection: UnrecordedRejection): void {
    const current = this.pending.get(familyId);
    if (current === undefined && this.pending.size >= MAX_PENDING_FAMILIES) {
      this.metrics.rejectionsTallied.inc({ outcome: 'dropped' });
      return;
    }
    this.pending.set(familyId, tallyRejection(current ?? [], rejection));
    this.metrics.rejectionsTallied.inc({ outcome: 'tallied' });
    if (this.pending.size >= FLUSH_EARLY_AT) void this.flush();
  }

  /** How many refusals wait to be recorded (tests, diagnostics). */
  get waiting(): number {
    let n = 0;
    for (const tallies of this.pending.values()) for (const t of tallies) n += t.count;
    return n;
  }

  /** Records everything tallied so far; resolves when it is stored (or put back after a failure). */
  flush(): Promise<void> {
    // One flush at a time; a call during one runs after it, with what came meanwhile.
    const run = (this.flushing ?? Promise.resolve()).then(() => this.flushNow());
    const tracked: Promise<void> = run.finally(() => {
      if (this.flushing === tracked) this.flushing = undefined;
    });
    this.flushing = tracked;
    return run;
  }

  private async flushNow(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending = new Map();
    for (let i = 0; i < batch.length; i += FLUSH_CONCURRENCY) {
      await Promise.all(
        batch.slice(i, i + FLUSH_CONCURRENCY).map(async ([familyId, tallies]) => {
          try {
            await this.commandBus.execute(new RecordRejectionsCommand(familyId, tallies, { actor: 'rejection-recorder' }));
          } catch (err) {
            // Kept for the next flush (a store outage): the counts are not lost while the process lives.
            this.pending.set(familyId, mergeTallies(tallies, this.pending.get(familyId) ?? []));
            this.logger.warn(`recording refused refreshes of ${familyId} failed, retrying next interval: ${String(err)}`);
          }
        }),
      );
    }
  }
}
