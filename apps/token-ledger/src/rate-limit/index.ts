export { AuthFailureLimiter, ApiKeyLimiter, OAuthFloodLimiter, openRateLimits, type RateLimits } from './rate-limits';
export { parseLimit, formatLimit, type LimitSetting, type LimitSpec } from './limit-spec';
