import { createHash } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Registry } from 'prom-client';
import { DEFAULT_DPOP_ALGS, DPOP_ASYMMETRIC_ALGS, DpopProofError, verifyDpopProof } from './dpop-proof';
import { InMemoryReplayCache, ReplayCacheUnavailableError, type DpopReplayCache } from './dpop-replay-cache';
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
  /** DPoP-bound access tokens (RFC 9449 §7) in verifyRequest(); see DpopOptions. */
  dpop?: DpopOptions;
}

export interface DpopOptions {
  /** Asymmetric algorithms a proof may be signed with (default ES256 ES384 PS256 RS256 EdDSA); listed in the `algs` challenge. */
  algorithms?: string[];
  /** Seconds a proof stays acceptable after its iat (plus clockToleranceSec either side). Default 60. */
  maxAgeSec?: number;
  /**
   * Where accepted proofs' jti are remembered until they are too old. Default: an InMemoryReplayCache
   * (100 000 proofs) — right for ONE instance only: several instances of a resource server must share
   * one (RedisReplayCache, or your own DpopReplayCache), or a captured proof replays once per instance.
   */
  replayCache?: DpopReplayCache;
}

/**
 * - invalid_request: no (or no parseable) credentials — RFC 6750 §3.1: challenge without an error code.
 * - invalid_token: bad, expired or wrongly presented token (a bound token as Bearer, an unbound one as DPoP, key binding).
 * - invalid_dpop_proof: the DPoP proof (RFC 9449 §7.1).
 * - token_revoked: in the revocation set (answered as invalid_token).
 * - feed_unavailable / replay_cache_unavailable: cannot decide now (503).
 */
export type VerifyErrorCode = 'invalid_request' | 'invalid_token' | 'invalid_dpop_proof' | 'token_revoked' | 'feed_unavailable' | 'replay_cache_unavailable';

export class VerifyError extends Error {
  constructor(
    readonly code: VerifyErrorCode,
    message: string,
    /** The authentication scheme the request used, for the WWW-Authenticate challenge (verifyRequest only). */
    readonly scheme?: 'Bearer' | 'DPoP',
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}

export type AccessTokenClaims = JWTPayload & { sid?: string; client_id?: string; scope?: string; cnf?: { jkt?: string } };

export interface VerifiedToken {
  payload: AccessTokenClaims;
  /** true when accepted while the revocation feed was stale (fail-open only). */
  stale: boolean;
}

/** A protected-resource request as received: what verifyRequest() needs of it. */
export interface ResourceRequest {
  method: string;
  /** The absolute URL the client used (behind a proxy: its public URL); query and fragment are ignored. */
  url: string;
  authorization?: string;
  /** Every `DPoP` header of the request, one array entry each (more than one is refused). */
  dpop?: string | readonly string[];
}

export interface VerifiedRequest extends VerifiedToken {
  scheme: 'Bearer' | 'DPoP';
  /** DPoP: the thumbprint of the key that signed the proof (= the token's cnf.jkt). */
  jkt?: string;
}

export interface Verifier {
  /**
   * Resolves once the revocation set is bootstrapped (compacted topic read to its end / SSE ready)
   * and a valid signed heartbeat has been seen. Rejects only after `retry.maxAttempts` failed starts.
   */
  readonly ready: Promise<void>;
  /**
   * A bearer token (RFC 6750). Refuses a DPoP-bound token (one with `cnf`): without its proof it is
   * not a bearer token (RFC 9449 §7.2).
   */
  verify(token: string): Promise<VerifiedToken>;
  /**
   * A whole request: `Authorization: Bearer <token>`, or `Authorization: DPoP <token>` with exactly one
   * `DPoP` proof (RFC 9449 §7.1: typ, alg, public jwk, signature, htm, htu, iat, jti not replayed,
   * ath, and the proof key's thumbprint = the token's cnf.jkt). Throws VerifyError with `scheme`.
   */
  verifyRequest(request: ResourceRequest): Promise<VerifiedRequest>;
  /** The algorithms DPoP proofs may use (for the `algs` of a DPoP challenge). */
  readonly dpopAlgorithms: readonly string[];
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
  const dpopAlgorithms = dpopAlgorithmsOf(options.dpop);
  const dpopMaxAgeSec = options.dpop?.maxAgeSec ?? 60;
  if (!(dpopMaxAgeSec > 0)) throw new RangeError('dpop.maxAgeSec must be positive');
  let replayCache = options.dpop?.replayCache;

  /** Signature and claims only: the caller decides about cnf before the revocation check. */
  async function verifySignedToken(token: string, scheme?: 'Bearer' | 'DPoP'): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify<AccessTokenClaims>(token, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256', 'RS256', 'EdDSA'],
        clockTolerance: options.clockToleranceSec ?? 5,
        requiredClaims: ['iss', 'exp', 'iat', 'sub', 'jti'],
      });
      return payload;
    } catch (error) {
      const message = error instanceof joseErrors.JOSEError ? `${error.code}: ${error.message}` : String(error);
      throw new VerifyError('invalid_token', message, scheme);
    }
  }

  /** Revocation set and feed staleness, after signature, claims and binding passed. */
  function checkRevocation(payload: AccessTokenClaims, scheme?: 'Bearer' | 'DPoP'): VerifiedToken {
    const age = feedAgeMs();
    let stale = false;
    if (age > options.maxStalenessMs) {
      const staleFor = isReady ? age : Date.now() - startedAt;
      if (options.failMode === 'closed' || staleFor > failOpenMaxMs) {
        throw new VerifyError('feed_unavailable', isReady ? `revocation feed silent for ${age} ms` : 'revocation feed not ready', scheme);
      }
      stale = true;
    }
    const revoked = set.check(payload);
    if (revoked) throw new VerifyError('token_revoked', revoked === 'family_revoked' ? 'the token family is revoked' : 'the token is revoked', scheme);
    return { payload, stale };
  }

  async function verifyBearer(token: string, scheme?: 'Bearer'): Promise<VerifiedToken> {
    const payload = await verifySignedToken(token, scheme);
    if (payload.cnf !== undefined) throw new VerifyError('invalid_token', 'the token is sender-constrained (cnf): present it with its DPoP proof', scheme);
    return checkRevocation(payload, scheme);
  }

  async function verifyDpop(token: string, request: ResourceRequest): Promise<VerifiedRequest> {
    const proofs = request.dpop === undefined ? [] : typeof request.dpop === 'string' ? [request.dpop] : request.dpop;
    if (proofs.length !== 1) throw new VerifyError('invalid_dpop_proof', proofs.length === 0 ? 'DPoP proof missing' : 'more than one DPoP header', 'DPoP');
    const nowMs = Date.now();
    let proof;
    try {
      proof = await verifyDpopProof(proofs[0], {
        method: request.method,
        url: request.url,
        accessToken: token,
        algorithms: dpopAlgorithms,
        maxAgeSec: dpopMaxAgeSec,
        toleranceSec: options.clockToleranceSec ?? 5,
        nowMs,
      });
    } catch (error) {
      if (error instanceof DpopProofError) throw new VerifyError('invalid_dpop_proof', error.message, 'DPoP');
      throw error;
    }
    const payload = await verifySignedToken(token, 'DPoP');
    const bound = payload.cnf?.jkt;
    if (typeof bound !== 'string') throw new VerifyError('invalid_token', 'the token is not DPoP-bound (no cnf.jkt): present it as a Bearer token', 'DPoP');
    if (bound !== proof.jkt) throw new VerifyError('invalid_token', 'Invalid DPoP key binding', 'DPoP');
    const verified = checkRevocation(payload, 'DPoP');
    // Last, so that only a proof of an otherwise accepted request uses up its jti.
    replayCache ??= new InMemoryReplayCache();
    let first: boolean;
    try {
      first = await replayCache.use(replayKey(proof.jkt, proof.jti), proof.expiresAtMs);
    } catch (error) {
      throw new VerifyError('replay_cache_unavailable', error instanceof ReplayCacheUnavailableError ? error.message : 'DPoP replay cache unavailable', 'DPoP');
    }
    if (!first) throw new VerifyError('invalid_dpop_proof', 'DPoP proof replayed (jti already used)', 'DPoP');
    return { ...verified, scheme: 'DPoP', jkt: proof.jkt };
  }

  return {
    ready,
    revocations: set,
    feedAgeMs,
    feedStats: () => structuredClone(records.stats),
    dpopAlgorithms,
    verify: (token: string) => verifyBearer(token),
    async verifyRequest(request: ResourceRequest): Promise<VerifiedRequest> {
      const credentials = parseAuthorization(request.authorization);
      if (!credentials) throw new VerifyError('invalid_request', 'no access token in the Authorization header');
      if (credentials.scheme === 'DPoP') return verifyDpop(credentials.token, request);
      return { ...(await verifyBearer(credentials.token, 'Bearer')), scheme: 'Bearer' };
    },
    close: () => {
      closed = true;
      return feed.close();
    },
  };
}

/** `Bearer <token68>` or `DPoP <token68>` (RFC 7235: the scheme is case-insensitive); undefined otherwise. */
export function parseAuthorization(header: string | undefined): { scheme: 'Bearer' | 'DPoP'; token: string } | undefined {
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header ?? '');
  if (!match) return undefined;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

function dpopAlgorithmsOf(dpop: DpopOptions | undefined): readonly string[] {
  const algs = dpop?.algorithms ?? DEFAULT_DPOP_ALGS;
  const asymmetric: readonly string[] = DPOP_ASYMMETRIC_ALGS;
  const bad = algs.filter((alg) => !asymmetric.includes(alg));
  if (algs.length === 0 || bad.length > 0) throw new RangeError(`dpop.algorithms: only asymmetric JWS algorithms (${DPOP_ASYMMETRIC_ALGS.join(', ')}); got ${bad.join(', ') || 'none'}`);
  return [...algs];
}

/** One key per (proof key, jti), of fixed size whatever the client sent. */
function replayKey(jkt: string, jti: string): string {
  return createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url');
}
