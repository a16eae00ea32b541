import { Inject, Injectable, Optional, UnauthorizedException, ServiceUnavailableException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { VerifyError, type Verifier } from './verifier';

/** Injection token for the Verifier the guard uses: `{ provide: TOKEN_VERIFIER, useValue: createVerifier(…) }`. */
export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');
/** Optional injection token for AccessTokenGuardOptions: `{ provide: ACCESS_TOKEN_GUARD_OPTIONS, useValue: { publicBaseUrl } }`. */
export const ACCESS_TOKEN_GUARD_OPTIONS = Symbol('ACCESS_TOKEN_GUARD_OPTIONS');

export interface AccessTokenGuardOptions {
  /**
   * The scheme, host (and port, and path prefix a proxy strips) clients use to reach this resource
   * server, e.g. `https://api.example.com` or `https://example.com/orders`: DPoP proofs are bound to
   * that URL (htu), which the server cannot see behind a proxy. Set it in production: without it the
   * URL is rebuilt from the framework's protocol (Fastify/Express trust-proxy rules) and the Host
   * header, which the client chooses.
   */
  publicBaseUrl?: string;
}

/** What the guard reads of a Fastify or Express request (both are supported). */
interface HttpRequest {
  method: string;
  url: string;
  originalUrl?: string;
  protocol?: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders?: string[];
  raw?: { rawHeaders?: string[]; url?: string; socket?: { encrypted?: boolean } };
  socket?: { encrypted?: boolean };
  accessToken?: unknown;
  accessTokenJkt?: string;
}

/**
 * NestJS guard for resource servers: `Authorization: Bearer <access token>`, or
 * `Authorization: DPoP <access token>` with one `DPoP` proof header (RFC 9449 §7) → verifyRequest()
 * → the claims on `request.accessToken` (and the proof key's thumbprint on `request.accessTokenJkt`).
 * - no credentials: 401 with both challenges, `Bearer` and `DPoP algs="…"`;
 * - bad, revoked or wrongly presented token: 401 `Bearer error="invalid_token"` (RFC 6750) or
 *   `DPoP error="invalid_token"`, per the scheme used; a bad DPoP proof: 401 `DPoP error="invalid_dpop_proof"`;
 * - revocation feed stale (fail-closed) or DPoP replay cache unavailable: 503 with Retry-After.
 */
@Injectable()
export class AccessTokenGuard implements CanActivate {
  private readonly publicBase?: string;

  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: Verifier,
    @Optional() @Inject(ACCESS_TOKEN_GUARD_OPTIONS) options?: AccessTokenGuardOptions,
  ) {
    if (options?.publicBaseUrl !== undefined) this.publicBase = parsePublicBaseUrl(options.publicBaseUrl);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<HttpRequest>();
    const reply = http.getResponse<{ header?: (k: string, v: string) => void; setHeader?: (k: string, v: string) => void }>();
    const setHeader = (k: string, v: string) => (reply.header ? reply.header(k, v) : reply.setHeader?.(k, v));
    const algs = `algs="${this.verifier.dpopAlgorithms.join(' ')}"`;
    const authorization = request.headers.authorization;
    try {
      const verified = await this.verifier.verifyRequest({
        method: request.method,
        url: this.requestUrl(request),
        authorization: typeof authorization === 'string' ? authorization : undefined,
        dpop: dpopHeaders(request),
      });
      request.accessToken = verified.payload;
      request.accessTokenJkt = verified.jkt;
      return true;
    } catch (error) {
      if (error instanceof VerifyError && (error.code === 'feed_unavailable' || error.code === 'replay_cache_unavailable')) {
        setHeader('retry-after', '5');
        throw new ServiceUnavailableException(error.code === 'feed_unavailable' ? 'revocation status unavailable' : 'DPoP replay cache unavailable');
      }
      if (error instanceof VerifyError && error.code === 'invalid_request') {
        // RFC 6750 §3.1 / RFC 9449 §7.1: no error code when the request carries no credentials.
        setHeader('www-authenticate', `Bearer, DPoP ${algs}`);
        throw new UnauthorizedException();
      }
      const code = error instanceof VerifyError && error.code === 'invalid_dpop_proof' ? 'invalid_dpop_proof' : 'invalid_token';
      const description = error instanceof VerifyError ? error.message : 'invalid token';
      const quoted = description.replace(/[\x00-\x1f"\\]/g, '');
      const scheme = error instanceof VerifyError && error.scheme === 'DPoP' ? 'DPoP' : 'Bearer';
      setHeader('www-authenticate', scheme === 'DPoP' ? `DPoP error="${code}", error_description="${quoted}", ${algs}` : `Bearer error="${code}", error_description="${quoted}"`);
      throw new UnauthorizedException(description);
    }
  }

  /** The URL the client used, without the query (htu ignores it): public base + the path as received. */
  private requestUrl(request: HttpRequest): string {
    const target = request.originalUrl ?? request.raw?.url ?? request.url;
    const path = target.startsWith('/') ? target : `/${target}`;
    if (this.publicBase !== undefined) return `${this.publicBase}${path}`;
    const encrypted = request.raw?.socket?.encrypted ?? request.socket?.encrypted;
    const protocol = request.protocol === 'https' || request.protocol === 'http' ? request.protocol : encrypted ? 'https' : 'http';
    const host = firstHeader(request.headers.host) ?? firstHeader(request.headers[':authority']) ?? 'localhost';
    return `${protocol}://${host}${path}`;
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Every DPoP header as sent. Node joins repeated unknown headers into one value with ", ", so the raw
 * header list is the source: two proofs must be seen as two (RFC 9449 §4.3: exactly one).
 */
function dpopHeaders(request: HttpRequest): string[] {
  const raw = request.raw?.rawHeaders ?? request.rawHeaders;
  if (raw) {
    const values: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === 'dpop') values.push(raw[i + 1]);
    return values;
  }
  const value = request.headers.dpop;
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function parsePublicBaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`AccessTokenGuard publicBaseUrl is not an absolute URL: ${value}`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username) {
    throw new Error(`AccessTokenGuard publicBaseUrl must be an http(s) URL without query, fragment or credentials: ${value}`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
