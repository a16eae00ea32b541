import { Inject } from '@nestjs/common';
import { Command, CommandBus, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideSubject, type RevocationReason, type SubjectEvent, type SubjectState } from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { SUBJECT_REPOSITORY } from '../tokens';
import { RevokeFamilyCommand } from './revoke-family.command';

/** Logins arriving faster than we can revoke them would otherwise keep the command going forever. */
const MAX_COMPLETION_PASSES = 20;

export interface SubjectRevocation {
  subject: string;
  /** Families this command revoked (already-ended ones are not listed). */
  revokedFamilies: string[];
}

export class RevokeSubjectCommand extends Command<SubjectRevocation> {
  constructor(
    readonly subject: string,
    readonly reason: RevocationReason,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/**
 * RevokeSubject. SubjectRevoked is appended to the subject stream with optimistic concurrency, so
 * it is ordered against every LinkFamily of an IssueToken; every family linked before it is then
 * revoked on its own stream — pre-emptively if the IssueToken has not written that stream yet, which
 * makes that IssueToken fail and retry under a new id that is linked after the revocation.
 * SubjectRevocationCompleted then closes the command once logins that raced with it are revoked too.
 */
@CommandHandler(RevokeSubjectCommand)
export class RevokeSubjectHandler implements ICommandHandler<RevokeSubjectCommand, SubjectRevocation> {
  constructor(
    @Inject(SUBJECT_REPOSITORY) private readonly subjects: AggregateRepository<SubjectState, SubjectEvent>,
    private readonly commandBus: CommandBus,
  ) {}

  async execute({ subject, reason, meta }: RevokeSubjectCommand): Promise<SubjectRevocation> {
    const now = Date.now();
    const { result: toRevoke } = await this.subjects.execute(subject, meta, (state) => {
      const decision = decideSubject({ type: 'RevokeSubject', subject, reason, now }, state);
      return { events: decision.events, result: decision.familiesToRevoke ?? [] };
    });
    const revokedFamilies: string[] = [];
    const handled = new Set<string>();
    const revokeAll = async (families: { familyId: string; clientId: string }[]) => {
      for (const family of families) {
        handled.add(family.familyId);
        const outcome = await this.commandBus.execute(
          new RevokeFamilyCommand(family.familyId, reason, meta, { subject, clientId: family.clientId }),
        );
        if (outcome.revoked) revokedFamilies.push(family.familyId);
      }
    };
    await revokeAll(toRevoke);
    // Complete with optimistic concurrency: a login linked meanwhile makes the append conflict, and
    // is revoked before the next try, so no login that finished before we return survives.
    for (let pass = 1; pass <= MAX_COMPLETION_PASSES; pass++) {
      const { result: pending } = await this.subjects.execute(subject, meta, (state) => {
        const d = decideSubject({ type: 'CompleteSubjectRevocation', subject, reason, revokedFamilyIds: [...handled], now: Date.now() }, state);
        return { events: d.events, result: d.familiesToRevoke ?? [] };
      });
      if (pending.length === 0) break;
      await revokeAll(pending);
    }
    return { subject, revokedFamilies };
  }
}
