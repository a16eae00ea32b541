import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { formatScope, parseRefreshToken, parseScope } from '@token-ledger/domain';
import { DpopChecker, dpopHeaderOf } from '../dpop/dpop-checker';
import { noteOutcome } from '../http/answer-outcome';
import { commandMetadata } from '../http/request-context';
import { RevokeAccessTokenCommand } from '../ledger/commands/revoke-access-token.command';
import { RevokeFamilyCommand } from '../ledger/commands/revoke-family.command';
import { RotateTokenCommand, type RotatedTokens } from '../ledger/commands/rotate-token.command';
import { FamilyPrefetch } from '../ledger/family-prefetch';
import { LedgerMetrics } from '../health/metrics';
import { introspection, ResolveTokenQuery, type Introspection } from '../ledger/queries/introspect-token.query';
import { ClientAuthenticator } from './client-authenticator';
import { OAuthError } from './oauth-error';
import { checkForm, TOKEN_ACTION_REQUEST, TOKEN_REQUEST } from './oauth.dto';

/** Thin RFC endpoints: parse, authenticate the client, hand a command or query to the bus. */
@ApiExcludeController()
@Controller('oauth')
export class OAuthController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly clientAuth: ClientAuthenticator,
    private readonly familyPrefetch: FamilyPrefetch,
    private readonly metrics: LedgerMetrics,
    private readonly dpop: DpopChecker,
  ) {}

  /** RFC 6749 §6: refresh_token grant. */
  @Post('token')
  @HttpCode(200)
  async token(@Req() request: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const form = formBody(request, body, TOKEN_REQUEST);
    if (form.grant_type !== 'refresh_token') {
      throw new OAuthError('unsupported_grant_type', 'only grant_type=refresh_token is supported');
    }
    // The family loads while the client authenticates; used only once it did (FamilyPrefetch).
    const early = form.refresh_token ? parseRefreshToken(form.refresh_token) : undefined;
    const prefetched = early ? this.familyPrefetch.start(early.familyId) : undefined;
    const client = await this.clientAuth.authenticate(request, form, { allowPublic: true });
    this.metrics.countClientRefresh(client.clientId);
    if (!form.refresh_token) throw new OAuthError('invalid_request', 'refresh_token is required');
    const presented = parseRefreshToken(form.refresh_token);
    if (!presented) throw new OAuthError('invalid_grant', 'the refresh token is invalid');
    let scope: string[] | undefined;
    if (form.scope !== undefined) {
      const parsed = parseScope(form.scope);
      if (!parsed || parsed.length === 0) throw new OAuthError('invalid_scope', 'malformed scope');
      scope = parsed;
    }
    // RFC 9449: a request without a DPoP header costs nothing here (no I/O, no await).
    const proof = dpopHeaderOf(request);
    const dpopJkt = proof === undefined ? undefined : await this.dpop.check(proof, request.method, Date.now());
    const meta = commandMetadata(request, `client:${client.clientId}`);
    const result: RotatedTokens = await this.commandBus.execute(new RotateTokenCommand(presented, client.clientId, scope, meta.context, meta, dpopJkt, prefetched));
    // Counted with its status when the answer goes out (create-app.ts), like every error.
    noteOutcome(request, result.replayed ? 'replayed' : 'rotated');
    if (proof !== undefined) {
      const nonce = this.dpop.nonceHeader(Date.now());
      if (nonce !== undefined) reply.header('dpop-nonce', nonce);
    }
    return {
      access_token: result.accessToken,
      // RFC 9449 §5: a DPoP-bound access token (cnf.jkt) is of type DPoP.
      token_type: result.dpopJkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: result.expiresIn,
      refresh_token: result.refreshToken,
      refresh_token_expires_in: result.refreshTokenExpiresIn,
      scope: formatScope(result.scope),
    };
  }

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

function formBody<S extends Parameters<typeof checkForm>[0]>(request: FastifyRequest, body: unknown, spec: S) {
  const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const result = checkForm(spec, body ?? {});
  if (!result.ok) throw new OAuthError('invalid_request', result.errors.join('; '));
  return result.value;
}
