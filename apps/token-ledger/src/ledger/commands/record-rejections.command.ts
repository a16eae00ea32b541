import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideFamily, type FamilyEvent, type FamilyState, type RejectionTally } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { AggregateRepository } from '../aggregate-repository';
import { FAMILY_REPOSITORY } from '../tokens';

/** Records the refused refreshes of one family that were tallied (RejectionRecorder): one append. */
export class RecordRejectionsCommand extends Command<number> {
  constructor(
    readonly familyId: string,
    readonly tallies: RejectionTally[],
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/** Answers how many RefreshRejected events it appended (0 when the family does not exist). */
@CommandHandler(RecordRejectionsCommand)
export class RecordRejectionsHandler implements ICommandHandler<RecordRejectionsCommand, number> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ familyId, tallies, meta }: RecordRejectionsCommand): Promise<number> {
    const now = Date.now();
    const { result } = await this.families.execute(familyId, meta, (state) => {
      const { events } = decideFamily({ type: 'RecordRejections', familyId, tallies, now }, state, this.secrets.tokenSecrets);
      // Only a record: on a conflict it gives way to the competing writer (the owner's rotation).
      return { events, result: events.length, recordOnly: true };
    });
    return result;
  }
}
