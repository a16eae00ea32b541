import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideApiKey, isApiKeyId, type ApiKeyEvent, type ApiKeyState } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { API_KEY_REPOSITORY } from '../tokens';

export interface RevokedApiKey {
  state: ApiKeyState;
  /** False when the key was already revoked (nothing was appended). */
  revoked: boolean;
  position?: number;
}

export class RevokeApiKeyCommand extends Command<RevokedApiKey> {
  constructor(
    readonly keyId: string,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/** Idempotent: many concurrent revocations of one key append one ApiKeyRevoked (optimistic concurrency). */
@CommandHandler(RevokeApiKeyCommand)
export class RevokeApiKeyHandler implements ICommandHandler<RevokeApiKeyCommand, RevokedApiKey> {
  constructor(@Inject(API_KEY_REPOSITORY) private readonly repo: AggregateRepository<ApiKeyState, ApiKeyEvent>) {}

  async execute({ keyId, meta }: RevokeApiKeyCommand): Promise<RevokedApiKey> {
    if (!isApiKeyId(keyId)) throw new LedgerError('not_found', `no API key ${keyId}`);
    const { state, result, position } = await this.repo.execute(keyId, meta, (current) => {
      const events = decideApiKey({ type: 'RevokeApiKey', keyId, now: Date.now() }, current);
      return { events, result: events.length > 0 };
    });
    return { state, revoked: result, position };
  }
}
