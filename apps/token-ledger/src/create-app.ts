import { CommandBus } from '@nestjs/cqrs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { defaultConsoleDir, registerConsole } from './console/console-static';
import { applyBrowserPolicy } from './http/browser-policy';
import { refreshOutcome } from './http/answer-outcome';
import { LedgerExceptionFilter } from './http/exception.filter';
import { PinoNestLogger } from './http/logger';
import { TokenEndpoint } from './oauth/token-endpoint';
import { registerTokenRoute } from './oauth/token-route';
import type { LedgerRuntime } from './runtime';
import { tracingStarted } from './tracing/tracing';

/** The audit trail's and read models' routes (M10: who reads what), by the view label they count under. */
const AUDIT_VIEWS: Readonly<Record<string, string>> = {
  '/v1/audit': 'audit',
  '/v1/families/:id/timeline': 'timeline',
  '/v1/families/:id': 'family',
  '/v1/subjects/:sub/families': 'subject',
  '/v1/anomalies': 'anomalies',
};

/** Request bodies are small forms and JSON documents; anything bigger is refused with 413. */
export const BODY_LIMIT_BYTES = 16 * 1024;

export async function createApp(runtime: LedgerRuntime): Promise<NestFastifyApplication> {
  const { config, logger, metrics } = runtime;
  const adapter = new FastifyAdapter({
    trustProxy: config.trustProxy,
    bodyLimit: BODY_LIMIT_BYTES,
    logger: false,
    // Query strings and paths never carry tokens here, but keep URLs bounded all the same.
    routerOptions: { maxParamLength: 256 },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(runtime), adapter, {
    logger: new PinoNestLogger(logger.child({ component: 'nest' })),
  });

  const fastify = app.getHttpAdapter().getInstance();
  if (tracingStarted()) {
    // Loaded only with tracing on (docs/tracing.md): the route on the server span, a span per command.
    const { nameServerSpansByRoute, traceCommands } = await import('./tracing/app-spans');
    nameServerSpansByRoute(fastify);
    traceCommands(app.get(CommandBus));
  }
  const httpLog = logger.child({ component: 'http' });
  // Errors raised before a route handler runs (body parsing, size, media type) get the same shapes.
  // Hooks that never wait are callback-style: an async one costs a promise and a turn per answer.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    if (request.url.startsWith('/oauth/')) reply.header('pragma', 'no-cache');
    done(null, payload);
  });
  // Floods of /oauth/* are refused before the body is even parsed (README "Rate limits").
  const oauthFlood = runtime.rateLimits.oauth;
  if (oauthFlood.enabled) {
    fastify.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/oauth/')) await oauthFlood.assertWithinLimit(request.ip);
    });
  }
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions?.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route }, seconds);
    if (route === '/oauth/token') metrics.countRefresh(refreshOutcome(request, reply.statusCode), reply.statusCode);
    else if (request.method === 'GET' && reply.statusCode < 300 && AUDIT_VIEWS[route]) metrics.auditReads.inc({ view: AUDIT_VIEWS[route] });
    // Path without the query string; never headers or bodies (they may carry credentials).
    httpLog.debug({ reqId: request.id, method: request.method, route, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'request');
    done();
  });

  applyBrowserPolicy(app, config);
  app.useGlobalFilters(new LedgerExceptionFilter());

  const openapi = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('token-ledger')
      .setDescription('Event-sourced ledger for OAuth 2.0 refresh tokens. OAuth endpoints follow RFC 6749 §6, RFC 7009, RFC 7662 and RFC 8414.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  addOAuthPaths(openapi as unknown as { paths: Record<string, unknown> });
  addRateLimitAnswers(openapi as unknown as { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> });
  fastify.get('/openapi.json', async () => openapi);
  registerTokenRoute(fastify, app.get(TokenEndpoint));
  registerConsole(fastify, config.consoleDir ?? defaultConsoleDir());

  await app.init();
  return app;
}

/** Every /v1 and /ssf operation may be refused by a rate limit (README "Rate limits"). */
function addRateLimitAnswers(doc: { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> }): void {
  for (const [route, operations] of Object.entries(doc.paths)) {
    if (!route.startsWith('/v1/') && !route.startsWith('/ssf/')) continue;
    for (const [method, operation] of Object.entries(operations)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      operation.responses = { ...operation.responses, 429: { description: 'Too Many Requests: a rate limit was reached (RFC 9457 problem); Retry-After says when to try again' } };
    }
  }
}

/** The form-encoded OAuth endpoints are described by hand: their shapes are the RFCs'. */
function addOAuthPaths(doc: { paths: Record<string, unknown> }): void {
  const form = (props: Record<string, unknown>, required: string[]) => ({
    required: true,
    content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: props, required } } },
  });
  const error = { description: 'RFC 6749 §5.2 error', content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' }, error_description: { type: 'string' } } } } } };
  const str = { type: 'string' };
  const tooMany = { ...error, description: 'rate limit reached (error temporarily_unavailable); the Retry-After header says when to try again' };
  doc.paths['/oauth/token'] = {
    post: {
      tags: ['oauth'],
      summary: 'Refresh token grant (RFC 6749 §6) with rotation',
      parameters: [
        {
          in: 'header',
          name: 'DPoP',
          required: false,
          schema: str,
          description: 'RFC 9449 proof (typ dpop+jwt, htm POST, htu this endpoint): required for a DPoP-bound family; binds the access token (token_type DPoP, cnf.jkt)',
        },
      ],
      requestBody: form({ grant_type: { type: 'string', enum: ['refresh_token'] }, refresh_token: str, scope: str, client_id: str, client_secret: str }, ['grant_type', 'refresh_token']),
      responses: {
        200: { description: 'RFC 6749 §5.1 token response (token_type DPoP when bound); DPoP-Nonce header when LEDGER_DPOP_NONCE=required' },
        400: { ...error, description: 'RFC 6749 §5.2 error, or RFC 9449 invalid_dpop_proof / use_dpop_nonce (with a DPoP-Nonce header)' },
        401: error,
        429: tooMany,
        503: { ...error, description: 'temporarily_unavailable (store or DPoP replay cache unreachable); Retry-After' },
      },
    },
  };
  doc.paths['/oauth/revoke'] = {
    post: { tags: ['oauth'], summary: 'Token revocation (RFC 7009)', requestBody: form({ token: str, token_type_hint: str }, ['token']), responses: { 200: { description: 'revoked, or unknown' }, 400: error, 401: error, 429: tooMany } },
  };
  doc.paths['/oauth/introspect'] = {
    post: { tags: ['oauth'], summary: 'Token introspection (RFC 7662)', requestBody: form({ token: str, token_type_hint: str }, ['token']), responses: { 200: { description: 'RFC 7662 response' }, 400: error, 401: error, 429: tooMany } },
  };
}
