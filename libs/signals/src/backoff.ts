export interface BackoffSettings {
  /** Delay after the first failure (ms). */
  minMs: number;
  /** Cap on any delay (ms). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { minMs: 1000, maxMs: 60_000 };

/**
 * Delay before attempt `failures + 1`: minMs doubling per failure up to maxMs, with "equal jitter"
 * (half fixed, half random) so receivers coming back are not hit by every transmitter at once.
 * `random` in [0, 1) is passed in (pure).
 */
export function backoffDelay(failures: number, settings: BackoffSettings, random: number): number {
  const base = Math.min(settings.maxMs, settings.minMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(base / 2 + (base / 2) * random);
}

/** RFC 9110 §10.2.3 Retry-After (seconds or an HTTP date) in ms from `now`, or undefined. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
