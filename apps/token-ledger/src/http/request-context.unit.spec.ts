import type { FastifyRequest } from 'fastify';
import { requestContext } from './request-context';

const request = (ip: string | undefined, headers: Record<string, string> = {}) => ({ ip, headers }) as unknown as FastifyRequest;

describe('requestContext', () => {
  it('keeps IPv4 and IPv6 addresses', () => {
    expect(requestContext(request('203.0.113.7')).ip).toBe('203.0.113.7');
    expect(requestContext(request('2001:db8::1')).ip).toBe('2001:db8::1');
  });

  it('leaves out an "address" a trusted proxy forwarded that is not one (Fastify copies X-Forwarded-For unchecked)', () => {
    for (const bad of ['not-an-ip', '203.0.113.7:443', '', 'x'.repeat(300)]) expect(requestContext(request(bad))).not.toHaveProperty('ip');
  });

  it('clamps the user agent and device id to the domain limits, printable ASCII only', () => {
    const ctx = requestContext(request('192.0.2.1', { 'user-agent': `a\u0001${'b'.repeat(1000)}`, 'x-device-id': 'd'.repeat(1000) }));
    expect(ctx.userAgent).toHaveLength(512);
    expect(ctx.userAgent!.slice(0, 2)).toBe('a?');
    expect(ctx.deviceId).toHaveLength(128);
  });
});
