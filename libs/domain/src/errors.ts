/**
 * Thrown for commands that can never succeed (programming or contract errors), as opposed to
 * ordinary outcomes such as a rejected refresh, which are returned as decisions with events.
 * Callers map `code` to a response; the message never contains secrets.
 */
export type DomainErrorCode =
  | 'family_exists'
  | 'missing_subject'
  | 'subject_mismatch'
  | 'client_exists'
  | 'api_key_exists'
  | 'api_key_not_found'
  | 'client_not_found'
  | 'invalid_argument'
  | (string & {});

export class DomainError extends Error {
  override readonly name = 'DomainError';

  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
    // Keep instanceof working when compiled to ES5-style classes by other toolchains.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

export function isDomainError(e: unknown): e is DomainError {
  return e instanceof DomainError;
}
