import { Inject, Injectable, Logger } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { subjectRevocationsAfter } from '@token-ledger/projections';
import type { LedgerConfig } from '../config/ledger-config';
import { LedgerMetrics } from '../health/metrics';
import { RevokeSubjectCommand, SubjectRevocationsInProgress } from './commands/revoke-subject.command';
import { LEDGER_CONFIG, READ_MODELS, type ReadModels } from './tokens';

export const RECONCILER_ACTOR = 'subject-revocation-reconciler';

/** SubjectRevoked events looked at per query; the next query carries on from the last one. */
const SCAN_LIMIT = 500;

/**
 * Finishes subject revocations left pending — a RevokeSubject that stopped between SubjectRevoked and
 * SubjectRevocationCompleted (a crash, a store outage, an exhausted retry budget), on this instance
 * or another — so nobody has to retry it. Every LEDGER_RECONCILE_INTERVAL_SECONDS (and at start-up)
 * it reads the SubjectRevoked events of the audit view it has not seen finished, and sends each
 * one's subject RevokeSubject in 'resume' mode: the command side loads the subject's stream, finishes
 * what is really pending there, and does nothing if it is not (the view lags the store).
 *
 * Safe to race — with the live command, a retry, the reconciler of another instance: RevokeFamily
 * is idempotent and the completion is appended with optimistic concurrency. Racing would only waste
 * work and shorten the live command's list of revoked families, so a revocation is left alone while
 * this process runs it, and for LEDGER_RECONCILE_GRACE_SECONDS after it started (another instance
 * may be running it).
 *
 * It remembers how far the audit view is settled (every revocation before it completed), so a pass
 * reads only what is new or still open; a restart reads all SubjectRevoked events once.
 */
@Injectable()
export class SubjectRevocationReconciler {
  private readonly logger = new Logger('subject-revocation-reconciler');
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private stopping = false;
  /** Every SubjectRevoked at or before this position is known to be completed. */
  private settled = 0;

  constructor(
    private readonly commandBus: CommandBus,
    private readonly inProgress: SubjectRevocationsInProgress,
    private readonly metrics: LedgerMetrics,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  start(): void {
    this.stopping = false;
    const pass = () => void this.reconcileOnce().catch((e) => this.logger.error(`reconciliation pass failed: ${String(e)}`));
    pass();
    this.timer = setInterval(pass, this.config.reconcile.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Waits for a pass in flight, which stops after the subject it is on. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass; returns how many pending revocations it finished. */
  reconcileOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<number> {
    const graceMs = this.config.reconcile.graceSeconds * 1000;
    let finished = 0;
    let cursor = this.settled;
    let lowestOpen = Infinity;
    const done = new Set<string>();
    for (;;) {
      const rows = await subjectRevocationsAfter(this.readModels.sql, cursor, SCAN_LIMIT);
      for (const row of rows) {
        if (row.completed || done.has(row.subject)) continue;
        if (this.stopping || this.inProgress.has(row.subject) || Date.now() - row.revokedAt.getTime() < graceMs) {
          lowestOpen = Math.min(lowestOpen, row.position);
          continue;
        }
        try {
          const { revokedFamilies } = await this.commandBus.execute(new RevokeSubjectCommand(row.subject, row.reason, { actor: RECONCILER_ACTOR }, 'resume'));
          done.add(row.subject);
          finished++;
          this.metrics.reconciledRevocations.inc();
          this.logger.warn(
            `finished the revocation of subject ${row.subject} pending since ${row.revokedAt.toISOString()}: ${revokedFamilies.length} famil(ies) revoked now`,
          );
        } catch (error) {
          lowestOpen = Math.min(lowestOpen, row.position);
          this.logger.error(`could not finish the revocation of subject ${row.subject}; retrying next pass: ${String(error)}`);
        }
      }
      if (rows.length > 0) cursor = rows[rows.length - 1].position;
      if (rows.length < SCAN_LIMIT) break;
    }
    this.settled = Math.max(this.settled, Math.min(cursor, lowestOpen - 1));
    return finished;
  }
}
