import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { asLedgerError, type LedgerError, type LedgerErrorKind } from '../ledger/ledger-error';
import { OAuthError, type OAuthErrorCode } from '../oauth/oauth-error';
import { noteErrorCode } from './answer-outcome';
import { ProblemError } from './problem';

/**
 * One place that turns any error into an RFC-shaped answer: RFC 6749 §5.2 JSON under /oauth,
 * RFC 9457 problem details elsewhere. Handlers throw LedgerErrors, which know no HTTP; the HTTP
 * layer's own OAuthError and ProblemError are already shaped. Client mistakes keep their 4xx, a
 * store that cannot be reached is a 503 with Retry-After, and only genuine faults are 500. Every
 * 5xx is logged (without request bodies, which may hold tokens).
 */
@Catch()
export class LedgerExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const request = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    sendError(reply, request.url, exception, this.logger);
  }
}

export function sendError(reply: FastifyReply, url: string, exception: unknown, logger: Pick<Logger, 'error'>): void {
  const known = exception instanceof OAuthError || exception instanceof ProblemError ? undefined : asLedgerError(exception);
  const oauth = url.startsWith('/oauth/');
  const answer = oauth ? toOAuthError(exception, known) : toProblem(exception, known);
  if (answer.status >= 500) logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
  reply.header('cache-control', 'no-store');
  if (known?.kind === 'unavailable' || known?.kind === 'rate_limited') reply.header('retry-after', String(known.retryAfterSeconds));
  if (answer instanceof OAuthError) {
    noteErrorCode(reply, answer.code);
    for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
    if (answer.status === 401) reply.header('www-authenticate', 'Basic realm="token-ledger", charset="UTF-8"');
    reply.header('pragma', 'no-cache').status(answer.status).type('application/json').send(answer.toJSON());
    return;
  }
  if (answer.status === 401) reply.header('www-authenticate', 'Bearer realm="token-ledger"');
  reply.status(answer.status).type('application/problem+json').send(answer.toJSON());
}

/** RFC 6749 §5.2 code of each kind; the refresh grant's own codes are the kinds themselves. */
const OAUTH_CODE: Record<LedgerErrorKind, OAuthErrorCode> = {
  invalid_request: 'invalid_request',
  invalid_grant: 'invalid_grant',
  invalid_scope: 'invalid_scope',
  invalid_dpop_proof: 'invalid_dpop_proof',
  invalid_client: 'invalid_client',
  unauthorized_client: 'unauthorized_client',
  not_found: 'invalid_request',
  conflict: 'invalid_request',
  unavailable: 'temporarily_unavailable',
  // RFC 6749 has no rate-limit code; this one tells clients to come back later, never that the token is bad.
  rate_limited: 'temporarily_unavailable',
};

/**
 * RFC 9457 status of each kind. invalid_client is not 401 here: on /v1 a 401 means the admin
 * bearer was refused, while this kind says the client named in the request is not a usable one.
 */
const PROBLEM_STATUS: Record<LedgerErrorKind, number> = {
  invalid_request: 400,
  invalid_grant: 400,
  invalid_scope: 400,
  invalid_dpop_proof: 400,
  invalid_client: 400,
  unauthorized_client: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  rate_limited: 429,
};

function statusOf(exception: unknown): number {
  if (exception instanceof HttpException) return exception.getStatus();
  const s = (exception as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}

function messageOf(exception: unknown): string | undefined {
  if (exception instanceof HttpException) {
    const body = exception.getResponse();
    if (typeof body === 'object' && body && 'message' in body) {
      const m = (body as { message: unknown }).message;
      return Array.isArray(m) ? m.join('; ') : String(m);
    }
    return exception.message;
  }
  return exception instanceof Error ? exception.message : undefined;
}

function toOAuthError(exception: unknown, known: LedgerError | undefined): OAuthError {
  if (exception instanceof OAuthError) return exception;
  if (known) return new OAuthError(OAUTH_CODE[known.kind], known.description, known.kind === 'rate_limited' ? 429 : undefined);
  // A ProblemError has its status; anything else (Fastify's parser errors, Nest's) by statusCode.
  const status = exception instanceof ProblemError ? exception.status : statusOf(exception);
  if (status >= 500) return new OAuthError('server_error', 'the server could not process the request');
  if (status === 404) return new OAuthError('invalid_request', 'no such endpoint');
  return new OAuthError('invalid_request', messageOf(exception));
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

function toProblem(exception: unknown, known: LedgerError | undefined): ProblemError {
  if (exception instanceof ProblemError) return exception;
  if (known) {
    const status = PROBLEM_STATUS[known.kind];
    return new ProblemError(status, known.title ?? TITLES[status], known.description, { ...known.members });
  }
  // An OAuthError has its status; anything else (Fastify's parser errors, Nest's) by statusCode.
  const status = exception instanceof OAuthError ? exception.status : statusOf(exception);
  if (status >= 500) return new ProblemError(500, 'Internal Server Error');
  return new ProblemError(status, TITLES[status] ?? 'Error', messageOf(exception));
}
