import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';

const MAX_HEADER_VALUE = 512;

function header(request: FastifyRequest, name: string): string | undefined {
  const raw = request.headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (typeof value !== 'string' || value.length === 0) return undefined;
  // Printable ASCII only: these values end up in logs and events.
  return value.slice(0, MAX_HEADER_VALUE).replace(/[^\x20-\x7e]/g, '?');
}

/**
 * {ip, userAgent, deviceId} for the events (SPEC §3). `request.ip` already honours
 * X-Forwarded-For for the proxies LEDGER_TRUST_PROXY trusts (Fastify's trustProxy), and only those.
 */
export function requestContext(request: FastifyRequest): RequestContext {
  const deviceId = header(request, 'x-device-id');
  return {
    ip: request.ip,
    userAgent: header(request, 'user-agent'),
    ...(deviceId ? { deviceId: deviceId.slice(0, 128) } : {}),
  };
}

export function commandMetadata(request: FastifyRequest, actor: string): CommandMetadata {
  const correlationId = header(request, 'x-correlation-id')?.slice(0, 128) ?? randomUUID();
  return { correlationId, causationId: String(request.id), actor, context: requestContext(request) };
}
