import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { ClientState } from '@token-ledger/domain';
import { ClientRegistry } from '../client-registry';

export class GetClientQuery extends Query<ClientState | undefined> {
  constructor(readonly clientId: string) {
    super();
  }
}

@QueryHandler(GetClientQuery)
export class GetClientHandler implements IQueryHandler<GetClientQuery, ClientState | undefined> {
  constructor(private readonly clients: ClientRegistry) {}

  execute({ clientId }: GetClientQuery): Promise<ClientState | undefined> {
    return this.clients.get(clientId);
  }
}
