/** A fixed-window limit: at most `points` in every window of `windowSeconds`. */
export interface LimitSpec {
  points: number;
  windowSeconds: number;
}

/** `off`, or a LimitSpec; the text form is `N/WINDOW` (e.g. `30/1m`, `50000/10s`, `100/h`). */
export type LimitSetting = LimitSpec | 'off';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600 } as const;
const MAX_POINTS = 1_000_000_000;
const MAX_WINDOW_SECONDS = 86_400;

/** Parses `N/WINDOW` or `off`; throws an Error whose message says what is expected. */
export function parseLimit(raw: string): LimitSetting {
  const text = raw.trim();
  if (text === 'off') return 'off';
  const match = /^(\d+)\/(\d*)(s|m|h)$/.exec(text);
  const points = match ? Number(match[1]) : NaN;
  const windowSeconds = match ? (match[2] === '' ? 1 : Number(match[2])) * UNIT_SECONDS[match[3] as keyof typeof UNIT_SECONDS] : NaN;
  if (!match || points < 1 || points > MAX_POINTS || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS) {
    throw new Error(`expected N/WINDOW (N from 1 to ${MAX_POINTS}; WINDOW a whole number of s, m or h up to 24h, e.g. 30/1m or 50000/10s) or off`);
  }
  return { points, windowSeconds };
}

export function formatLimit(setting: LimitSetting): string {
  return setting === 'off' ? 'off' : `${setting.points}/${setting.windowSeconds}s`;
}
