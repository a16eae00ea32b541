import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Registry } from 'prom-client';
import { KafkaRevocationFeed, SseRevocationFeed, type RetryOptions, type RevocationFeed } from './feeds';
import type { KafkaSecurity } from './kafka-security';
import { RevocationSet } from './revocation-set';
import { JwksUnavailableError, SignedRecordVerifier, type FeedStats, type VerifiedValue } from './signed-records';
import { VerifierMetrics } from './verifier-metrics';

export interface VerifierOptions {
  issuer: string;
  jwksUri: string;
  audience?: string | string[];
  /** sse.token: this resource server's own ledger API key with the scope revocations:read (nothing more). */
  revocations: { kafka: { brokers: string[]; topic?: string; clientId?: string; security?: KafkaSecurity } } | { sse: { url: string; token: string } };
  /**
   * What verify() does when the revocation feed is not current (not ready yet, or no valid signed
   * heartbeat for more than maxStalenessMs — the ledger sends one every LEDGER_REVOCATION_HEARTBEAT_MS,
   * default 2 s, while its relay, propagator or hub feed keeps up; choose maxStalenessMs well above it):
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
  /**
   * Seconds of clock skew accepted on exp/nbf/iat, and on a heartbeat's `at`: a heartbeat counts as
   * contact at min(now, at + tolerance), so a replayed old heartbeat cannot make a feed look fresh.
   * Default 5.
   */
  clockToleranceSec?: number;
  /** Backoff of the feed's start and reconnects (default 250 ms doubling to 5 s, unlimited attempts). */
  retry?: RetryOptions;
  /**
   * A prom-client Registry to register the token_ledger_verifier_* metrics on (revocation delay,
   * records applied, feed staleness, rejected records); none without it. One verifier per registry.
   */
  registry?: Registry;
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
  /**
   * Resolves once the revocation set is bootstrapped (compacted topic read to its end / SSE ready)
   * and a valid signed heartbeat has been seen. Rejects only after `retry.maxAttempts` failed starts.
   */
  readonly ready: Promise<void>;
  verify(token: string): Promise<VerifiedToken>;
  /** ms since the last valid signed heartbeat (Infinity before ready). */
  feedAgeMs(): number;
  /** What the feed delivered: records, heartbeats, and values ignored as unsigned, badly signed or unknown. */
  feedStats(): FeedStats;
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
  const records = new SignedRecordVerifier(jwks);
  const retry = options.retry;
  const feed: RevocationFeed =
    'kafka' in options.revocations
      ? new KafkaRevocationFeed({
          brokers: options.revocations.kafka.brokers,
          topic: options.revocations.kafka.topic ?? 'token-ledger.revocations.v1',
          clientId: options.revocations.kafka.clientId,
          security: options.revocations.kafka.security,
          retry,
        })
      : new SseRevocationFeed({ url: options.revocations.sse.url, token: options.revocations.sse.token, heartbeatMs: Math.max(100, Math.min(5_000, Math.floor(options.maxStalenessMs / 4))), retry });
  const toleranceMs = (options.clockToleranceSec ?? 5) * 1000;
  let closed = false;
  let isReady = false;
  let bootstrapped = false;
  /** Epoch ms the last valid heartbeat proves the feed current at. */
  let lastContact = 0;
  const startedAt = Date.now();
  const metrics = options.registry
    ? new VerifierMetrics(options.registry, {
        ageSeconds: () => (Date.now() - (isReady ? lastContact : startedAt)) / 1000,
        stats: () => records.stats,
      })
    : undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    feed.start(onValue).then(() => {
      bootstrapped = true;
      markReady();
    }, reject);
  });
  ready.catch(() => undefined);
  function markReady(): void {
    if (isReady || !bootstrapped || lastContact === 0) return;
    isReady = true;
    resolveReady();
  }
  /** A value the JWKS cannot be fetched for waits (in order) rather than being dropped. */
  async function verifyValue(value: string | null, key?: string): Promise<VerifiedValue> {
    let delay = 250;
    for (;;) {
      try {
        return await records.verify(value, key);
      } catch (error) {
        if (!(error instanceof JwksUnavailableError) || closed) throw error;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(5_000, delay * 2);
      }
    }
  }
  async function onValue(value: string | null, key?: string): Promise<void> {
    const verified = await verifyValue(value, key);
    if (verified.kind === 'record') {
      set.add(verified.entry);
      metrics?.recordApplied(verified.entry, bootstrapped);
    } else if (verified.kind === 'heartbeat') {
      lastContact = Math.max(lastContact, Math.min(Date.now(), Date.parse(verified.heartbeat.at) + toleranceMs));
      markReady();
    }
  }
  const failOpenMaxMs = options.failOpenMaxMs ?? 5 * 60_000;
  const feedAgeMs = () => (isReady ? Date.now() - lastContact : Infinity);

  return {
    ready,
    revocations: set,
    feedAgeMs,
    feedStats: () => structuredClone(records.stats),
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
    close: () => {
      closed = true;
      return feed.close();
    },
  };
}
