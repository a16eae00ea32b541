/**
 * Errors of RFC 6749 §5.2 (and RFC 7009 / 7662), carrying their code and HTTP status so the
 * exception filter can answer to the letter.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'unsupported_token_type'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'server_error'
  | 'temporarily_unavailable';

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  unsupported_token_type: 400,
  // RFC 9449 §5 and §8.
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
  server_error: 500,
  temporarily_unavailable: 503,
};

export class OAuthError extends Error {
  readonly status: number;
  constructor(
    readonly code: OAuthErrorCode,
    readonly description?: string,
    /** The code's own status unless given (a rate limit is temporarily_unavailable with 429). */
    status?: number,
    /** Headers the answer carries, e.g. DPoP-Nonce with use_dpop_nonce (RFC 9449 §8). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(description ?? code);
    this.name = 'OAuthError';
    this.status = status ?? STATUS[code];
  }

  toJSON(): { error: string; error_description?: string } {
    return this.description ? { error: this.code, error_description: this.description } : { error: this.code };
  }
}
