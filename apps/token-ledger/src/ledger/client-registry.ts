import { Inject, Injectable } from '@nestjs/common';
import type { ClientRegistered, ClientState } from '@token-ledger/domain';
import type { AggregateRepository } from './aggregate-repository';
import { CLIENT_REPOSITORY } from './tokens';

const MAX_CACHED = 10_000;

/**
 * Registered clients. A registration is immutable (there is no update API), so a client read once
 * from its stream may be kept: this is configuration, not a token decision, and it keeps the hot
 * path at one store read per refresh.
 */
@Injectable()
export class ClientRegistry {
  private readonly cache = new Map<string, ClientState>();

  constructor(@Inject(CLIENT_REPOSITORY) private readonly repo: AggregateRepository<ClientState, ClientRegistered>) {}

  async get(clientId: string): Promise<ClientState | undefined> {
    const cached = this.cache.get(clientId);
    if (cached) return cached;
    const { state } = await this.repo.load(clientId);
    if (state.status !== 'registered') return undefined;
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(clientId, state);
    return state;
  }
}
