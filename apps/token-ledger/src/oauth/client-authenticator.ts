import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { LedgerSecrets } from '@token-ledger/crypto';
import { acceptedSecretHashes, type ClientState } from '@token-ledger/domain';
import { ClientRegistry } from '../ledger/client-registry';
import { AuthFailureLimiter } from '../rate-limit';
import { OAuthError } from './oauth-error';

export interface ClientCredentialsInBody {
  client_id?: unknown;
  client_secret?: unknown;
}

/**
 * RFC 6749 §2.3: client_secret_basic, client_secret_post, or `none` for public clients.
 * Exactly one method per request; every failure is the same invalid_client (no client enumeration),
 * and secrets are compared in constant time by LedgerSecrets. Each invalid_client counts against the
 * caller's address; an address with too many is refused (429) before its credentials are looked at.
 * A disabled client presenting its right credentials is refused too, but is not guessing: that
 * refusal does not count (a disabled client's busy backend must not lock its address out).
 */
@Injectable()
export class ClientAuthenticator {
  constructor(
    private readonly clients: ClientRegistry,
    @Inject(LedgerSecrets) private readonly secrets: LedgerSecrets,
    private readonly authFailures: AuthFailureLimiter,
  ) {}

  async authenticate(request: FastifyRequest, body: ClientCredentialsInBody, opts: { allowPublic: boolean }): Promise<ClientState> {
    await this.authFailures.assertNotBlocked(request.ip);
    try {
      return await this.check(request, body, opts);
    } catch (error) {
      if (error instanceof OAuthError && error.code === 'invalid_client' && !(error instanceof DisabledClientError)) {
        await this.authFailures.recordFailure(request.ip);
      }
      throw error;
    }
  }

  private async check(request: FastifyRequest, body: ClientCredentialsInBody, opts: { allowPublic: boolean }): Promise<ClientState> {
    const basic = parseBasic(request.headers.authorization);
    const postId = typeof body.client_id === 'string' ? body.client_id : undefined;
    const postSecret = typeof body.client_secret === 'string' ? body.client_secret : undefined;
    if ((body.client_id !== undefined && postId === undefined) || (body.client_secret !== undefined && postSecret === undefined)) {
      throw new OAuthError('invalid_request', 'client_id and client_secret must each appear once');
    }
    if (basic && postSecret !== undefined) throw new OAuthError('invalid_request', 'use one client authentication method');
    if (basic && postId !== undefined && postId !== basic.id) throw new OAuthError('invalid_request', 'client_id does not match the Authorization header');

    const clientId = basic?.id ?? postId;
    const secret = basic?.secret ?? postSecret;
    if (!clientId) throw new OAuthError('invalid_client', 'client authentication is required');
    // PostgreSQL text cannot hold NUL, so no registered client has one, and asking the store for it
    // is an error, not an answer: refuse it like any unknown client, without I/O.
    if (clientId.includes('\u0000')) throw new OAuthError('invalid_client', 'client authentication failed');
    // Read from the store on every request (see ClientRegistry): a disable or a rotation counts
    // for every authentication that starts after the command returned, on every instance.
    const client = await this.clients.get(clientId);
    if (!client) throw new OAuthError('invalid_client', 'client authentication failed');
    if (client.type === 'public') {
      if (secret !== undefined) throw new OAuthError('invalid_client', 'client authentication failed');
      if (!opts.allowPublic) throw new OAuthError('invalid_client', 'this endpoint requires an authenticated client');
    } else if (secret === undefined || !this.secretMatches(secret, acceptedSecretHashes(client, Date.now()))) {
      throw new OAuthError('invalid_client', 'client authentication failed');
    }
    if (client.disabled) throw new DisabledClientError();
    return client;
  }

  /** Every accepted hash is compared, each in constant time, with no early exit. */
  private secretMatches(secret: string, hashes: string[]): boolean {
    let matched = false;
    for (const hash of hashes) matched = this.secrets.verifyClientSecret(secret, hash) || matched;
    return matched;
  }
}

/** The same answer as any failed authentication (no enumeration), told apart only for the limiter. */
class DisabledClientError extends OAuthError {
  constructor() {
    super('invalid_client', 'client authentication failed');
  }
}

function parseBasic(header: string | undefined): { id: string; secret: string } | undefined {
  if (!header) return undefined;
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match) throw new OAuthError('invalid_client', 'malformed Authorization header');
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError('invalid_client', 'malformed Authorization header');
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  } catch {
    throw new OAuthError('invalid_client', 'malformed Authorization header');
  }
}
