/** Display helpers. Times are shown in UTC, to the millisecond, as a forensic record should be. */

export function utc(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** Shorter, for tables: seconds, no date when it is today. */
export function shortTime(iso: string | null | undefined, now = new Date()): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = d.toISOString();
  return s.slice(0, 10) === now.toISOString().slice(0, 10) ? `${s.slice(11, 19)} UTC` : `${s.slice(0, 10)} ${s.slice(11, 19)}`;
}

/** A datetime-local value (read as UTC) → ISO-8601 with Z; '' stays ''. */
export function localInputToIso(value: string): string {
  if (!value) return '';
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const d = new Date(`${withSeconds}Z`);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** ISO-8601 → a datetime-local value in UTC (seconds precision). */
export function isoToLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 19);
}

export const EVENT_TYPES = [
  'TokenFamilyIssued',
  'TokenRotated',
  'TokenRotationReplayed',
  'RefreshRejected',
  'TokenReuseDetected',
  'TokenFamilyRevoked',
  'TokenFamilyExpired',
  'AccessTokenRevoked',
  'FamilyLinkedToSubject',
  'SubjectRevoked',
  'SubjectRevocationCompleted',
  'AnomalyDetected',
  'AnomalyAcknowledged',
  'AnomalyDismissed',
] as const;

export const RULES = ['reuse_detected', 'impossible_travel', 'geo_mismatch', 'refresh_burst', 'failed_refresh_storm', 'device_change'] as const;
export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;

export function placeText(place: { city: string | null; country: string | null; countryCode: string | null } | null | undefined): string {
  if (!place) return '';
  return [place.city, place.country ?? place.countryCode].filter(Boolean).join(', ');
}

const WORDS: Record<string, string> = { ip: 'IP', id: 'ID', kmh: '(km/h)', km: '(km)', lat: 'latitude', lon: 'longitude', ua: 'user agent' };

/** speedKmh → "Speed (km/h)", deviceId → "Device ID", lat → "Latitude". */
export function label(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/_/g, ' ')
    .split(' ')
    .filter(Boolean)
    .map((w) => WORDS[w.toLowerCase()] ?? w.toLowerCase());
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
