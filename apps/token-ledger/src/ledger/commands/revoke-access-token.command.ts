import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideFamily, type FamilyEvent, type FamilyState } from '@token-ledger/domain';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { FAMILY_REPOSITORY } from '../tokens';

/** RFC 7009 for an access token: that jti is refused by introspection until it would have expired. */
export class RevokeAccessTokenCommand extends Command<void> {
  constructor(
    readonly familyId: string,
    readonly jti: string,
    readonly expiresAt: number,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

@CommandHandler(RevokeAccessTokenCommand)
export class RevokeAccessTokenHandler implements ICommandHandler<RevokeAccessTokenCommand, void> {
  constructor(
    @Inject(FAMILY_REPOSITORY) private readonly families: AggregateRepository<FamilyState, FamilyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ familyId, jti, expiresAt, meta }: RevokeAccessTokenCommand): Promise<void> {
    const now = Date.now();
    await this.families.execute(familyId, meta, (state) => ({
      events: decideFamily({ type: 'RevokeAccessToken', familyId, jti, expiresAt, now }, state, this.secrets.tokenSecrets).events,
      result: undefined,
    }));
  }
}
