import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import {
  API_KEY_ID_RANDOM_BYTES,
  API_KEY_SECRET_BYTES,
  decideApiKey,
  formatApiKey,
  formatApiKeyId,
  validateApiKeyInput,
  type ApiKeyEvent,
  type ApiKeyState,
} from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { API_KEY_REPOSITORY } from '../tokens';

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  /** Epoch ms; undefined = never expires. */
  expiresAt?: number;
}

export interface CreatedApiKey {
  state: ApiKeyState;
  /** The key itself: returned once, never stored (only its keyed hash is). */
  key: string;
  position?: number;
}

export class CreateApiKeyCommand extends Command<CreatedApiKey> {
  constructor(
    readonly input: CreateApiKeyInput,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

@CommandHandler(CreateApiKeyCommand)
export class CreateApiKeyHandler implements ICommandHandler<CreateApiKeyCommand, CreatedApiKey> {
  constructor(
    @Inject(API_KEY_REPOSITORY) private readonly repo: AggregateRepository<ApiKeyState, ApiKeyEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ input, meta }: CreateApiKeyCommand): Promise<CreatedApiKey> {
    const now = Date.now();
    const errors = validateApiKeyInput(input.name, input.scopes);
    if (input.expiresAt !== undefined && !(Number.isSafeInteger(input.expiresAt) && input.expiresAt > now)) errors.push('expiresAt must be in the future');
    if (errors.length > 0) throw new LedgerError('invalid_request', errors.join('; '), { title: 'Invalid API key', members: { errors } });
    // The decider stays pure: id and secret are drawn here, and only the secret's keyed hash goes in.
    const keyId = formatApiKeyId(this.secrets.randomSecret(API_KEY_ID_RANDOM_BYTES));
    const secret = this.secrets.randomSecret(API_KEY_SECRET_BYTES);
    const keyHash = this.secrets.hashApiKeySecret(keyId, secret);
    const { state, position } = await this.repo.execute(keyId, meta, (current) => ({
      events: decideApiKey({ type: 'CreateApiKey', keyId, name: input.name, scopes: input.scopes, keyHash, expiresAt: input.expiresAt ?? null, now }, current),
      result: undefined,
    }));
    return { state, key: formatApiKey({ keyId, secret }), position };
  }
}
