import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerSecrets } from '@token-ledger/crypto';
import { decideClient, type ClientEvent, type ClientState } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { AggregateRepository } from '../aggregate-repository';
import { CLIENT_REPOSITORY } from '../tokens';

export interface RotatedClientSecret {
  client: ClientState;
  /** The new secret: returned once, never stored in plain. */
  secret: string;
  /** Global position of ClientSecretRotated: of concurrent rotations, the highest one is in force. */
  position: number;
}

export class RotateClientSecretCommand extends Command<RotatedClientSecret> {
  constructor(
    readonly clientId: string,
    readonly overlapSeconds: number,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/** A new generated secret; the replaced one keeps working for overlapSeconds (SPEC §9). */
@CommandHandler(RotateClientSecretCommand)
export class RotateClientSecretHandler implements ICommandHandler<RotateClientSecretCommand, RotatedClientSecret> {
  constructor(
    @Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
  ) {}

  async execute({ clientId, overlapSeconds, meta }: RotateClientSecretCommand): Promise<RotatedClientSecret> {
    // Generated here so the decider stays pure; only the hash is decided on and stored.
    const secret = this.secrets.randomSecret(32).toString('base64url');
    const secretHash = this.secrets.hashClientSecret(secret);
    // Optimistic concurrency: a concurrent rotation makes this one re-decide on top of it, so each
    // answered secret replaced exactly the one before it (no lost update).
    const { state, position } = await this.repo.execute(clientId, meta, (current) => ({
      events: decideClient({ type: 'RotateClientSecret', secretHash, overlapSeconds, now: Date.now() }, current),
      result: undefined,
    }));
    return { client: state, secret, position: position ?? 0 };
  }
}
