import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { DpopChecker, dpopHeaderOf } from '../dpop/dpop-checker';
import { commandMetadata } from '../http/request-context';
import { RevokeAccessTokenCommand } from '../ledger/commands/revoke-access-token.command';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { introspection, ResolveTokenQuery, type Introspection } from '../ledger/queries/introspect-token.query';
import { ClientAuthenticator } from './client-authenticator';
import { OAuthError } from './oauth-error';
import { formBody, TOKEN_ACTION_REQUEST } from './oauth.dto';

/** Thin RFC endpoints: parse, authenticate the client, hand a command or query to the bus. The refresh grant is TokenEndpoint. */
@ApiExcludeController()
@Controller('oauth')
export class OAuthController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly clientAuth: ClientAuthenticator,
    private readonly dpop: DpopChecker,
  ) {}

  /** RFC 7009. Unknown, invalid or foreign-but-forged tokens get 200 and change nothing. */
  @Post('revoke')
  @HttpCode(200)
  async revoke(@Req() request: FastifyRequest, @Body() body: unknown): Promise<Record<string, never>> {
    const form = formBody(request, body, TOKEN_ACTION_REQUEST);
    const client = await this.clientAuth.authenticate(request, form, { allowPublic: true });
    const resolved = await this.queryBus.execute(new ResolveTokenQuery(form.token, form.token_type_hint));
    if (resolved.kind === 'unknown') return {};
    if (resolved.state.clientId !== client.clientId) {
      throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
    }
    const meta = commandMetadata(request, `client:${client.clientId}`);
    if (resolved.kind === 'refresh') {
      // A DPoP-bound family is ended only by the key holder: a stolen refresh token alone must not log the user out (docs/dpop.md).
      const bound = resolved.state.dpopJkt;
      if (bound !== undefined) {
        const proof = dpopHeaderOf(request);
        if (proof === undefined) throw new OAuthError('invalid_dpop_proof', 'the refresh token is DPoP-bound: revoking it needs a DPoP proof for its key');
        if ((await this.dpop.check(proof, request.method, Date.now(), '/oauth/revoke')) !== bound) {
          throw new OAuthError('invalid_dpop_proof', 'the DPoP proof is not for the key the refresh token is bound to');
        }
      }
      await this.commandBus.execute(new RevokeFamilyCommand(resolved.state.familyId, 'logout', meta));
    } else {
      await this.commandBus.execute(
        new RevokeAccessTokenCommand(resolved.state.familyId, resolved.claims.jti, resolved.claims.exp * 1000, meta),
      );
    }
    return {};
  }

  /** RFC 7662. The caller must be an authenticated (confidential) client; it sees its own tokens only (§4), or all with introspectAll. */
  @Post('introspect')
  @HttpCode(200)
  async introspect(@Req() request: FastifyRequest, @Body() body: unknown): Promise<Introspection> {
    const form = formBody(request, body, TOKEN_ACTION_REQUEST);
    const client = await this.clientAuth.authenticate(request, form, { allowPublic: false });
    const resolved = await this.queryBus.execute(new ResolveTokenQuery(form.token, form.token_type_hint));
    return introspection(resolved, Date.now(), client);
  }
}
