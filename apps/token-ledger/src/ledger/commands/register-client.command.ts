import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideClient, normaliseClientRegistration, type ClientEvent, type ClientState } from '@token-ledger/domain';
import type { LedgerConfig } from '../../config/ledger-config';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
import { LedgerError } from '../ledger-error';
import { CLIENT_REPOSITORY, LEDGER_CONFIG } from '../tokens';

export interface RegisteredClient {
  client: ClientState;
  /** Only when the ledger generated it: returned once, never stored in plain. */
  generatedSecret?: string;
}

export class RegisterClientCommand extends Command<RegisteredClient> {
  constructor(
    readonly input: unknown,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

@CommandHandler(RegisterClientCommand)
export class RegisterClientHandler implements ICommandHandler<RegisterClientCommand, RegisteredClient> {
  constructor(
    @Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  async execute({ input, meta }: RegisterClientCommand): Promise<RegisteredClient> {
    const parsed = normaliseClientRegistration(input);
    if (!parsed.ok) throw invalidRegistration(parsed.errors.join('; '), { errors: parsed.errors });
    const registration = parsed.value;
    if (registration.policy.accessTokenTtl > this.config.maxAccessTokenTtlSeconds) {
      throw invalidRegistration(`accessTokenTtl must not exceed ${this.config.maxAccessTokenTtlSeconds} (LEDGER_MAX_ACCESS_TOKEN_TTL)`);
    }
    // The decider stays pure: the secret is generated and hashed here and only its hash goes in.
    let generatedSecret: string | undefined;
    let secret = registration.secret;
    if (registration.type === 'confidential' && !secret) secret = generatedSecret = this.secrets.randomSecret(32).toString('base64url');
    const secretHash = secret ? this.secrets.hashClientSecret(secret) : null;
    const now = Date.now();
    // A second registration of the id is DomainError('client_exists'): a conflict.
    const { state } = await this.repo.execute(registration.clientId, meta, (current) => ({
      events: decideClient({ type: 'RegisterClient', registration, secretHash, now }, current),
      result: undefined,
    }));
    return { client: state, generatedSecret };
  }
}

function invalidRegistration(description: string, members?: Record<string, unknown>): LedgerError {
  return new LedgerError('invalid_request', description, { title: 'Invalid client registration', members });
}
