import { Inject, Injectable, Logger } from '@nestjs/common';
import { Command, CommandBus, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideSubject, type RevocationReason, type SubjectCommand, type SubjectEvent, type SubjectState } from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { LedgerError } from '../ledger-error';
import { SUBJECT_REPOSITORY } from '../tokens';
import { RevokeFamilyCommand } from './revoke-family.command';

/** Logins arriving faster than we can revoke them would otherwise keep the command going forever. */
const MAX_COMPLETION_PASSES = 20;
/** Families revoked at once: each on its own stream, so they share the store's group commits. */
const REVOKE_CONCURRENCY = 8;
/** A progress line (debug) every this many families, for subjects with very many. */
const PROGRESS_EVERY = 100;

export interface SubjectRevocation {
  subject: string;
  /**
   * Families this command revoked. Families that had already ended are not listed — including
   * those an interrupted earlier attempt (or the reconciler) revoked before this one ran.
   */
  revokedFamilies: string[];
}

export class RevokeSubjectCommand extends Command<SubjectRevocation> {
  constructor(
    readonly subject: string,
    readonly reason: RevocationReason,
    readonly meta: CommandMetadata,
    /**
     * 'resume' (the reconciler): finish a revocation left pending, and never start one — the
     * revocation it saw may have completed meanwhile. `reason` is then unused: a pending
     * revocation keeps its own.
     */
    readonly mode: 'revoke' | 'resume' = 'revoke',
  ) {
    super();
  }
}

/**
 * The subjects this process is revoking right now, so its reconciler leaves them to the command
 * (which would only do the same work twice). Other instances are kept off by the reconciler's grace.
 */
@Injectable()
export class SubjectRevocationsInProgress {
  private readonly running = new Map<string, number>();

  has(subject: string): boolean {
    return this.running.has(subject);
  }

  async during<T>(subject: string, work: () => Promise<T>): Promise<T> {
    this.running.set(subject, (this.running.get(subject) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const n = this.running.get(subject)! - 1;
      if (n === 0) this.running.delete(subject);
      else this.running.set(subject, n);
    }
  }
}

/**
 * RevokeSubject. SubjectRevoked is appended to the subject stream with optimistic concurrency, so
 * it is ordered against every LinkFamily of an IssueToken; every family linked before it is then
 * revoked on its own stream — pre-emptively if the IssueToken has not written that stream yet, which
 * makes that IssueToken fail and retry under a new id that is linked after the revocation.
 * SubjectRevocationCompleted then closes the command once logins that raced with it are revoked too.
 *
 * Until then the revocation is pending in the subject's state, families included, so if this
 * command stops half-way (a crash, a store outage) a retry — or the reconciler, which sends this
 * command in 'resume' mode — revokes whatever is still alive and completes it. RevokeFamily is
 * idempotent and the completion is appended with optimistic concurrency, so any number of them
 * may run at once.
 */
@CommandHandler(RevokeSubjectCommand)
export class RevokeSubjectHandler implements ICommandHandler<RevokeSubjectCommand, SubjectRevocation> {
  private readonly logger = new Logger('revoke-subject');

  constructor(
    @Inject(SUBJECT_REPOSITORY) private readonly subjects: AggregateRepository<SubjectState, SubjectEvent>,
    private readonly commandBus: CommandBus,
    private readonly inProgress: SubjectRevocationsInProgress,
  ) {}

  execute(command: RevokeSubjectCommand): Promise<SubjectRevocation> {
    return this.inProgress.during(command.subject, () => this.revoke(command));
  }

  private async revoke({ subject, reason, meta, mode }: RevokeSubjectCommand): Promise<SubjectRevocation> {
    const now = Date.now();
    const start: SubjectCommand = mode === 'resume' ? { type: 'ResumeSubjectRevocation', subject, now } : { type: 'RevokeSubject', subject, reason, now };
    const started = await this.decide(subject, meta, start);
    const revokedFamilies: string[] = [];
    const handled = new Set<string>();
    const revokeAll = ({ families, reason: pendingReason }: Pass) =>
      inParallel(families, REVOKE_CONCURRENCY, async (family) => {
        const outcome = await this.commandBus.execute(
          new RevokeFamilyCommand(family.familyId, pendingReason ?? reason, meta, { subject, clientId: family.clientId }),
        );
        handled.add(family.familyId);
        if (outcome.revoked) revokedFamilies.push(family.familyId);
        if (handled.size % PROGRESS_EVERY === 0) this.logger.debug(`subject ${subject}: ${handled.size} of ${families.length} families revoked`);
      });
    // Nothing pending (a resume that found the revocation completed by someone else).
    if (started.reason === undefined) return { subject, revokedFamilies };
    await revokeAll(started);
    // Complete with optimistic concurrency: a login linked meanwhile makes the append conflict, and
    // is revoked before the next try, so no login that finished before we return survives.
    for (let pass = 1; pass <= MAX_COMPLETION_PASSES; pass++) {
      const left = await this.decide(subject, meta, { type: 'CompleteSubjectRevocation', subject, revokedFamilyIds: [...handled], now: Date.now() });
      if (left.families.length === 0) return { subject, revokedFamilies };
      await revokeAll(left);
    }
    // The revocation stays pending: a retry or the reconciler finishes it once the logins stop.
    throw new LedgerError('unavailable', 'logins for this subject keep arriving while it is being revoked; the revocation stays pending, try again', {
      retryAfterSeconds: 2,
    });
  }

  private async decide(subject: string, meta: CommandMetadata, command: SubjectCommand): Promise<Pass> {
    const { result } = await this.subjects.execute(subject, meta, (state) => {
      const d = decideSubject(command, state);
      return { events: d.events, result: { families: d.familiesToRevoke ?? [], reason: d.reason } };
    });
    return result;
  }
}

/** What one decision hands over: the families to revoke, under the pending revocation's reason. */
interface Pass {
  families: { familyId: string; clientId: string }[];
  reason?: RevocationReason;
}

/**
 * `work` on every item, `concurrency` at a time. On a failure no further item is started, and the
 * items already under way are waited for before it is thrown, so nothing of this command is still
 * running once its caller hears of the failure.
 */
async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure.error;
}
