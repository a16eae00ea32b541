import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * What a request's answer meant (an OAuth error code, or `rotated`/`replayed` for a refresh), noted
 * by whoever decided it — the controller for a success, the exception filter for an error — and
 * read by the onResponse hook that counts every answer once (health/metrics.ts). Keyed by the raw
 * Node request, which Nest's filter and Fastify's hooks share.
 */
const outcomes = new WeakMap<object, string>();

export function noteOutcome(request: FastifyRequest, outcome: string): void {
  outcomes.set(request.raw, outcome);
}

export function noteErrorCode(reply: FastifyReply, code: string): void {
  const raw = reply.request?.raw; // absent on replies built outside Fastify (unit tests)
  if (raw) outcomes.set(raw, code);
}

/**
 * The outcome label of an answer of /oauth/token: a 429 is `slow_down` (its body says
 * temporarily_unavailable, as RFC 6749 has no rate-limit code), a 503 `temporarily_unavailable`,
 * any other 5xx `server_error`; otherwise what was noted (a Fastify-level 4xx that reached no
 * filter is `invalid_request`).
 */
export function refreshOutcome(request: FastifyRequest, status: number): string {
  if (status === 429) return 'slow_down';
  if (status === 503) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  return outcomes.get(request.raw) ?? (status >= 400 ? 'invalid_request' : 'rotated');
}
