import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../oauth/oauth-error';
import { ProblemError } from './problem';

/**
 * One place that turns any error into an RFC-shaped answer: RFC 6749 §5.2 JSON under /oauth,
 * RFC 9457 problem details elsewhere. Client mistakes keep their 4xx; only genuine faults are 5xx,
 * and those are logged (without request bodies, which may hold tokens).
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
  const status = statusOf(exception);
  if (status >= 500) logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
  reply.header('cache-control', 'no-store');
  if (url.startsWith('/oauth/')) {
    const err = exception instanceof OAuthError ? exception : toOAuthError(exception, status);
    if (err.status === 401) reply.header('www-authenticate', 'Basic realm="token-ledger", charset="UTF-8"');
    reply.header('pragma', 'no-cache').status(err.status).type('application/json').send(err.toJSON());
    return;
  }
  const problem = exception instanceof ProblemError ? exception : toProblem(exception, status);
  if (problem.status === 401) reply.header('www-authenticate', 'Bearer realm="token-ledger"');
  reply.status(problem.status).type('application/problem+json').send(problem.toJSON());
}

function statusOf(exception: unknown): number {
  if (exception instanceof OAuthError || exception instanceof ProblemError) return exception.status;
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

function toOAuthError(exception: unknown, status: number): OAuthError {
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

function toProblem(exception: unknown, status: number): ProblemError {
  if (status >= 500) return new ProblemError(500, 'Internal Server Error');
  return new ProblemError(status, TITLES[status] ?? 'Error', messageOf(exception));
}
