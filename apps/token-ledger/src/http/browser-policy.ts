import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import type { LedgerConfig } from '../config/ledger-config';
import { isConsolePath } from '../console/console-static';

/**
 * What browsers are told: security headers on every answer, and CORS for the few endpoints a
 * browser-based public client calls (refresh and revoke its tokens, read the metadata and keys).
 */
export function applyBrowserPolicy(app: NestFastifyApplication, config: Pick<LedgerConfig, 'issuer' | 'corsOrigins'>): void {
  securityHeaders(app.getHttpAdapter().getInstance(), config.issuer);
  tokenEndpointCors(app, config.corsOrigins);
}

/**
 * The analyst console (/console) is the one page this service serves: its own scripts, styles and
 * API calls only — no inline script or style, no framing, no plug-ins, no foreign connections.
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** One year, the usual HSTS lifetime; no includeSubDomains, which would bind hosts this service does not own. */
const HSTS = 'max-age=31536000';

/**
 * Every answer but the console's is JSON (or SSE) for programs, never a page: it must not be sniffed into HTML, framed,
 * run as a script's document, or leak its URL in a Referer. Set in onSend so error answers, 404s and
 * preflights carry them too. HSTS only when the issuer is https: over plain http browsers ignore it,
 * and a local http setup must stay reachable.
 *
 * A hook rather than @fastify/helmet: helmet's defaults are made for HTML pages (a script/style CSP,
 * cross-origin isolation headers, X-XSS-Protection) and most would need overriding here, while this
 * fixed set is five headers that each say why they are there.
 */
function securityHeaders(fastify: FastifyInstance, issuer: string): void {
  const hsts = new URL(issuer).protocol === 'https:';
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    // Only the console's own paths get a policy that lets a page run; everything else stays 'none'.
    reply.header('content-security-policy', isConsolePath(request.url) ? CONSOLE_CSP : API_CSP);
    if (hsts) reply.header('strict-transport-security', HSTS);
    done(null, payload);
  });
}

/**
 * Endpoints a browser-based public client needs cross-origin, with their methods. Not introspection
 * (for confidential clients and resource servers, which are not browsers), not /v1 (back ends).
 */
const CORS_METHODS = new Map<string, string>([
  ['/oauth/token', 'POST'],
  ['/oauth/revoke', 'POST'],
  ['/.well-known/oauth-authorization-server', 'GET, HEAD'],
  ['/.well-known/jwks.json', 'GET, HEAD'],
]);

/**
 * CORS with @fastify/cors through Nest's enableCors, decided per request: only the endpoints above,
 * only an Origin listed exactly in LEDGER_CORS_ORIGINS. Anything else gets no CORS header at all (a
 * preflight then finds no route, answered as any unknown route). No credentials: tokens travel in request bodies, never in
 * cookies. With no origin configured nothing is registered.
 */
function tokenEndpointCors(app: NestFastifyApplication, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  const options: CorsOptions = {
    delegator: (request, callback) => {
      const methods = CORS_METHODS.get(request.url.split('?')[0]);
      const origin = request.headers.origin;
      if (!methods || !origin || !allowed.has(origin)) return callback(null, { origin: false });
      callback(null, {
        origin,
        methods,
        credentials: false,
        // DPoP: a browser client's proof (RFC 9449), on the token endpoint.
        allowedHeaders: 'Authorization, Content-Type, X-Device-Id, DPoP',
        // A browser may only read these beyond the CORS-safelisted ones: when to retry, why a client was refused, the DPoP server nonce.
        exposedHeaders: 'Retry-After, WWW-Authenticate, DPoP-Nonce',
        maxAge: 600,
      });
    },
  };
  app.enableCors(options);
}

/** @fastify/cors's options, as Nest's adapter takes them (no import of the adapter's own dependency). */
type CorsOptions = NonNullable<Parameters<NestFastifyApplication['enableCors']>[0]>;
