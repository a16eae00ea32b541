import { Inject, Injectable, UnauthorizedException, ServiceUnavailableException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { VerifyError, type Verifier } from './verifier';

/** Injection token for the Verifier the guard uses: `{ provide: TOKEN_VERIFIER, useValue: createVerifier(…) }`. */
export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');

/**
 * NestJS guard for resource servers: `Authorization: Bearer <access token>` → verify() → the claims
 * on `request.accessToken`. 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750) for
 * bad or revoked tokens; 503 when fail-closed and the revocation feed is stale.
 */
@Injectable()
export class AccessTokenGuard implements CanActivate {
  constructor(@Inject(TOKEN_VERIFIER) private readonly verifier: Verifier) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<{ headers: Record<string, string | undefined>; accessToken?: unknown }>();
    const reply = http.getResponse<{ header?: (k: string, v: string) => void; setHeader?: (k: string, v: string) => void }>();
    const setHeader = (k: string, v: string) => (reply.header ? reply.header(k, v) : reply.setHeader?.(k, v));
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(request.headers.authorization ?? '');
    if (!match) {
      setHeader('www-authenticate', 'Bearer');
      throw new UnauthorizedException();
    }
    try {
      const verified = await this.verifier.verify(match[1]);
      request.accessToken = verified.payload;
      return true;
    } catch (error) {
      if (error instanceof VerifyError && error.code === 'feed_unavailable') throw new ServiceUnavailableException('revocation status unavailable');
      const description = error instanceof VerifyError ? error.message : 'invalid token';
      setHeader('www-authenticate', `Bearer error="invalid_token", error_description="${description.replace(/["\\]/g, '')}"`);
      throw new UnauthorizedException(description);
    }
  }
}
