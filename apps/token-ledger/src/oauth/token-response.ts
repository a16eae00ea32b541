import { formatScope } from '@token-ledger/domain';

/** What a command hands back that a token response shows (IssuedTokens, RotatedTokens). */
export interface TokensOut {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshTokenExpiresIn: number;
  scope: string[];
}

/** RFC 6749 §5.1 token response, for the refresh grant and for a family the admin API issues. */
export function tokenResponse(tokens: TokensOut, dpopJkt: string | undefined): Record<string, unknown> {
  return {
    access_token: tokens.accessToken,
    // RFC 9449 §5: a DPoP-bound access token (cnf.jkt) is of type DPoP.
    token_type: dpopJkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: tokens.expiresIn,
    refresh_token: tokens.refreshToken,
    refresh_token_expires_in: tokens.refreshTokenExpiresIn,
    scope: formatScope(tokens.scope),
  };
}
