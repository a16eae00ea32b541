import { Logger } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { sendError } from '../http/exception.filter';
import type { TokenEndpoint } from './token-endpoint';

/**
 * POST /oauth/token straight on Fastify (TokenEndpoint says why). Everything Fastify-level still
 * applies as to every route — body limit and parsers, CORS, rate-limit and security-header hooks,
 * metrics, tracing — and errors take the same path as the Nest routes' (LedgerExceptionFilter).
 */
export function registerTokenRoute(fastify: FastifyInstance, endpoint: TokenEndpoint): void {
  const logger = new Logger('http');
  fastify.post('/oauth/token', async (request, reply) => {
    try {
      return await endpoint.refresh(request, reply);
    } catch (error) {
      sendError(reply, request.url, error, logger);
      return reply;
    }
  });
}
