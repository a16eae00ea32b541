import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { MAX_DEVICE_ID_LENGTH, MAX_USER_AGENT_LENGTH, type RequestContext } from '@token-ledger/domain';
import type { CommandMetadata } from '@token-ledger/envelope';

const MAX_HEADER_VALUE = MAX_USER_AGENT_LENGTH;

function header(request: FastifyRequest, name: string): string | undefined {
  const raw = request.headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (typeof value !== 'string' || value.length === 0) return undefined;
  // Printable ASCII only: these values end up in logs and events.
  return value.slice(0, MAX_HEADER_VALUE).replace(/[^\x20-\x7e]/g, '?');
}

/**
 * {ip, userAgent, deviceId} for the events (SPEC §3), clamped to the domain's limits. `request.ip`
 * already honours X-Forwarded-For for the proxies LEDGER_TRUST_PROXY trusts (Fastify's trustProxy),
 * and only those — but it copies the header's text unchecked, so anything that is not an IPv4 or
 * IPv6 address is left out rather than recorded (and counted per "IP" by the anomaly rules).
 */
export function requestContext(request: FastifyRequest): RequestContext {
  const deviceId = header(request, 'x-device-id');
  const ip = isIP(request.ip) !== 0 ? request.ip : undefined;
  return {
    ...(ip ? { ip } : {}),
    userAgent: header(request, 'user-agent'),
    ...(deviceId ? { deviceId: deviceId.slice(0, MAX_DEVICE_ID_LENGTH) } : {}),
  };
}

export function commandMetadata(request: FastifyRequest, actor: string): CommandMetadata {
  const correlationId = header(request, 'x-correlation-id')?.slice(0, 128) ?? randomUUID();
  return { correlationId, causationId: String(request.id), actor, context: requestContext(request) };
}
