import { Inject } from '@nestjs/common';
import { Command, CommandBus, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { decideClient, type ClientEvent, type ClientState } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';
import type { EventStore } from '@token-ledger/event-store';
import { activeFamiliesOfClient } from '@token-ledger/projections';
import type { AggregateRepository } from '../aggregate-repository';
import { LedgerError } from '../ledger-error';
import { CLIENT_REPOSITORY, EVENT_STORE, READ_MODELS, type ReadModels } from '../tokens';
import { RevokeFamilyCommand } from './revoke-family.command';

/** The reason recorded on families revoked because their client was disabled. */
export const CLIENT_DISABLED_REASON = 'client_disabled';

/** How long the sweep waits for the family view to include every family issued before the disable. */
const PROJECTION_WAIT_MS = 5000;
/** Families revoked at once by the sweep. */
const REVOKE_CONCURRENCY = 8;

export interface ClientStatusChange {
  client: ClientState;
  /** False when the client already was in the requested state (the commands are idempotent). */
  changed: boolean;
  /** Families this call revoked (DisableClient with revokeFamilies). */
  revokedFamilies: string[];
}

export class DisableClientCommand extends Command<ClientStatusChange> {
  constructor(
    readonly clientId: string,
    readonly revokeFamilies: boolean,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

export class EnableClientCommand extends Command<ClientStatusChange> {
  constructor(
    readonly clientId: string,
    readonly meta: CommandMetadata,
  ) {
    super();
  }
}

/**
 * DisableClient. From the moment ClientDisabled is appended every authentication of the client
 * fails (ClientRegistry reads the stream on each one), and IssueToken refuses it.
 *
 * revokeFamilies: every active family of the client is revoked with reason client_disabled. The
 * family view is read only once it has reached the store's head after the disable, so it holds
 * every family issued before the disable; a family whose issue raced the disable is revoked by
 * IssueToken itself (it re-reads the client after its append). Re-running the command (it is
 * idempotent) revokes whatever an interrupted run left; each revocation is idempotent on its own
 * stream, and a rotation racing it loses on optimistic concurrency.
 */
@CommandHandler(DisableClientCommand)
export class DisableClientHandler implements ICommandHandler<DisableClientCommand, ClientStatusChange> {
  constructor(
    @Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(READ_MODELS) private readonly readModels: ReadModels,
    private readonly commandBus: CommandBus,
  ) {}

  async execute({ clientId, revokeFamilies, meta }: DisableClientCommand): Promise<ClientStatusChange> {
    const { state, position } = await this.repo.execute(clientId, meta, (current) => ({
      events: decideClient({ type: 'DisableClient', revokeFamilies, now: Date.now() }, current),
      result: undefined,
    }));
    const revoked = revokeFamilies ? await this.revokeFamiliesOf(clientId, meta) : [];
    return { client: state, changed: position !== undefined, revokedFamilies: revoked };
  }

  private async revokeFamiliesOf(clientId: string, meta: CommandMetadata): Promise<string[]> {
    const head = await this.store.headPosition();
    if (!(await this.readModels.runner.waitFor(head, PROJECTION_WAIT_MS))) {
      throw new LedgerError('unavailable', 'the client is disabled, but the family view is behind: repeat the request to revoke its families');
    }
    const pending = await activeFamiliesOfClient(this.readModels.sql, clientId);
    const revoked: string[] = [];
    const worker = async (): Promise<void> => {
      for (let familyId = pending.shift(); familyId !== undefined; familyId = pending.shift()) {
        const outcome = await this.commandBus.execute(new RevokeFamilyCommand(familyId, CLIENT_DISABLED_REASON, meta));
        if (outcome.revoked) revoked.push(familyId);
      }
    };
    await Promise.all(Array.from({ length: REVOKE_CONCURRENCY }, worker));
    return revoked;
  }
}

@CommandHandler(EnableClientCommand)
export class EnableClientHandler implements ICommandHandler<EnableClientCommand, ClientStatusChange> {
  constructor(@Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>) {}

  async execute({ clientId, meta }: EnableClientCommand): Promise<ClientStatusChange> {
    const { state, position } = await this.repo.execute(clientId, meta, (current) => ({
      events: decideClient({ type: 'EnableClient', now: Date.now() }, current),
      result: undefined,
    }));
    return { client: state, changed: position !== undefined, revokedFamilies: [] };
  }
}
