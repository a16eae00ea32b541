import { Inject, Injectable } from '@nestjs/common';
import type { ClientEvent, ClientState } from '@token-ledger/domain';
import type { AggregateRepository } from './aggregate-repository';
import { CLIENT_REPOSITORY } from './tokens';

/**
 * Registered clients, read from the `client-<id>` stream on every call — no cache.
 *
 * A client can be disabled and its secret rotated (SPEC §9), and whether a request may act as the
 * client is a security decision: it comes from the store, never from a cache. One read per
 * authentication is cheap: the stream's snapshot is one row, and concurrent loadStreams share one
 * query (the store batches them), so under load it rides along with the family reads. What that
 * buys: every instance sees a rotation or a disable as soon as the command has returned (no
 * invalidation to miss, no TTL window); a cache revalidated by a subscription would still answer
 * from stale state while the notification is in flight.
 */
@Injectable()
export class ClientRegistry {
  constructor(@Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientEvent>) {}

  /** The client as stored now (disabled ones included), or undefined when the id is not registered. */
  async get(clientId: string): Promise<ClientState | undefined> {
    const { state } = await this.repo.load(clientId);
    return state.status === 'registered' ? state : undefined;
  }
}
