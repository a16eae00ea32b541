import { SigningUnavailableError } from '@token-ledger/crypto';
import { DomainError, type DomainErrorCode } from '@token-ledger/domain';
import { isStoreUnavailable } from '@token-ledger/event-store';
import { ConcurrencyExhaustedError } from './aggregate-repository';

/**
 * What went wrong, in the ledger's words. The first five are the RFC 6749 §5.2 codes a refresh
 * can fail with; the others say a named thing does not exist, clashes with what exists, or cannot
 * be served right now (the caller may try again), or that the caller went over a rate limit (it may
try again after `retryAfterSeconds`).
 */
export type LedgerErrorKind =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_dpop_proof'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'rate_limited';

export interface LedgerErrorOptions {
  /** A short summary of this particular problem; the kind's generic one otherwise. */
  title?: string;
  /** Further public members of the answer, e.g. the `errors` list of a rejected registration. */
  members?: Record<string, unknown>;
  /** For `unavailable` and `rate_limited`: when to try again, in whole seconds (default 1). */
  retryAfterSeconds?: number;
}

/**
 * Thrown by command and query handlers for a failure the caller should hear about. It knows no
 * transport: the exception filter alone turns it into an HTTP answer. Everything in it is public —
 * never a secret, a token or an internal detail.
 */
export class LedgerError extends Error {
  override readonly name = 'LedgerError';
  readonly title?: string;
  readonly members: Readonly<Record<string, unknown>>;
  readonly retryAfterSeconds: number;

  constructor(
    readonly kind: LedgerErrorKind,
    readonly description: string,
    options: LedgerErrorOptions = {},
  ) {
    super(description);
    this.title = options.title;
    this.members = options.members ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/** A database restart or failover takes seconds; asking every client back at once within 1 s only adds load. */
const STORE_RETRY_AFTER_SECONDS = 5;

const DOMAIN_KINDS = new Map<DomainErrorCode, LedgerErrorKind>([
  ['family_exists', 'conflict'],
  ['client_exists', 'conflict'],
  ['api_key_exists', 'conflict'],
  ['api_key_not_found', 'not_found'],
  ['client_not_found', 'not_found'],
  ['anomaly_not_found', 'not_found'],
  ['anomaly_triage_conflict', 'conflict'],
  ['ssf_stream_not_found', 'not_found'],
  ['ssf_subject_not_found', 'not_found'],
  ['ssf_stream_exists', 'conflict'],
  ['ssf_too_many_subjects', 'conflict'],
  ['invalid_argument', 'invalid_request'],
  ['missing_subject', 'invalid_request'],
  ['subject_mismatch', 'invalid_request'],
]);

/**
 * The LedgerError a failure amounts to, or undefined for one nobody foresaw (a fault). Besides
 * LedgerError itself: a DomainError (by code; its message is public by contract), a decision that
 * lost too many concurrency races, and a store that cannot be reached.
 */
export function asLedgerError(error: unknown): LedgerError | undefined {
  if (error instanceof LedgerError) return error;
  if (error instanceof DomainError) {
    const kind = DOMAIN_KINDS.get(error.code);
    return kind ? new LedgerError(kind, error.message) : undefined;
  }
  if (error instanceof ConcurrencyExhaustedError) {
    // Its message names the stream; the caller only needs to know that trying again may work.
    return new LedgerError('unavailable', 'too many concurrent changes to the same record; try again');
  }
  if (error instanceof SigningUnavailableError) {
    return new LedgerError('unavailable', 'the ledger could not sign the access token; try again', { retryAfterSeconds: 1 });
  }
  if (isStoreUnavailable(error)) {
    return new LedgerError('unavailable', 'the ledger cannot reach its store; try again later', { retryAfterSeconds: STORE_RETRY_AFTER_SECONDS });
  }
  return undefined;
}
