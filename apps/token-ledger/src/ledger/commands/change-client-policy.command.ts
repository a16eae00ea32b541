import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideClient, normaliseClientPolicyPatch, type ClientEvent, type ClientState } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { LedgerConfig } from '../../config/ledger-config';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { CLIENT_REPOSITORY, LEDGER_CONFIG } from '../tokens';

export class ChangeClientPolicyCommand extends Command<ClientState> {
  constructor(
    readonly clientId: string,
    readonly input: unknown,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/**
 * PATCH /v1/clients/{id}: scopes, TTLs, grace, maxFamiliesPerSubject, introspectAll. A family copies
 * the policy when it is issued, so only families issued afterwards get the new one.
 */
@CommandHandler(ChangeClientPolicyCommand)
export class ChangeClientPolicyHandler implements ICommandHandler<ChangeClientPolicyCommand, ClientState> {
  constructor(
    @Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  async execute({ clientId, input, meta }: ChangeClientPolicyCommand): Promise<ClientState> {
    const parsed = normaliseClientPolicyPatch(input);
    if (!parsed.ok) throw invalidPatch(parsed.errors.join('; '), parsed.errors);
    const patch = parsed.value;
    if (patch.accessTokenTtl !== undefined && patch.accessTokenTtl > this.config.maxAccessTokenTtlSeconds) {
      throw invalidPatch(`accessTokenTtl must not exceed ${this.config.maxAccessTokenTtlSeconds} (LEDGER_MAX_ACCESS_TOKEN_TTL)`);
    }
    const { state } = await this.repo.execute(clientId, meta, (current) => ({
      events: decideClient({ type: 'ChangeClientPolicy', patch, now: Date.now() }, current),
      result: undefined,
    }));
    return state;
  }
}

function invalidPatch(description: string, errors?: string[]): LedgerError {
  return new LedgerError('invalid_request', description, { title: 'Invalid client change', members: errors ? { errors } : undefined });
}
