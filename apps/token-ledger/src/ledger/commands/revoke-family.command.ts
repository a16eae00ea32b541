import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideFamily, type FamilyEvent, type FamilyState, type RevocationReason } from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { FAMILY_REPOSITORY } from '../tokens';

export interface FamilyRevocation {
  familyId: string;
  /** False when the family was already revoked or expired (the command is idempotent). */
  revoked: boolean;
  /** False when no such family exists (nothing was appended). */
  found: boolean;
  state: FamilyState;
}

export class RevokeFamilyCommand extends Command<FamilyRevocation> {
  constructor(
    readonly familyId: string,
    readonly reason: RevocationReason,
    readonly meta: CommandMetadata,
    /** Set by RevokeSubject, which may revoke a family whose stream is not written yet. */
    readonly preemptive?: { subject: string; clientId: string },
  ) {
    super();
  }
}

@CommandHandler(RevokeFamilyCommand)
export class RevokeFamilyHandler implements ICommandHandler<RevokeFamilyCommand, FamilyRevocation> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ familyId, reason, meta, preemptive }: RevokeFamilyCommand): Promise<FamilyRevocation> {
    const now = Date.now();
    let found = true;
    const { state, result } = await this.families.execute(familyId, meta, (current) => {
      if (current.status === 'none' && !preemptive) {
        found = false;
        return { events: [], result: false };
      }
      const { events } = decideFamily(
        { type: 'RevokeFamily', familyId, reason, subject: preemptive?.subject, clientId: preemptive?.clientId, now },
        current,
        this.secrets.tokenSecrets,
      );
      return { events, result: events.length > 0 };
    });
    return { familyId, revoked: result, found, state };
  }
}
