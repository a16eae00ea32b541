import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isApiKeyScope, scopesGrant } from '@token-ledger/domain';
import { decodeCursor } from '@token-ledger/projections';
import { ProblemError } from '../http/problem';
import { commandMetadata } from '../http/request-context';
import { validateInput } from '../http/validate';
import { CreateApiKeyCommand } from '../ledger/commands/create-api-key.command';
import { RevokeApiKeyCommand } from '../ledger/commands/revoke-api-key.command';
import { ApiKeyGuard, RequireAuthentication, RequireScope } from './api-key.guard';
import { ApiKeyView, CreateApiKeyRequest, CreatedApiKeyView, ListApiKeysQueryDto, SelfView } from './api-keys.dto';
import { apiKeyView, ListApiKeysQuery } from './list-api-keys.query';
import { actorOf, principalOf } from './principal';

const DEFAULT_LIMIT = 50;

/** Scoped API keys for /v1 (SPEC §3, §9). Creation and revocation are events on `apikey-<keyId>`. */
@ApiTags('api keys')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@RequireScope('api-keys:write')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create an API key', description: 'The key is in this answer only; the ledger keeps a keyed hash. A key can grant only scopes it has itself (admin has all).' })
  @ApiBody({ type: CreateApiKeyRequest })
  @ApiCreatedResponse({ type: CreatedApiKeyView, headers: { 'X-Event-Position': { description: 'store position of ApiKeyCreated (use as minPosition= on GET)' } } })
  async create(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const input = validated(CreateApiKeyRequest, body);
    const unknown = input.scopes.filter((s) => !isApiKeyScope(s));
    if (unknown.length > 0) throw invalid(`unknown scopes: ${unknown.join(', ')}`);
    // Least privilege: api-keys:write alone must not mint an admin key.
    const principal = principalOf(request)!;
    const beyond = input.scopes.filter((s) => isApiKeyScope(s) && !scopesGrant(principal.scopes, s));
    if (beyond.length > 0) {
      throw new ProblemError(403, 'Forbidden', `this API key lacks the scope ${beyond[0]}, so it cannot grant it`, { requiredScope: beyond[0] });
    }
    const expiresAt = input.expiresAt === undefined ? undefined : Date.parse(input.expiresAt);
    const created = await this.commandBus.execute(
      new CreateApiKeyCommand({ name: input.name, scopes: input.scopes, expiresAt }, commandMetadata(request, principal.actor)),
    );
    if (created.position !== undefined) reply.header('x-event-position', String(created.position));
    const { keyId, name, scopes, createdAt, expiresAt: expires } = apiKeyView(created.state, Date.now());
    return { keyId, key: created.key, name, scopes, createdAt, expiresAt: expires };
  }

  @Get()
  @ApiOperation({ summary: 'List API keys, newest first', description: 'Never shows a key or its hash. `{items, nextCursor}`.' })
  @ApiOkResponse({ type: [ApiKeyView] })
  async list(@Query() query: unknown, @Res() reply: FastifyReply): Promise<void> {
    const q = validated(ListApiKeysQueryDto, { ...(query as object) });
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor) ?? invalidCursor();
    const result = await this.queryBus.execute(new ListApiKeysQuery({ cursor, limit: q.limit ?? DEFAULT_LIMIT }, q.minPosition));
    reply.header('x-projection-position', String(result.position)).send(result.value);
  }

  @Get('self')
  @RequireAuthentication()
  @ApiOperation({ summary: 'The calling key: id, name and scopes', description: 'Any valid API key (or the bootstrap admin token), whatever its scopes. Never shows the key or its hash.' })
  @ApiOkResponse({ type: SelfView })
  self(@Req() request: FastifyRequest): SelfView {
    const principal = principalOf(request)!;
    return {
      keyId: principal.keyId,
      name: principal.name,
      scopes: [...principal.scopes],
      principal: principal.keyId === null ? 'admin-token' : 'api-key',
    };
  }

  @Post(':keyId/revoke')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API key', description: 'Takes effect at once on every instance. Revoking a revoked key changes nothing (revoked: false).' })
  @ApiOkResponse({ type: ApiKeyView, description: 'the key as it is now, and revoked: whether this call revoked it' })
  @ApiNotFoundResponse({ description: 'no such key' })
  async revoke(@Req() request: FastifyRequest, @Param('keyId') keyId: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const outcome = await this.commandBus.execute(new RevokeApiKeyCommand(keyId, commandMetadata(request, actorOf(request))));
    if (outcome.position !== undefined) reply.header('x-event-position', String(outcome.position));
    return { ...apiKeyView(outcome.state, Date.now()), revoked: outcome.revoked };
  }
}

function validated<T extends object>(cls: new () => T, body: unknown): T {
  const result = validateInput(cls, body);
  if (!result.ok) throw new ProblemError(400, 'Invalid request', result.errors.join('; '), { errors: result.errors });
  return result.value;
}

function invalid(detail: string): ProblemError {
  return new ProblemError(400, 'Invalid request', detail, { errors: [detail] });
}

function invalidCursor(): never {
  throw new ProblemError(400, 'Invalid query', 'cursor is not one this API returned');
}
