import type { FastifyRequest } from 'fastify';

/** Who is calling /v1: an API key, or the bootstrap LEDGER_ADMIN_TOKEN (scope admin). */
export interface Principal {
  /** null for the bootstrap admin token. */
  keyId: string | null;
  /** The key's name; null for the bootstrap admin token. */
  name: string | null;
  scopes: readonly string[];
  /** What events record as metadata.actor: `api-key:<keyId>` or `admin-token`. */
  actor: string;
}

export const ADMIN_TOKEN_ACTOR = 'admin-token';

const principals = new WeakMap<object, Principal>();

/** Set by ApiKeyGuard once the bearer is authenticated. */
export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  principals.set(request, principal);
}

export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

/** The acting key for command metadata; a /v1 route always has one (the guard ran first). */
export function actorOf(request: FastifyRequest): string {
  const principal = principals.get(request);
  if (!principal) throw new Error('no authenticated principal on this request: is the route guarded by ApiKeyGuard?');
  return principal.actor;
}
