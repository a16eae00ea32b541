import { Body, Controller, Get, HttpCode, Param, Patch, Post, Req, Res, UseGuards } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseScope, type ClientState } from '@token-ledger/domain';
import { ProblemError } from '../http/problem';
import { commandMetadata } from '../http/request-context';
import { validateInput } from '../http/validate';
import { IssueTokenCommand } from '../ledger/commands/issue-token.command';
import { RegisterClientCommand } from '../ledger/commands/register-client.command';
import { ChangeClientPolicyCommand } from '../ledger/commands/change-client-policy.command';
import { DisableClientCommand, EnableClientCommand, type ClientStatusChange } from '../ledger/commands/disable-client.command';
import { RotateClientSecretCommand } from '../ledger/commands/rotate-client-secret.command';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { RevokeSubjectCommand } from '../ledger/commands/revoke-subject.command';
import { GetClientQuery } from '../ledger/queries/get-client.query';
import { ApiKeyGuard, RequireScope } from '../api-keys/api-key.guard';
import { actorOf } from '../api-keys/principal';
import { tokenResponse } from '../oauth/token-response';
import {
  ChangeClientPolicyRequest,
  DisableClientRequest,
  IssueFamilyRequest,
  RegisterClientRequest,
  RevokeRequest,
  RotateClientSecretRequest,
} from './admin.dto';

/** The trusted side of the API: the login service and operators (SPEC §3; each route's API-key scope, §9). */
@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('v1')
export class AdminController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
  ) {}

  @Post('clients')
  @RequireScope('clients:write')
  @HttpCode(201)
  @ApiBody({ type: RegisterClientRequest })
  async registerClient(@Req() request: FastifyRequest, @Body() body: unknown): Promise<Record<string, unknown>> {
    const input = validated(RegisterClientRequest, body);
    const { client, generatedSecret } = await this.commandBus.execute(new RegisterClientCommand(input, commandMetadata(request, actorOf(request))));
    return { ...clientView(client), ...(generatedSecret ? { secret: generatedSecret } : {}) };
  }

  @Get('clients/:id')
  @RequireScope('clients:write')
  async getClient(@Param('id') id: string): Promise<Record<string, unknown>> {
    const client = await this.queryBus.execute(new GetClientQuery(id));
    if (!client) throw new ProblemError(404, 'Not Found', `no client ${id}`);
    return clientView(client);
  }

  @Post('clients/:id/secret')
  @RequireScope('clients:write')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Rotate the client secret',
    description:
      'Generates a new secret and returns it once (never stored in plain). The replaced secret keeps authenticating for overlapSeconds (default 0). ' +
      'Every instance uses the new secret as soon as this returns. Header x-event-position: of concurrent rotations, the highest is in force. 400 for a public client.',
  })
  @ApiBody({ type: RotateClientSecretRequest, required: false })
  async rotateClientSecret(
    @Req() request: FastifyRequest,
    @Param('id') id: string,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Record<string, unknown>> {
    const { overlapSeconds } = validated(RotateClientSecretRequest, body ?? {});
    const rotated = await this.commandBus.execute(new RotateClientSecretCommand(id, overlapSeconds ?? 0, commandMetadata(request, actorOf(request))));
    reply.header('x-event-position', String(rotated.position));
    return { ...clientView(rotated.client), secret: rotated.secret };
  }

  @Post('clients/:id/disable')
  @RequireScope('clients:write')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Disable a client',
    description:
      'From now on the client gets 401 invalid_client on every OAuth endpoint and no new families. revokeFamilies: true also revokes its active ' +
      'families (reason client_disabled); idempotent, so repeating it revokes what an interrupted call left.',
  })
  @ApiBody({ type: DisableClientRequest, required: false })
  async disableClient(@Req() request: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const { revokeFamilies } = validated(DisableClientRequest, body ?? {});
    return statusView(await this.commandBus.execute(new DisableClientCommand(id, revokeFamilies === true, commandMetadata(request, actorOf(request)))));
  }

  @Post('clients/:id/enable')
  @RequireScope('clients:write')
  @HttpCode(200)
  @ApiOperation({ summary: 'Enable a disabled client', description: 'Idempotent. Families revoked while it was disabled stay revoked.' })
  async enableClient(@Req() request: FastifyRequest, @Param('id') id: string): Promise<Record<string, unknown>> {
    return statusView(await this.commandBus.execute(new EnableClientCommand(id, commandMetadata(request, actorOf(request)))));
  }

  @Patch('clients/:id')
  @RequireScope('clients:write')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Change a client\'s policy',
    description: 'Scopes, TTLs, reuse grace, maxFamiliesPerSubject, introspectAll; absent fields keep their value. Families already issued keep the policy they were issued under.',
  })
  @ApiBody({ type: ChangeClientPolicyRequest })
  async changeClient(@Req() request: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const input = validated(ChangeClientPolicyRequest, body);
    return clientView(await this.commandBus.execute(new ChangeClientPolicyCommand(id, { ...input }, commandMetadata(request, actorOf(request)))));
  }

  /** IssueToken: RFC 6749 §5.1 token response plus family_id and refresh_token_expires_in. */
  @Post('families')
  @RequireScope('families:issue')
  @HttpCode(201)
  @ApiBody({ type: IssueFamilyRequest })
  async issue(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const raw = body as Record<string, unknown> | null;
    // audience may be one string or a list.
    const input = validated(IssueFamilyRequest, raw && typeof raw.audience === 'string' ? { ...raw, audience: [raw.audience] } : raw);
    const scope = parseScope(input.scope);
    if (!scope || scope.length === 0) throw new ProblemError(400, 'Invalid scope', 'scope must be space-delimited scope tokens (RFC 6749 §3.3)', { error: 'invalid_scope' });
    const meta = commandMetadata(request, actorOf(request));
    const issued = await this.commandBus.execute(
      new IssueTokenCommand(
        { subject: input.subject, clientId: input.clientId, scope, audience: input.audience, context: input.context ? { ...input.context } : undefined, dpopJkt: input.dpopJkt },
        { ...meta, context: input.context ? { ...input.context } : meta.context },
      ),
    );
    reply.header('x-event-position', String(issued.position));
    return { ...tokenResponse(issued, input.dpopJkt), family_id: issued.familyId };
  }

  @Post('families/:id/revoke')
  @RequireScope('families:revoke')
  @HttpCode(200)
  @ApiBody({ type: RevokeRequest })
  async revokeFamily(@Req() request: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const { reason } = validated(RevokeRequest, body);
    const outcome = await this.commandBus.execute(new RevokeFamilyCommand(id, reason, commandMetadata(request, actorOf(request))));
    if (!outcome.found) throw new ProblemError(404, 'Not Found', `no family ${id}`);
    return { familyId: id, revoked: outcome.revoked, status: outcome.state.status, revokedReason: outcome.state.revokedReason };
  }

  @Post('subjects/:sub/revoke')
  @RequireScope('subjects:revoke')
  @HttpCode(200)
  @ApiBody({ type: RevokeRequest })
  @ApiOkResponse({
    description:
      '{subject, revokedFamilies}: the families this call revoked. A call retried after a failure finishes the revocation left pending and lists what it revoked itself (not the families the failed attempt already had).',
  })
  async revokeSubject(@Req() request: FastifyRequest, @Param('sub') subject: string, @Body() body: unknown): Promise<Record<string, unknown>> {
    const { reason } = validated(RevokeRequest, body);
    const outcome = await this.commandBus.execute(new RevokeSubjectCommand(subject, reason, commandMetadata(request, actorOf(request))));
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
    introspectAll: c.introspectAll,
    requireDpop: c.requireDpop === true,
    disabled: c.disabled,
    ...(c.previousSecretHash && c.previousSecretValidUntil > Date.now() ? { previousSecretValidUntil: new Date(c.previousSecretValidUntil).toISOString() } : {}),
  };
}

function statusView(change: ClientStatusChange): Record<string, unknown> {
  return { ...clientView(change.client), changed: change.changed, revokedFamilies: change.revokedFamilies };
}
