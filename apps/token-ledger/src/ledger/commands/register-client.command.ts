import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { normaliseClientRegistration, type ClientRegistered, type ClientState } from '@token-ledger/domain';
import { ProblemError } from '../../http/problem';
import type { LedgerConfig } from '../../config/ledger-config';
import type { AggregateRepository } from '../aggregate-repository';
import type { CommandMetadata } from '@token-ledger/envelope';
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
    @Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientRegistered>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  async execute({ input, meta }: RegisterClientCommand): Promise<RegisteredClient> {
    const parsed = normaliseClientRegistration(input);
    if (!parsed.ok) throw new ProblemError(400, 'Invalid client registration', parsed.errors.join('; '), { errors: parsed.errors });
    const reg = parsed.value;
    if (reg.policy.accessTokenTtl > this.config.maxAccessTokenTtlSeconds) {
      throw new ProblemError(400, 'Invalid client registration', `accessTokenTtl must not exceed ${this.config.maxAccessTokenTtlSeconds} (LEDGER_MAX_ACCESS_TOKEN_TTL)`);
    }
    let generatedSecret: string | undefined;
    let secret = reg.secret;
    if (reg.type === 'confidential' && !secret) secret = generatedSecret = this.secrets.randomSecret(32).toString('base64url');
    const event: ClientRegistered = {
      type: 'ClientRegistered',
      familyId: '',
      subject: '',
      clientId: reg.clientId,
      occurredAt: new Date().toISOString(),
      data: {
        type: reg.type,
        secretHash: secret ? this.secrets.hashClientSecret(secret) : null,
        allowedScopes: reg.allowedScopes,
        policy: reg.policy,
        maxFamiliesPerSubject: reg.maxFamiliesPerSubject,
      },
    };
    const { state } = await this.repo.execute(reg.clientId, meta, (current) => {
      if (current.status === 'registered') throw new ProblemError(409, 'Conflict', `client ${reg.clientId} is already registered`);
      return { events: [event], result: undefined };
    });
    return { client: state, generatedSecret };
  }
}
