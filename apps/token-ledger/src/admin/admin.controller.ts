import { Body, Controller, Get, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { formatScope, parseScope, type ClientState } from '@token-ledger/domain';
import { ProblemError } from '../http/problem';
import { commandMetadata } from '../http/request-context';
import { validateInput } from '../http/validate';
import { IssueTokenCommand } from '../ledger/commands/issue-token.command';
import { RegisterClientCommand } from '../ledger/commands/register-client.command';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { RevokeSubjectCommand } from '../ledger/commands/revoke-subject.command';
import { GetClientQuery } from '../ledger/queries/get-client.query';
import { AdminAuthGuard } from './admin-auth.guard';
import { IssueFamilyRequest, RegisterClientRequest, RevokeRequest } from './admin.dto';

const ACTOR = 'admin';

/** The trusted side of the API: the login service and operators (SPEC §3, admin bearer). */
@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(AdminAuthGuard)
@Controller('v1')
export class AdminController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
  ) {}

  @Post('clients')
  @HttpCode(201)
  @ApiBody({ type: RegisterClientRequest })
  async registerClient(@Req() request: FastifyRequest, @Body() body: unknown): Promise<Record<string, unknown>> {
    const input = validated(RegisterClientRequest, body);
    const { client, generatedSecret } = await this.commandBus.execute(new RegisterClientCommand(input, commandMetadata(request, ACTOR)));
    return { ...clientView(client), ...(generatedSecret ? { secret: generatedSecret } : {}) };
  }

  @Get('clients/:id')
  async getClient(@Param('id') id: string): Promise<Record<string, unknown>> {
    const client = await this.queryBus.execute(new GetClientQuery(id));
    if (!client) throw new ProblemError(404, 'Not Found', `no client ${id}`);
    return clientView(client);
  }

  /** IssueToken: RFC 6749 §5.1 token response plus family_id and refresh_token_expires_in. */
  @Post('families')
  @HttpCode(201)
  @ApiBody({ type: IssueFamilyRequest })
  async issue(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const raw = body as Record<string, unknown> | null;
    // audience may be one string or a list.
    const input = validated(IssueFamilyRequest, raw && typeof raw.audience === 'string' ? { ...raw, audience: [raw.audience] } : raw);
    const scope = parseScope(input.scope);
    if (!scope || scope.length === 0) throw new ProblemError(400, 'Invalid scope', 'scope must be space-delimited scope tokens (RFC 6749 §3.3)', { error: 'invalid_scope' });
    const meta = commandMetadata(request, ACTOR);
    const issued = await this.commandBus.execute(
      new IssueTokenCommand(
        { subject: input.subject, clientId: input.clientId, scope, audience: input.audience, context: input.context ? { ...input.context } : undefined },
        { ...meta, context: input.context ? { ...input.context } : meta.context },
      ),
    );
    reply.header('x-event-position', String(issued.position));
    return {
      access_token: issued.accessToken,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      refresh_token: issued.refreshToken,
      refresh_token_expires_in: issued.refreshTokenExpiresIn,
      scope: formatScope(issued.scope),
      family_id: issued.familyId,
    };
  }

  @Post('families/:id/revoke')
  @HttpCode(200)
  @ApiBody({ type: RevokeRequest })
  async revokeFamily(@Req() request: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const { reason } = validated(RevokeRequest, body);
    const outcome = await this.commandBus.execute(new RevokeFamilyCommand(id, reason, commandMetadata(request, ACTOR)));
    if (!outcome.found) throw new ProblemError(404, 'Not Found', `no family ${id}`);
    return { familyId: id, revoked: outcome.revoked, status: outcome.state.status, revokedReason: outcome.state.revokedReason };
  }

  @Post('subjects/:sub/revoke')
  @HttpCode(200)
  @ApiBody({ type: RevokeRequest })
  @ApiOkResponse({
    description:
      '{subject, revokedFamilies}: the families this call revoked. A call retried after a failure finishes the revocation left pending and lists what it revoked itself (not the families the failed attempt already had).',
  })
  async revokeSubject(@Req() request: FastifyRequest, @Param('sub') subject: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const { reason } = validated(RevokeRequest, body);
    const outcome = await this.commandBus.execute(new RevokeSubjectCommand(subject, reason, commandMetadata(request, ACTOR)));
    return { subject, revokedFamilies: outcome.revokedFamilies };
  }
}

function validated<T extends object>(cls: new () => T, body: unknown): T {
  const result = validateInput(cls, body);
  if (!result.ok) throw new ProblemError(400, 'Invalid request', result.errors.join('; '), { errors: result.errors });
  return result.value;
}

/** A client as the API shows it: never the secret or its hash. */
function clientView(c: ClientState): Record<string, unknown> {
  return {
    clientId: c.clientId,
    type: c.type,
    allowedScopes: c.allowedScopes,
    accessTokenTtl: c.policy.accessTokenTtl,
    refreshIdleTtl: c.policy.refreshIdleTtl,
    refreshAbsoluteTtl: c.policy.refreshAbsoluteTtl,
    reuseGraceSeconds: c.policy.reuseGraceSeconds,
    maxFamiliesPerSubject: c.maxFamiliesPerSubject,
  };
}
