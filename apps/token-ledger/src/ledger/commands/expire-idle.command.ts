import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideFamily, type FamilyEvent, type FamilyState } from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { FAMILY_REPOSITORY } from '../tokens';

/** ExpireIdle: records TokenFamilyExpired once a family is past idle or absolute expiry. */
export class ExpireIdleCommand extends Command<boolean> {
  constructor(
    readonly familyId: string,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

@CommandHandler(ExpireIdleCommand)
export class ExpireIdleHandler implements ICommandHandler<ExpireIdleCommand, boolean> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ familyId, meta }: ExpireIdleCommand): Promise<boolean> {
    const now = Date.now();
    const { result } = await this.families.execute(familyId, meta, (state) => {
      if (state.status === 'none') return { events: [], result: false };
      const { events } = decideFamily({ type: 'ExpireIdle', familyId, now }, state, this.secrets.tokenSecrets);
      return { events, result: events.length > 0 };
    });
    return result;
  }
}
