/**
 * Strict ISO-8601 instants for `at`, `from` and `to` (HTTP and CLI): a date-time with an explicit
 * offset (RFC 3339 profile), e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.250+02:00. Seconds may
 * be left out; an offset may omit its colon. Local times without an offset are refused on purpose:
 * an incident timeline must not depend on the machine's time zone.
 */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})$/;

/** Epoch ms, or undefined when `raw` is not such an instant (or names an impossible date). */
export function parseIsoInstant(raw: string): number | undefined {
  // A `+` offset in an unencoded query string arrives as a space.
  const text = raw.trim().replace(/ (\d{2}:?\d{2})$/, '+$1');
  const m = ISO_INSTANT.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi] = [+m[1], +m[2], +m[3], +m[4], +m[5]];
  const s = m[6] === undefined ? 0 : +m[6];
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
