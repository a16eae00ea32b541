import { Injectable } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseRefreshToken, parseScope } from '@token-ledger/domain';
import { DpopChecker, dpopHeaderOf } from '../dpop/dpop-checker';
import { noteOutcome } from '../http/answer-outcome';
import { commandMetadata } from '../http/request-context';
import { RotateTokenCommand, type RotatedTokens } from '../ledger/commands/rotate-token.command';
import { FamilyPrefetch } from '../ledger/family-prefetch';
import { LedgerMetrics } from '../health/metrics';
import { ClientAuthenticator } from './client-authenticator';
import { OAuthError } from './oauth-error';
import { formBody, TOKEN_REQUEST } from './oauth.dto';
import { tokenResponse } from './token-response';

/**
 * RFC 6749 §6, the refresh_token grant: parse, authenticate the client, hand RotateTokenCommand to
 * the bus. Every rotation comes through here, so it is a plain Fastify route (token-route.ts)
 * rather than a Nest controller method: without Nest's per-request pipeline (execution context,
 * guard/pipe/interceptor machinery, its reply handling) the server spends 5–10 % less CPU a
 * rotation (bench/refresh/README.md, "The token endpoint off Nest").
 */
@Injectable()
export class TokenEndpoint {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly clientAuth: ClientAuthenticator,
    private readonly familyPrefetch: FamilyPrefetch,
    private readonly metrics: LedgerMetrics,
    private readonly dpop: DpopChecker,
  ) {}

  async refresh(request: FastifyRequest, reply: FastifyReply): Promise<Record<string, unknown>> {
    const form = formBody(request, request.body, TOKEN_REQUEST);
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
    return tokenResponse(result, result.dpopJkt);
  }
}
