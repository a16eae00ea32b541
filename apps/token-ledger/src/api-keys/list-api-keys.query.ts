import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { apiKeyIsUsable, toIso, type ApiKeyState } from '@token-ledger/domain';
import { searchAudit, type Page } from '@token-ledger/projections';
import { ApiKeyRegistry } from '../ledger/api-key-registry';
import { READ_MODELS, type ReadModels } from '../ledger/tokens';
import { ReadModelHandler, type Positioned } from '../read-models/read-model.queries';
import type { ApiKeyView } from './api-keys.dto';

export class ListApiKeysQuery extends Query<Positioned<Page<ApiKeyView>>> {
  constructor(
    readonly q: { cursor?: number; limit: number },
    readonly minPosition?: number,
  ) {
    super();
  }
}

/**
 * Newest first. Which keys exist comes from the audit read model (their ApiKeyCreated events); each
 * key's status comes from its own stream in the store, so a revocation shows at once.
 */
@QueryHandler(ListApiKeysQuery)
export class ListApiKeysHandler extends ReadModelHandler implements IQueryHandler<ListApiKeysQuery> {
  constructor(
    @Inject(READ_MODELS) readModels: ReadModels,
    private readonly keys: ApiKeyRegistry,
  ) {
    super(readModels);
  }

  execute({ q, minPosition }: ListApiKeysQuery): Promise<Positioned<Page<ApiKeyView>>> {
    return this.read(minPosition, async () => {
      const page = await searchAudit(this.readModels.sql, { type: 'ApiKeyCreated', cursor: q.cursor, limit: q.limit, order: 'desc' });
      const now = Date.now();
      const states = await Promise.all(page.items.map((e) => this.keys.get((e.data as { keyId: string }).keyId)));
      return { items: states.filter((s): s is ApiKeyState => s !== undefined).map((s) => apiKeyView(s, now)), nextCursor: page.nextCursor };
    });
  }
}

export function apiKeyView(s: ApiKeyState, now: number): ApiKeyView {
  return {
    keyId: s.keyId,
    name: s.name,
    scopes: [...s.scopes],
    status: s.status === 'revoked' ? 'revoked' : apiKeyIsUsable(s, now) ? 'active' : 'expired',
    createdAt: toIso(s.createdAt),
    expiresAt: s.expiresAt === null ? null : toIso(s.expiresAt),
    revokedAt: s.revokedAt === null ? null : toIso(s.revokedAt),
  };
}
