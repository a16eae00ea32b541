import { createHash, timingSafeEqual } from 'node:crypto';
import { applyDecorators, CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { scopesGrant, type ApiKeyScope } from '@token-ledger/domain';
import type { LedgerConfig } from '../config/ledger-config';
import { LedgerMetrics } from '../health/metrics';
import { ProblemError } from '../http/problem';
import { ApiKeyRegistry } from '../ledger/api-key-registry';
import { LEDGER_CONFIG } from '../ledger/tokens';
import { ApiKeyLimiter, AuthFailureLimiter } from '../rate-limit';
import { ADMIN_TOKEN_ACTOR, setPrincipal, type Principal } from './principal';

const SCOPE_METADATA = 'token-ledger:required-scope';
/** Marks a route any authenticated caller may use, whatever its scopes (GET /v1/api-keys/self). */
const ANY_SCOPE = 'token-ledger:any-scope';

/**
 * The API-key scope a /v1 route needs (SPEC §9), also stated in the OpenAPI document. On a controller
 * it applies to every route without its own.
 */
export const RequireScope = (scope: ApiKeyScope) =>
  applyDecorators(
    SetMetadata(SCOPE_METADATA, scope),
    ApiUnauthorizedResponse({ description: 'no API key, or an unknown, revoked or expired one' }),
    ApiForbiddenResponse({ description: `the API key lacks the scope ${scope} (or admin); the problem document names it` }),
  );

/**
 * A /v1 route that needs a valid API key (or the admin token) but no particular scope: what a caller
 * may learn about itself. Explicit, since a route without @RequireScope needs admin (fail closed).
 */
export const RequireAuthentication = () =>
  applyDecorators(
    SetMetadata(SCOPE_METADATA, ANY_SCOPE),
    ApiUnauthorizedResponse({ description: 'no API key, or an unknown, revoked or expired one' }),
  );

/**
 * `/v1/*` needs `Authorization: Bearer <API key>` with the route's scope, or the bootstrap
 * LEDGER_ADMIN_TOKEN (scope admin): 401 for a missing, unknown, revoked or expired key, 403 naming
 * the missing scope. A route that declares no scope needs admin (fail closed). The principal is put
 * on the request for the actor in command metadata. Failed authentications count against the
 * caller's address (guessing), successful ones against the key (README "Rate limits").
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly adminDigest?: Buffer;

  constructor(
    @Inject(LEDGER_CONFIG) config: LedgerConfig,
    private readonly keys: ApiKeyRegistry,
    private readonly reflector: Reflector,
    private readonly metrics: LedgerMetrics,
    private readonly authFailures: AuthFailureLimiter,
    private readonly perKey: ApiKeyLimiter,
  ) {
    // Comparing digests gives equal lengths, so timing reveals neither content nor length.
    this.adminDigest = config.adminToken ? digest(config.adminToken) : undefined;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const required = this.reflector.getAllAndOverride<ApiKeyScope | typeof ANY_SCOPE | undefined>(SCOPE_METADATA, [context.getHandler(), context.getClass()]) ?? 'admin';
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    await this.authFailures.assertNotBlocked(request.ip);
    const principal = await this.authenticate(request.headers.authorization);
    if (!principal) {
      await this.authFailures.recordFailure(request.ip);
      this.metrics.apiAuthentications.inc({ outcome: 'unauthenticated' });
      throw new ProblemError(401, 'Unauthorized', 'a valid API key is required: Authorization: Bearer <key> (unknown, revoked and expired keys are refused)');
    }
    if (required !== ANY_SCOPE && !scopesGrant(principal.scopes, required)) {
      this.metrics.apiAuthentications.inc({ outcome: 'forbidden' });
      throw new ProblemError(403, 'Forbidden', `this API key lacks the scope ${required}`, { requiredScope: required });
    }
    await this.perKey.assertWithinLimit(principal.actor);
    this.metrics.apiAuthentications.inc({ outcome: 'ok' });
    setPrincipal(request, principal);
    return true;
  }

  private async authenticate(header: string | undefined): Promise<Principal | undefined> {
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header ?? '');
    if (!match) return undefined;
    const presented = match[1];
    if (this.adminDigest && timingSafeEqual(digest(presented), this.adminDigest)) {
      return { keyId: null, name: null, scopes: ['admin'], actor: ADMIN_TOKEN_ACTOR };
    }
    const key = await this.keys.authenticate(presented, Date.now());
    return key ? { keyId: key.keyId, name: key.name, scopes: key.scopes, actor: `api-key:${key.keyId}` } : undefined;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
