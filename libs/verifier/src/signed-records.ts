import { compactVerify, errors as joseErrors, type CompactVerifyGetKey } from 'jose';
import type { RevocationEntry } from './revocation-set';

/** JOSE `typ` of the feed's values (SPEC §4; libs/messaging revocation-record.ts on the ledger side). */
export const REVOCATION_RECORD_TYP = 'revocation+jwt';
export const REVOCATION_HEARTBEAT_TYP = 'revocation-heartbeat+jwt';
export const HEARTBEAT_KEY = '__heartbeat__';

export interface RevocationHeartbeat {
  position: number;
  at: string;
}

/** Why a value of the feed was ignored. */
export type RejectReason = 'unsigned' | 'bad_signature' | 'unknown_key' | 'wrong_type' | 'malformed';

/** Counters of what the feed delivered (Verifier.feedStats()). */
export interface FeedStats {
  records: number;
  heartbeats: number;
  /** Null values on the topic (compaction tombstones): ignored, entries expire by themselves. */
  tombstones: number;
  /** Values ignored, by reason: anything not signed by a key of the ledger's JWKS as a record or heartbeat. */
  rejected: Record<RejectReason, number>;
  /** The last valid heartbeat, if any. */
  lastHeartbeat?: RevocationHeartbeat;
}

/** The ledger's JWKS could not be fetched while verifying a value: retry later, do not drop it. */
export class JwksUnavailableError extends Error {
  constructor(override readonly cause: unknown) {
    super(`JWKS unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'JwksUnavailableError';
  }
}

export type VerifiedValue = { kind: 'record'; entry: RevocationEntry } | { kind: 'heartbeat'; heartbeat: RevocationHeartbeat } | { kind: 'ignored' };

const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'];
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;

/**
 * Verifies the values of the revocation feed against the ledger's JWKS: a JWS compact serialization
 * with an allowed alg, a `kid` of the JWKS, the typ of a record or a heartbeat, and a payload of the
 * right shape (on Kafka also under the right key). Everything else is ignored and counted: a record
 * written by anyone but the ledger can neither revoke nor, being ignored, un-revoke.
 */
export class SignedRecordVerifier {
  readonly stats: FeedStats = {
    records: 0,
    heartbeats: 0,
    tombstones: 0,
    rejected: { unsigned: 0, bad_signature: 0, unknown_key: 0, wrong_type: 0, malformed: 0 },
  };

  constructor(private readonly jwks: CompactVerifyGetKey) {}

  /** `key`: the Kafka record key (undefined on SSE). `value` null: a tombstone. */
  async verify(value: string | null, key?: string): Promise<VerifiedValue> {
    if (value === null) {
      this.stats.tombstones++;
      return { kind: 'ignored' };
    }
    if (!COMPACT_JWS.test(value)) return this.reject('unsigned');
    let typ: unknown;
    let payload: unknown;
    try {
      const verified = await compactVerify(value, this.jwks, { algorithms: ALGORITHMS });
      typ = verified.protectedHeader.typ;
      payload = JSON.parse(new TextDecoder().decode(verified.payload));
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) return this.reject('unknown_key');
      if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JOSEAlgNotAllowed) return this.reject('bad_signature');
      if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JOSENotSupported || error instanceof SyntaxError) return this.reject('malformed');
      // The JWKS could not be fetched (timeout, HTTP error, connection refused): not the record's
      // fault, and dropping it could lose a revocation — the caller retries.
      throw new JwksUnavailableError(error);
    }
    if (typeof payload !== 'object' || payload === null) return this.reject('malformed');
    if (typ === REVOCATION_HEARTBEAT_TYP) {
      const hb = payload as RevocationHeartbeat;
      if (!Number.isSafeInteger(hb.position) || typeof hb.at !== 'string' || !Number.isFinite(Date.parse(hb.at))) return this.reject('malformed');
      if (key !== undefined && key !== HEARTBEAT_KEY) return this.reject('malformed');
      this.stats.heartbeats++;
      this.stats.lastHeartbeat = { position: hb.position, at: hb.at };
      return { kind: 'heartbeat', heartbeat: { position: hb.position, at: hb.at } };
    }
    if (typ !== REVOCATION_RECORD_TYP) return this.reject('wrong_type');
    const entry = payload as RevocationEntry;
    const valid =
      typeof entry.familyId === 'string' &&
      typeof entry.revokedAt === 'string' &&
      typeof entry.accessTokensValidUntil === 'string' &&
      Number.isFinite(Date.parse(entry.accessTokensValidUntil)) &&
      (entry.jti === undefined || typeof entry.jti === 'string');
    if (!valid) return this.reject('malformed');
    // A genuine record copied under another family's key must not stand in for that key's record.
    if (key !== undefined && key !== (entry.jti ? `${entry.familyId}:${entry.jti}` : entry.familyId)) return this.reject('malformed');
    this.stats.records++;
    return { kind: 'record', entry };
  }

  private reject(reason: RejectReason): VerifiedValue {
    this.stats.rejected[reason]++;
    return { kind: 'ignored' };
  }
}
