import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { KafkaRevocationFeed, SseRevocationFeed, type RevocationFeed } from './feeds';
import type { KafkaSecurity } from './kafka-security';
import { RevocationSet } from './revocation-set';

export interface VerifierOptions {
  issuer: string;
  jwksUri: string;
  audience?: string | string[];
  /** sse.token: this resource server's own ledger API key with the scope revocations:read (nothing more). */
  revocations: { kafka: { brokers: string[]; topic?: string; clientId?: string; security?: KafkaSecurity } } | { sse: { url: string; token: string } };
  /**
   * What verify() does when the revocation feed is not current (not ready yet, or no contact for
   * more than maxStalenessMs):
   * - 'closed': reject every token (`feed_unavailable`) — no revoked token is ever accepted, at
   *   the price of an outage while the feed is down.
   * - 'open': accept tokens that pass signature and claims and are not in the (stale) set, marked
   *   `stale: true`, for at most `failOpenMaxMs` of staleness (default 5 min); after that, reject as
   *   in 'closed'. Exposure is bounded by min(failOpenMaxMs, the token's own exp).
   */
  failMode: 'open' | 'closed';
  maxStalenessMs: number;
  failOpenMaxMs?: number;
  /** jose remote JWKS: min time between refetches on an unknown kid (key rotation). Default 30 s. */
  jwksCooldownMs?: number;
  /** Seconds of clock skew accepted on exp/nbf/iat. Default 5. */
  clockToleranceSec?: number;
}

export type VerifyErrorCode = 'invalid_token' | 'token_revoked' | 'feed_unavailable';

export class VerifyError extends Error {
  constructor(
    readonly code: VerifyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}

export interface VerifiedToken {
  payload: JWTPayload & { sid?: string; client_id?: string; scope?: string };
  /** true when accepted while the revocation feed was stale (fail-open only). */
  stale: boolean;
}

export interface Verifier {
  /** Resolves once the revocation set is bootstrapped (compacted topic read to its end / SSE ready). */
  readonly ready: Promise<void>;
  verify(token: string): Promise<VerifiedToken>;
  /** ms since the feed last proved current (Infinity before ready). */
  feedAgeMs(): number;
  readonly revocations: RevocationSet;
  close(): Promise<void>;
}

/**
 * Resource-server verifier for token-ledger access tokens (RFC 9068 JWTs): signature via the
 * issuer's JWKS (cached; an unknown kid triggers a refetch, so key rotation needs no restart),
 * iss/aud/exp/typ, then the live revocation set fed by Kafka or SSE.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri), { cooldownDuration: options.jwksCooldownMs ?? 30_000, cacheMaxAge: 10 * 60_000 });
  const set = new RevocationSet();
  const feed: RevocationFeed =
    'kafka' in options.revocations
      ? new KafkaRevocationFeed({ brokers: options.revocations.kafka.brokers, topic: options.revocations.kafka.topic ?? 'token-ledger.revocations.v1', clientId: options.revocations.kafka.clientId, security: options.revocations.kafka.security })
      : new SseRevocationFeed({ url: options.revocations.sse.url, token: options.revocations.sse.token, heartbeatMs: Math.max(100, Math.min(5_000, Math.floor(options.maxStalenessMs / 4))) });
  let isReady = false;
  const startedAt = Date.now();
  const ready = feed.start((entry) => set.add(entry)).then(() => {
    isReady = true;
  });
  ready.catch(() => undefined);
  const failOpenMaxMs = options.failOpenMaxMs ?? 5 * 60_000;
  const feedAgeMs = () => (isReady ? Date.now() - feed.lastContact : Infinity);

  return {
    ready,
    revocations: set,
    feedAgeMs,
    async verify(token: string): Promise<VerifiedToken> {
      let payload: VerifiedToken['payload'];
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          algorithms: ['ES256', 'RS256', 'EdDSA'],
          clockTolerance: options.clockToleranceSec ?? 5,
          requiredClaims: ['iss', 'exp', 'iat', 'sub', 'jti'],
        }));
      } catch (error) {
        const message = error instanceof joseErrors.JOSEError ? `${error.code}: ${error.message}` : String(error);
        throw new VerifyError('invalid_token', message);
      }
      const age = feedAgeMs();
      let stale = false;
      if (age > options.maxStalenessMs) {
        const staleFor = isReady ? age : Date.now() - startedAt;
        if (options.failMode === 'closed' || staleFor > failOpenMaxMs) {
          throw new VerifyError('feed_unavailable', isReady ? `revocation feed silent for ${age} ms` : 'revocation feed not ready');
        }
        stale = true;
      }
      const revoked = set.check(payload);
      if (revoked) throw new VerifyError('token_revoked', revoked === 'family_revoked' ? 'the token family is revoked' : 'the token is revoked');
      return { payload, stale };
    },
    close: () => feed.close(),
  };
}
